"""Event triggers: row changes recorded by PostgreSQL in the writing transaction and POSTed to
a webhook (EVENT_WEBHOOKS) until it answers 2xx, as Hasura's event triggers.

The webhook here is a real HTTP server in the test; the triggers are created as a migration
would create them (`events.capture('<name>')`, migration 0008).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import socket
import subprocess
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service.db.url import DatabaseURL
from service.events import APPLICATION_NAME
from tests.graphql.conftest import ALICE, BOB, gql, post_id
from tests.support import RunningService, execute_sql, fetch_sql, run_service

SECRET = "webhook-secret-for-tests"


class Webhook:
    """An HTTP server that keeps what it receives and answers with the statuses it is given
    (then 200)."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.statuses: list[int] = []
        self.arrived = asyncio.Condition()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))
        self.socket = sock
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
        app = Starlette(routes=[Route("/hook", self._receive, methods=["POST"])])
        self.server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False))

    async def _receive(self, request: Request) -> Response:
        body = await request.body()
        async with self.arrived:
            self.received.append((dict(request.headers), body))
            self.arrived.notify_all()
        return Response(status_code=self.statuses.pop(0) if self.statuses else 200)

    def events(self) -> list[dict[str, Any]]:
        return [orjson.loads(body) for _, body in self.received]

    async def wait_for(self, count: int, timeout: float = 20) -> list[dict[str, Any]]:
        async with self.arrived:
            await asyncio.wait_for(
                self.arrived.wait_for(lambda: len(self.received) >= count), timeout
            )
        return self.events()

    async def __aenter__(self) -> Webhook:
        self.task = asyncio.create_task(self.server.serve(sockets=[self.socket]))
        while not self.server.started:
            await asyncio.sleep(0.01)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.should_exit = True
        await self.task
        self.socket.close()


@pytest.fixture
async def webhook() -> AsyncIterator[Webhook]:
    async with Webhook() as hook:
        yield hook


async def add_trigger(url: DatabaseURL, name: str, table: str, operations: str) -> None:
    await execute_sql(
        url,
        f"CREATE TRIGGER {name} AFTER {operations} ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION events.capture('{name}')",
    )


async def comment(http: httpx.AsyncClient, body: str) -> None:
    """Alice comments on post 1."""
    made = await gql(
        http,
        "mutation($p: UUID!, $b: String!) { createComment(input: {postId: $p, body: $b}) { id } }",
        {"p": post_id(1), "b": body},
        as_user=ALICE,
    )
    assert "errors" not in made, made


async def event_log(url: DatabaseURL) -> list[asyncpg.Record]:
    return await fetch_sql(url, "SELECT * FROM events.event_log ORDER BY id")


async def test_committed_changes_reach_the_webhook_signed_with_who_made_them(
    seeded: DatabaseURL, webhook: Webhook
) -> None:
    await add_trigger(seeded, "comment_changes", "comments", "INSERT OR UPDATE OR DELETE")
    await add_trigger(seeded, "post_changes", "posts", "UPDATE")  # no webhook: kept
    service = RunningService(
        seeded,
        event_webhooks={"comment_changes": webhook.url},
        event_webhook_secret=SECRET,
    )
    async with service as http:
        made = await gql(
            http,
            'mutation($p: UUID!) { createComment(input: {postId: $p, body: "First"}) { id } }',
            {"p": post_id(2)},
            as_user=BOB,
        )
        comment = made["data"]["createComment"]["id"]
        [created] = await webhook.wait_for(1)
        headers, body = webhook.received[0]
        # the body is signed with the secret, so the receiver knows it is ours
        expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert headers["x-event-signature"] == f"sha256={expected}"
        assert headers["x-event-id"] == str(created["id"])
        assert headers["content-type"] == "application/json"
        assert created["trigger"] == "comment_changes"
        assert created["table"] == {"schema": "public", "name": "comments"}
        assert created["operation"] == "INSERT"
        assert created["old"] is None
        assert created["new"]["id"] == comment
        assert (created["new"]["body"], created["new"]["author_id"]) == ("First", BOB)
        assert created["claims"]["sub"] == BOB
        assert created["try"] == 1

        await gql(
            http,
            'mutation($id: UUID!) { updateComment(id: $id, input: {body: "Edited"}) { id } }',
            {"id": comment},
            as_user=BOB,
        )
        await gql(
            http,
            "mutation($id: UUID!) { deleteComment(id: $id) { id } }",
            {"id": comment},
            as_user=BOB,
        )
        _, updated, deleted = await webhook.wait_for(3)
        assert updated["operation"] == "UPDATE"
        assert (updated["old"]["body"], updated["new"]["body"]) == ("First", "Edited")
        assert deleted["operation"] == "DELETE"
        assert (deleted["old"]["body"], deleted["new"]) == ("Edited", None)

        # a write rolled back (a later field of its operation failed) records nothing
        rolled_back = await gql(
            http,
            """mutation($p: UUID!) {
              a: createComment(input: {postId: $p, body: "Gone"}) { id }
              b: createComment(input: {postId: "00000000-0000-0000-0000-00000000dead",
                                       body: "No such post"}) { id } }""",
            {"p": post_id(2)},
            as_user=BOB,
        )
        assert rolled_back["errors"]
        # a post's change without a webhook waits in the log for one to be configured
        await gql(
            http,
            'mutation($id: UUID!) { updatePost(id: $id, input: {title: "Renamed"}) { id } }',
            {"id": post_id(2)},
            as_user=ALICE,
        )
        await asyncio.sleep(1.5)  # more than a poll: anything due would have gone
    assert len(webhook.received) == 3
    log = await event_log(seeded)
    assert [(e["trigger_name"], e["operation"]) for e in log] == [
        ("comment_changes", "INSERT"),
        ("comment_changes", "UPDATE"),
        ("comment_changes", "DELETE"),
        ("post_changes", "UPDATE"),
    ]
    assert all(e["delivered_at"] is not None and e["last_status"] == 200 for e in log[:3])
    assert (log[3]["delivered_at"], log[3]["tries"]) == (None, 0)


async def test_a_failing_webhook_is_tried_again_then_given_up(
    seeded: DatabaseURL, webhook: Webhook
) -> None:
    await add_trigger(seeded, "comment_created", "comments", "INSERT")
    service = RunningService(
        seeded,
        event_webhooks={"comment_created": webhook.url},
        event_retry_seconds=0.05,
        event_max_tries=3,
    )
    webhook.statuses = [500, 503]  # then 200
    async with service as http:
        await comment(http, "Hi")
        tries = await webhook.wait_for(3)
        assert [t["try"] for t in tries] == [1, 2, 3]
        assert len({t["id"] for t in tries}) == 1  # the same event each time
        [delivered] = await event_log(seeded)
        assert (delivered["tries"], delivered["last_status"]) == (3, 200)
        assert delivered["delivered_at"] is not None

        # always refused: tried EVENT_MAX_TRIES times, then kept as given up
        webhook.statuses = [500] * 10
        await comment(http, "Ho")
        await webhook.wait_for(6)
        await asyncio.sleep(1.5)  # a fourth try would come within a poll
        assert len(webhook.received) == 6
        given_up = (await event_log(seeded))[1]
        assert (given_up["tries"], given_up["last_status"]) == (3, 500)
        assert given_up["last_error"] == "HTTP 500"
        assert given_up["given_up_at"] is not None and given_up["delivered_at"] is None
        metrics = (await http.get("/metrics")).text
    assert 'service_event_deliveries_total{outcome="given_up",trigger="comment_created"}' in (
        metrics
    )


async def test_an_unreachable_webhook_is_tried_again(seeded: DatabaseURL) -> None:
    await add_trigger(seeded, "comment_created", "comments", "INSERT")
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # a port nobody listens on
    url = f"http://127.0.0.1:{closed.getsockname()[1]}/hook"
    service = RunningService(
        seeded, event_webhooks={"comment_created": url}, event_retry_seconds=60
    )
    async with service as http:
        await comment(http, "Hi")
        for _ in range(100):
            [event] = await event_log(seeded)
            if event["tries"]:
                break
            await asyncio.sleep(0.05)
    closed.close()
    assert (event["tries"], event["last_status"], event["delivered_at"]) == (1, None, None)
    assert "ConnectError" in event["last_error"]
    assert event["given_up_at"] is None  # due again in a minute


async def test_deliveries_go_on_after_the_database_connection_is_lost(
    seeded: DatabaseURL, webhook: Webhook
) -> None:
    await add_trigger(seeded, "comment_created", "comments", "INSERT")
    async with RunningService(seeded, event_webhooks={"comment_created": webhook.url}):
        await execute_sql(
            seeded,
            f"INSERT INTO comments (body, post_id, author_id) "
            f"VALUES ('Before', '{post_id(1)}', '{ALICE}')",
        )
        await webhook.wait_for(1)
        # as a restart or failover would: the deliverer's connection is cut
        [cut] = await fetch_sql(
            seeded,
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE application_name = '{APPLICATION_NAME}'",
        )
        assert cut[0] is True
        await execute_sql(
            seeded,
            f"INSERT INTO comments (body, post_id, author_id) "
            f"VALUES ('After', '{post_id(1)}', '{ALICE}')",
        )
        events = await webhook.wait_for(2)
    assert [e["new"]["body"] for e in events] == ["Before", "After"]


async def test_replicas_share_the_deliveries_and_send_each_event_once(
    seeded: DatabaseURL, webhook: Webhook
) -> None:
    await add_trigger(seeded, "comment_created", "comments", "INSERT")
    settings = {"event_webhooks": {"comment_created": webhook.url}}
    async with RunningService(seeded, **settings), RunningService(seeded, **settings):
        await execute_sql(
            seeded,
            f"""INSERT INTO comments (body, post_id, author_id)
                SELECT 'Bulk ' || i, '{post_id(1)}', '{ALICE}' FROM generate_series(1, 60) i""",
        )
        await webhook.wait_for(60)
        await asyncio.sleep(1.5)
    ids = [e["id"] for e in webhook.events()]
    assert len(ids) == 60
    assert len(set(ids)) == 60


async def test_the_api_roles_cannot_read_or_write_the_event_log(seeded: DatabaseURL) -> None:
    await add_trigger(seeded, "comment_created", "comments", "INSERT")
    for role in ("anon", "authenticated"):
        for statement in (
            "SELECT count(*) FROM events.event_log",
            "DELETE FROM events.event_log",
            "SELECT events.capture()",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await execute_sql(seeded, f"SET ROLE {role}; {statement}")


async def test_given_up_events_are_listed_and_sent_again_from_the_command_line(
    seeded: DatabaseURL, webhook: Webhook
) -> None:
    await add_trigger(seeded, "comment_created", "comments", "INSERT")
    env = {"DATABASE_URL": seeded.sqlalchemy}

    async def service_events(*args: str) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(run_service, "events", *args, **env)

    empty = await service_events()
    assert (empty.returncode, empty.stdout) == (0, "the event log is empty\n"), empty.stderr
    service = RunningService(
        seeded,
        event_webhooks={"comment_created": webhook.url},
        event_retry_seconds=0.05,
        event_max_tries=2,
    )
    webhook.statuses = [500, 503]
    async with service as http:
        await comment(http, "Lost?")
        await webhook.wait_for(2)
        await comment(http, "Fine")
        await webhook.wait_for(3)
        [given_up, delivered] = await event_log(seeded)
        while given_up["given_up_at"] is None:  # the second answer is being recorded
            await asyncio.sleep(0.05)
            given_up = (await event_log(seeded))[0]

        listed = await service_events()
        assert listed.returncode == 0, listed.stderr
        lines = listed.stdout.splitlines()
        assert lines[0].split() == ["trigger", "waiting", "given", "up", "delivered"]
        assert lines[1].split() == ["comment_created", "0", "1", "1"]
        [shown] = [line for line in lines if line.strip().startswith(f"{given_up['id']} ")]
        assert "comment_created  INSERT public.comments  2 tries" in shown
        assert shown.endswith("HTTP 503")
        other = await service_events("list", "--trigger", "post_changes")
        assert other.returncode == 0 and "given up, latest first" not in other.stdout

        # Named events that are not given up are said so (and the exit status says it).
        mixed = await service_events("retry", str(delivered["id"]), "999999")
        assert mixed.returncode == 1
        assert mixed.stdout == "no given-up event matched\n"
        assert f"not given up (or not in the log): {delivered['id']}, 999999" in mixed.stderr
        nothing = await service_events("retry")
        assert nothing.returncode == 2
        assert "name the events: their ids, --trigger NAME or --all" in nothing.stderr
        negative = await service_events("list", "--limit", "-1")
        assert negative.returncode == 2
        assert "argument --limit: -1 is not 0 or more" in negative.stderr

        # Sent again: due at once, every try ahead of it, the running deliverer woken.
        again = await service_events("retry", "--trigger", "comment_created")
        assert (again.returncode, again.stdout) == (0, f"sent again: {given_up['id']}\n")
        events = await webhook.wait_for(4)
        assert (events[3]["id"], events[3]["try"]) == (given_up["id"], 1)
        assert events[3]["new"]["body"] == "Lost?"
        while (await event_log(seeded))[0]["delivered_at"] is None:
            await asyncio.sleep(0.05)
        after = await service_events()
        assert after.stdout.splitlines()[1].split() == ["comment_created", "0", "0", "2"]
        assert "given up, latest first" not in after.stdout
