"""Subscriptions: live queries over WebSocket (graphql-transport-ws, the graphql-ws client's
protocol), run as the subscriber under Row Level Security and sent again when they change."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from service.db.url import DatabaseURL
from service.http.websocket import GraphQLWebSocket
from tests.graphql.conftest import ALICE, BOB, gql
from tests.support import RunningService, token_for

PROTOCOL = "graphql-transport-ws"
POLL = 0.1  # seconds between a subscription's runs in these tests
MY_DRAFTS = """subscription Drafts {
  posts(filter: {published: {eq: false}}, orderBy: [{title: ASC}]) { nodes { title } }
}"""


class Socket:
    """A graphql-transport-ws client over a real WebSocket, one message at a time."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(orjson.dumps(message).decode())

    async def receive(self, timeout: float = 5) -> dict[str, Any]:
        message: dict[str, Any] = orjson.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        return message

    async def init(self, token: str | None = None) -> None:
        payload = {"Authorization": f"Bearer {token}"} if token else {}
        await self.send({"type": "connection_init", "payload": payload})
        assert await self.receive() == {"type": "connection_ack"}

    async def subscribe(self, id_: str, query: str, **payload: Any) -> None:
        await self.send({"id": id_, "type": "subscribe", "payload": {"query": query, **payload}})

    async def quiet_for(self, seconds: float) -> None:
        """Nothing arrives for this long (several polls)."""
        with pytest.raises(TimeoutError):
            await self.receive(timeout=seconds)

    async def closed(self) -> tuple[int, str]:
        """The server's close code and reason, once it closes the socket."""
        try:
            while True:
                await asyncio.wait_for(self.ws.recv(), 5)
        except ConnectionClosed as closed:
            assert closed.rcvd is not None
            return closed.rcvd.code, closed.rcvd.reason


@asynccontextmanager
async def socket_to(
    http: httpx.AsyncClient, *, subprotocols: list[str] | None = None, **kwargs: Any
) -> AsyncIterator[Socket]:
    url = str(http.base_url).replace("http://", "ws://") + "/graphql"
    protocols = [PROTOCOL] if subprotocols is None else (subprotocols or None)
    async with connect(url, subprotocols=protocols, **kwargs) as ws:  # type: ignore[arg-type]
        yield Socket(ws)


@pytest.fixture
async def live(seeded: DatabaseURL) -> AsyncIterator[httpx.AsyncClient]:
    async with RunningService(seeded, subscription_poll_seconds=POLL) as http:
        yield http


def titles(message: dict[str, Any], id_: str = "1") -> list[str]:
    assert message["id"] == id_ and message["type"] == "next", message
    return [n["title"] for n in message["payload"]["data"]["posts"]["nodes"]]


async def create_post(http: httpx.AsyncClient, title: str, *, as_user: str) -> str:
    query = 'mutation($t: String!) { createPost(input: {title: $t, content: "-"}) { id } }'
    body = await gql(http, query, {"t": title}, as_user=as_user)
    post_id: str = body["data"]["createPost"]["id"]
    return post_id


async def test_a_live_query_is_sent_again_only_when_its_answer_changes(live):
    async with socket_to(live) as socket:
        await socket.init(token_for(ALICE))
        await socket.subscribe("1", MY_DRAFTS)
        assert titles(await socket.receive()) == []  # the seeded posts are all published
        await socket.quiet_for(4 * POLL)  # unchanged: nothing is sent

        draft = await create_post(live, "Draft A", as_user=ALICE)
        assert titles(await socket.receive()) == ["Draft A"]
        await create_post(live, "Draft B", as_user=ALICE)
        assert titles(await socket.receive()) == ["Draft A", "Draft B"]

        update = "mutation($id: UUID!) { updatePost(id: $id, input: {published: true}) { id } }"
        await gql(live, update, {"id": draft}, as_user=ALICE)
        assert titles(await socket.receive()) == ["Draft B"]

        # The client stops listening: no more messages, and no `complete` back.
        await socket.send({"id": "1", "type": "complete"})
        await create_post(live, "Draft C", as_user=ALICE)
        await socket.quiet_for(4 * POLL)


async def test_a_subscriber_sees_only_what_row_level_security_lets_them(live):
    async with socket_to(live) as alice, socket_to(live) as anonymous:
        await alice.init(token_for(ALICE))
        await anonymous.init()
        await alice.subscribe("1", MY_DRAFTS)
        await anonymous.subscribe("1", MY_DRAFTS)
        assert titles(await alice.receive()) == []
        assert titles(await anonymous.receive()) == []

        # Bob's draft is his alone: neither subscriber's answer changes.
        bobs = await create_post(live, "Bob's draft", as_user=BOB)
        await alice.quiet_for(4 * POLL)
        await anonymous.quiet_for(POLL)
        # Alice's draft reaches Alice, and nobody else.
        await create_post(live, "Alice's draft", as_user=ALICE)
        assert titles(await alice.receive()) == ["Alice's draft"]
        await anonymous.quiet_for(4 * POLL)

        # Once Bob publishes, everyone sees it (in the published list, no longer a draft).
        published = "subscription { post(id: $id) { title published } }"
        await anonymous.subscribe(
            "2",
            published.replace("subscription", "subscription($id: UUID!)"),
            variables={"id": bobs},
        )
        first = await anonymous.receive()
        assert first == {"id": "2", "type": "next", "payload": {"data": {"post": None}}}
        update = "mutation($id: UUID!) { updatePost(id: $id, input: {published: true}) { id } }"
        await gql(live, update, {"id": bobs}, as_user=BOB)
        seen = await anonymous.receive()
        assert seen["payload"] == {"data": {"post": {"title": "Bob's draft", "published": True}}}


async def test_queries_and_mutations_run_once_over_the_socket(live):
    async with socket_to(live) as socket:
        await socket.init(token_for(ALICE))
        await socket.subscribe("q", "{ posts { totalCount } }")
        assert await socket.receive() == {
            "id": "q",
            "type": "next",
            "payload": {"data": {"posts": {"totalCount": 25}}},
        }
        assert await socket.receive() == {"id": "q", "type": "complete"}

        create = (
            'mutation { createPost(input: {title: "Over the socket", content: "-"}) { title } }'
        )
        await socket.subscribe("m", create)
        created = await socket.receive()
        assert created["payload"] == {"data": {"createPost": {"title": "Over the socket"}}}
        assert await socket.receive() == {"id": "m", "type": "complete"}
        # the id is free again once completed
        await socket.subscribe("q", "{ posts { totalCount } }")
        assert (await socket.receive())["payload"]["data"]["posts"]["totalCount"] == 26


async def test_bad_operations_get_an_error_message_and_the_socket_stays(live):
    async with socket_to(live) as socket:
        await socket.init()
        await socket.subscribe("1", "subscription { posts { nodes { nope } } }")
        invalid = await socket.receive()
        assert invalid["id"] == "1" and invalid["type"] == "error"
        assert invalid["payload"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        assert "nope" in invalid["payload"][0]["message"]

        await socket.subscribe("2", "subscription { posts(first: 1000) { totalCount } }")
        too_big = await socket.receive()
        assert too_big["type"] == "error"
        assert too_big["payload"][0]["extensions"]["code"] == "BAD_USER_INPUT"

        variables = "subscription($n: Int!) { posts(first: $n) { totalCount } }"
        await socket.subscribe("3", variables, variables={"n": "three"})
        wrong_type = await socket.receive()
        assert wrong_type["type"] == "error" and "$n" in wrong_type["payload"][0]["message"]

        await socket.send({"type": "ping"})
        assert await socket.receive() == {"type": "pong"}  # still open


async def test_subscriptions_per_connection_are_limited_and_counted(seeded: DatabaseURL):
    settings = {"subscription_poll_seconds": POLL, "max_subscriptions_per_connection": 2}
    async with RunningService(seeded, **settings) as http:
        async with socket_to(http) as socket:
            await socket.init()
            for id_ in ("1", "2"):
                await socket.subscribe(id_, "subscription { posts { totalCount } }")
                assert (await socket.receive())["type"] == "next"
            assert await subscriptions_in_metrics(http) == 2
            await socket.subscribe("3", "subscription { posts { totalCount } }")
            refused = await socket.receive()
            assert refused["id"] == "3" and refused["type"] == "error"
            assert refused["payload"][0]["extensions"]["code"] == "LIMIT_EXCEEDED"
            await socket.send({"id": "1", "type": "complete"})
            await socket.subscribe("3", "subscription { posts { totalCount } }")
            assert (await socket.receive())["type"] == "next"
        # the socket closed: its subscriptions ended with it
        for _ in range(50):
            if await subscriptions_in_metrics(http) == 0:
                break
            await asyncio.sleep(0.05)
        assert await subscriptions_in_metrics(http) == 0


async def subscriptions_in_metrics(http: httpx.AsyncClient) -> float:
    text = (await http.get("/metrics")).text
    line = next(x for x in text.splitlines() if x.startswith("service_graphql_subscriptions "))
    return float(line.split()[1])


async def test_a_subscription_over_http_says_where_to_go(live):
    response = await live.post("/graphql", json={"query": "subscription { posts { totalCount } }"})
    assert response.status_code == 200
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "WebSocket" in error["message"]


async def test_the_token_comes_from_connection_init_or_the_handshake(live):
    viewer = "subscription { viewer { id } }"
    async with socket_to(live) as socket:
        await socket.send(
            {
                "type": "connection_init",
                "payload": {"headers": {"Authorization": f"Bearer {token_for(BOB)}"}},
            }
        )
        assert await socket.receive() == {"type": "connection_ack"}
        await socket.subscribe("1", viewer)
        assert (await socket.receive())["payload"] == {"data": {"viewer": {"id": BOB}}}

    header = {"Authorization": f"Bearer {token_for(ALICE)}"}
    async with socket_to(live, additional_headers=header) as socket:
        await socket.init()
        await socket.subscribe("1", viewer)
        assert (await socket.receive())["payload"] == {"data": {"viewer": {"id": ALICE}}}


async def test_a_bad_or_expired_token_closes_the_socket(seeded: DatabaseURL):
    async with RunningService(seeded, jwt_leeway_seconds=0) as http:
        async with socket_to(http) as socket:
            await socket.send({"type": "connection_init", "payload": {"Authorization": "Bearer x"}})
            code, reason = await socket.closed()
            assert code == 4403 and reason.startswith("Forbidden")

        async with socket_to(http) as socket:
            await socket.init(token_for(ALICE, ttl_seconds=2))
            started = time.monotonic()
            await socket.subscribe("1", MY_DRAFTS)
            assert titles(await socket.receive()) == []
            assert await socket.closed() == (4403, "Forbidden: the token expired")
            assert time.monotonic() - started < 4


async def test_protocol_violations_close_the_socket_with_the_protocols_codes(live):
    async with socket_to(live, subprotocols=[]) as socket:
        assert (await socket.closed())[0] == 4406
    async with socket_to(live) as socket:
        await socket.subscribe("1", "{ posts { totalCount } }")
        assert await socket.closed() == (4401, "Unauthorized")
    async with socket_to(live) as socket:
        await socket.init()
        await socket.send({"type": "connection_init"})
        assert await socket.closed() == (4429, "Too many initialisation requests")
    async with socket_to(live) as socket:
        await socket.init()
        await socket.subscribe("1", "subscription { posts { totalCount } }")
        await socket.receive()
        await socket.subscribe("1", "subscription { posts { totalCount } }")
        assert await socket.closed() == (4409, "Subscriber for 1 already exists")
    for bad in ("not json", '["a list"]', '{"type": "start"}', '{"type": "subscribe"}'):
        async with socket_to(live) as socket:
            await socket.init()
            await socket.ws.send(bad)
            assert (await socket.closed())[0] == 4400, bad


async def test_a_socket_that_never_initialises_is_closed(seeded: DatabaseURL):
    service = RunningService(seeded)
    # the app's WebSocket endpoint, told to wait 0.3 s instead of its 10 s
    endpoints = [
        getattr(getattr(r, "endpoint", None), "__self__", None) for r in service.app.routes
    ]
    websocket = next(e for e in endpoints if isinstance(e, GraphQLWebSocket))
    websocket.init_timeout = 0.3
    async with service as http, socket_to(http) as socket:
        assert await socket.closed() == (4408, "Connection initialisation timeout")


async def test_trusted_documents_only_holds_over_the_socket_too(seeded: DatabaseURL, tmp_path):
    trusted = "subscription Count { posts { totalCount } }"
    manifest = tmp_path / "documents.json"
    manifest.write_text(orjson.dumps({"count": trusted}).decode())
    settings: dict[str, Any] = {
        "trusted_documents_file": manifest,
        "trusted_documents_only": True,
        "subscription_poll_seconds": POLL,
    }
    async with RunningService(seeded, **settings) as http, socket_to(http) as socket:
        await socket.init()
        await socket.subscribe("1", "subscription { posts { nodes { title } } }")
        refused = await socket.receive()
        assert refused["type"] == "error"
        assert refused["payload"][0]["extensions"]["code"] == "FORBIDDEN"
        await socket.send({"id": "2", "type": "subscribe", "payload": {"documentId": "count"}})
        assert (await socket.receive())["payload"] == {"data": {"posts": {"totalCount": 25}}}


async def test_a_failing_run_is_reported_once_and_the_answer_follows_when_it_recovers(
    seeded: DatabaseURL,
):
    settings = {"subscription_poll_seconds": POLL, "statement_timeout_ms": 300}
    async with RunningService(seeded, **settings) as http, socket_to(http) as socket:
        await socket.init()
        await socket.subscribe("1", "subscription { posts { totalCount } }")
        assert (await socket.receive())["payload"] == {"data": {"posts": {"totalCount": 25}}}
        await asyncio.sleep(3 * POLL)
        before = await runs_in_metrics(http)
        assert before["changed"] >= 1 and before["unchanged"] >= 2  # the first, then quiet

        # A migration of the test's own holds the table: every run times out meanwhile.
        holder = await asyncpg.connect(**seeded.asyncpg_kwargs())
        try:
            await holder.execute("BEGIN; LOCK TABLE posts IN ACCESS EXCLUSIVE MODE")
            failed = await socket.receive()
            assert failed["payload"]["data"] is None
            assert failed["payload"]["errors"][0]["extensions"]["code"] == "LIMIT_EXCEEDED"
            await socket.quiet_for(1.5)  # several runs failed the same way: said once
            assert (await runs_in_metrics(http))["failed"] >= before["failed"] + 2
            await holder.execute(
                "INSERT INTO posts (title, content, published, author_id) VALUES "
                f"('Made while locked', '', true, '{ALICE}'); COMMIT"
            )
        finally:
            await holder.close()
        assert (await socket.receive())["payload"] == {"data": {"posts": {"totalCount": 26}}}


async def test_the_same_subscription_by_the_same_caller_is_polled_once(live, seeded):
    feed = (
        "subscription($n: Int) { posts(first: $n, orderBy: [{title: DESC}]) { nodes { title } } }"
    )
    async with socket_to(live) as one, socket_to(live) as two, socket_to(live) as alice:
        for socket in (one, two):
            await socket.init()  # both anonymous
            await socket.subscribe("feed", feed, variables={"n": 2})
            assert titles(await socket.receive(), "feed") == ["Post 25", "Post 24"]
        await alice.init(token_for(ALICE))
        await alice.subscribe("feed", feed, variables={"n": 2})  # another caller: its own
        await alice.receive()
        await one.subscribe("other", feed, variables={"n": 1})  # other variables: its own
        assert titles(await one.receive(), "other") == ["Post 25"]
        assert await subscriptions_in_metrics(live) == 4
        assert await live_queries_in_metrics(live) == 3

        # One poll, every listener told.
        connection = await asyncpg.connect(**seeded.asyncpg_kwargs())
        try:
            await connection.execute(
                "INSERT INTO posts (title, content, published, author_id) "
                f"VALUES ('Z is last', '', true, '{BOB}')"
            )
        finally:
            await connection.close()
        for socket in (one, two):
            assert titles(await socket.receive(), "feed") == ["Z is last", "Post 25"]
        assert titles(await one.receive(), "other") == ["Z is last"]

        await two.send({"id": "feed", "type": "complete"})
        await one.send({"id": "feed", "type": "complete"})
        await asyncio.sleep(3 * POLL)
        assert await subscriptions_in_metrics(live) == 2
        assert await live_queries_in_metrics(live) == 2
        # a newcomer after everyone left starts over, and gets the answer at once
        await two.subscribe("again", feed, variables={"n": 2})
        assert titles(await two.receive(), "again") == ["Z is last", "Post 25"]


async def live_queries_in_metrics(http: httpx.AsyncClient) -> float:
    text = (await http.get("/metrics")).text
    line = next(x for x in text.splitlines() if x.startswith("service_graphql_live_queries "))
    return float(line.split()[1])


async def test_a_mutation_under_way_when_the_socket_closes_still_lands(live, seeded):
    holder = await asyncpg.connect(**seeded.asyncpg_kwargs())
    try:
        # The test's own transaction holds the table: the mutation waits for it.
        await holder.execute("BEGIN; LOCK TABLE posts IN ACCESS EXCLUSIVE MODE")
        async with socket_to(live) as socket:
            await socket.init(token_for(ALICE))
            # two writes: one transaction, which a cancelled task would roll back
            create = (
                'mutation { a: createPost(input: {title: "Sent, then gone", content: ""}) { id } '
                'b: createPost(input: {title: "Sent, then gone", content: ""}) { id } }'
            )
            await socket.subscribe("m", create)
            await socket.subscribe("c", create.replace("Sent, then gone", "Completed"))
            await asyncio.sleep(0.3)  # both under way, waiting for the lock
            await socket.send({"id": "c", "type": "complete"})  # the client stops listening
        await asyncio.sleep(0.2)  # ... and leaves
        await holder.execute("COMMIT")
        for _ in range(50):
            made = await holder.fetchval(
                "SELECT count(*) FROM posts WHERE title IN ('Sent, then gone', 'Completed')"
            )
            if made == 4:
                break
            await asyncio.sleep(0.1)
        assert made == 4
    finally:
        await holder.close()


async def test_distinct_live_queries_per_process_are_limited_but_equal_ones_still_join(
    seeded: DatabaseURL,
):
    page = "subscription($n: Int) { posts(first: $n) { totalCount } }"
    settings = {"subscription_poll_seconds": POLL, "max_live_queries": 2}
    async with (
        RunningService(seeded, **settings) as http,
        socket_to(http) as one,
        socket_to(http) as two,
    ):
        await one.init()
        await two.init()
        for n in (1, 2):
            await one.subscribe(f"n{n}", page, variables={"n": n})
            assert (await one.receive())["type"] == "next"
        await two.subscribe("n3", page, variables={"n": 3})  # a third distinct one: refused
        refused = await two.receive()
        assert refused["id"] == "n3" and refused["type"] == "error"
        assert refused["payload"][0]["extensions"]["code"] == "LIMIT_EXCEEDED"
        await two.subscribe("n1", page, variables={"n": 1})  # the same as one's: shared
        assert (await two.receive())["payload"] == {"data": {"posts": {"totalCount": 25}}}

        await one.send({"id": "n2", "type": "complete"})
        await asyncio.sleep(2 * POLL)
        await two.subscribe("n3", page, variables={"n": 3})  # room again
        assert (await two.receive())["type"] == "next"


async def test_a_message_over_the_body_limit_closes_the_socket(seeded: DatabaseURL):
    async with RunningService(seeded, max_body_bytes=2000) as http, socket_to(http) as socket:
        await socket.init()
        await socket.subscribe("1", "{ posts { totalCount } }" + " " * 3000)
        assert (await socket.closed())[0] == 1009  # "message too big"


async def runs_in_metrics(http: httpx.AsyncClient) -> dict[str, float]:
    """service_graphql_live_query_runs_total by result."""
    runs = {"changed": 0.0, "unchanged": 0.0, "failed": 0.0}
    for line in (await http.get("/metrics")).text.splitlines():
        if line.startswith("service_graphql_live_query_runs_total{"):
            result = line.split('result="')[1].split('"')[0]
            runs[result] = float(line.split()[-1])
    return runs
