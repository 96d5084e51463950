"""Stream subscriptions (`postsStream`): new rows as they come, each subscriber reading on
from where it has read to, over WebSocket and Server-Sent Events, under Row Level Security."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from service.db.url import DatabaseURL
from tests.graphql.conftest import ALICE, BOB, add_drafts, gql
from tests.graphql.test_event_streams import _events, _metric, _stream
from tests.graphql.test_subscriptions import POLL, socket_to
from tests.support import RunningService, token_for

NEW_POSTS = """subscription($after: String, $first: Int) {
  postsStream(first: $first, after: $after, orderBy: [{createdAt: ASC}]) {
    nodes { title } pageInfo { endCursor }
  }
}"""
SEEDED = [f"Post {i:02d}" for i in range(1, 26)]  # in createdAt order (the id breaks ties)


@pytest.fixture
async def live(seeded: DatabaseURL) -> AsyncIterator[httpx.AsyncClient]:
    async with RunningService(seeded, subscription_poll_seconds=POLL) as http:
        yield http


async def publish(http: httpx.AsyncClient, title: str, *, as_user: str) -> None:
    query = """mutation($t: String!) {
      createPost(input: {title: $t, content: "-", published: true}) { id } }"""
    body = await gql(http, query, {"t": title}, as_user=as_user)
    assert "errors" not in body, body


def batch(message: dict[str, Any], id_: str = "1") -> list[str]:
    assert message["id"] == id_ and message["type"] == "next", message
    return [n["title"] for n in message["payload"]["data"]["postsStream"]["nodes"]]


async def test_a_stream_sends_the_rows_it_has_not_sent_in_batches_and_then_new_ones(live, seeded):
    async with socket_to(live) as socket:
        await socket.init(token_for(ALICE))
        await socket.subscribe("1", NEW_POSTS, variables={"first": 10})
        # The rows there are, a batch of at most `first` each, one after another.
        sent = [batch(await socket.receive()) for _ in range(3)]
        assert [len(b) for b in sent] == [10, 10, 5]
        assert [title for b in sent for title in b] == SEEDED
        await socket.quiet_for(4 * POLL)  # nothing new: nothing is sent

        await publish(live, "New 1", as_user=ALICE)
        await publish(live, "New 2", as_user=BOB)
        got = batch(await socket.receive())
        if got == ["New 1"]:  # the poll may fall between the two inserts
            got += batch(await socket.receive())
        assert got == ["New 1", "New 2"]
        await add_drafts(seeded, BOB, "Bob's draft")  # not Alice's to see
        await socket.quiet_for(4 * POLL)
        await publish(live, "New 3", as_user=BOB)
        assert batch(await socket.receive()) == ["New 3"]
        await socket.quiet_for(4 * POLL)


async def test_each_subscriber_reads_on_from_its_own_place(live):
    async with socket_to(live) as early, socket_to(live) as late:
        await early.init(token_for(ALICE))
        await early.subscribe("1", NEW_POSTS, variables={"first": 100})
        assert batch(await early.receive()) == SEEDED
        await publish(live, "New 1", as_user=ALICE)
        assert batch(await early.receive()) == ["New 1"]

        # The same operation by the same caller, later: its own rows from the start, not the
        # earlier subscriber's latest batch.
        await late.init(token_for(ALICE))
        await late.subscribe("1", NEW_POSTS, variables={"first": 100})
        assert batch(await late.receive()) == [*SEEDED, "New 1"]
        await publish(live, "New 2", as_user=ALICE)
        assert batch(await early.receive()) == ["New 2"]
        assert batch(await late.receive()) == ["New 2"]
        assert await _metric(live, "service_graphql_live_queries") == 2  # one run each
    # Both subscribers gone: nothing runs for them any more.
    for _ in range(50):
        if await _metric(live, "service_graphql_live_queries") == 0:
            break
        await asyncio.sleep(0.1)
    assert await _metric(live, "service_graphql_live_queries") == 0


async def test_a_stream_starts_after_a_cursor_so_it_sends_only_what_comes_next(live):
    last = await gql(
        live,
        "{ posts(last: 1, orderBy: [{createdAt: ASC}]) { pageInfo { endCursor } } }",
    )
    after = last["data"]["posts"]["pageInfo"]["endCursor"]
    async with socket_to(live) as socket:
        await socket.init()
        await socket.subscribe("1", NEW_POSTS, variables={"after": after})
        await socket.quiet_for(4 * POLL)
        await publish(live, "New 1", as_user=ALICE)
        assert batch(await socket.receive()) == ["New 1"]


async def test_rows_are_streamed_only_to_callers_row_level_security_shows_them_to(live, seeded):
    async with socket_to(live) as alice, socket_to(live) as anonymous:
        await alice.init(token_for(ALICE))
        await anonymous.init()
        drafts = (
            "subscription { postsStream(filter: {published: {eq: false}}) { nodes { title } } }"
        )
        await alice.subscribe("1", drafts)
        await anonymous.subscribe("1", drafts)
        await alice.quiet_for(4 * POLL)  # no drafts yet
        await add_drafts(seeded, BOB, "Bob's")
        await add_drafts(seeded, ALICE, "Alice's")
        assert batch(await alice.receive()) == ["Alice's"]
        await anonymous.quiet_for(4 * POLL)
        await alice.quiet_for(POLL)


async def test_a_bad_cursor_or_page_size_ends_the_stream_with_bad_user_input(live):
    async with socket_to(live) as socket:
        await socket.init()
        await socket.subscribe("1", NEW_POSTS, variables={"after": "not a cursor"})
        error = await socket.receive()
        assert error["type"] == "error"
        assert error["payload"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        assert "cursor" in error["payload"][0]["message"]
        await socket.subscribe("2", NEW_POSTS, variables={"first": 101})
        error = await socket.receive()
        assert error["id"] == "2" and error["type"] == "error"
        assert error["payload"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        # Streams read forwards only: no `last` or `before`.
        await socket.subscribe("3", "subscription { postsStream(last: 1) { nodes { id } } }")
        error = await socket.receive()
        assert error["id"] == "3" and error["type"] == "error"
        assert "last" in error["payload"][0]["message"]


async def test_a_stream_over_server_sent_events(live: httpx.AsyncClient):
    query = NEW_POSTS
    async with _stream(live, query, variables={"first": 20}) as response:
        assert response.status_code == 200
        events = _events(response)
        seen = []
        for _ in range(2):
            name, data = await asyncio.wait_for(anext(events), 10)
            assert name == "next"
            seen += [n["title"] for n in data["data"]["postsStream"]["nodes"]]
        assert seen == SEEDED
        await publish(live, "Published later", as_user=ALICE)
        name, data = await asyncio.wait_for(anext(events), 10)
        assert [n["title"] for n in data["data"]["postsStream"]["nodes"]] == ["Published later"]
