"""GraphQL over Server-Sent Events: `/graphql` with `Accept: text/event-stream`, as the
graphql-sse client sends it (its "distinct connections mode"), over a real socket."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from service.db.url import DatabaseURL
from tests.graphql.conftest import ALICE, add_drafts, post_id
from tests.support import RunningService, token_for

EVENTS = {"accept": "text/event-stream"}
DRAFTS = "subscription { posts(filter: {published: {eq: false}}) { nodes { title } } }"


@pytest.fixture
async def service(seeded: DatabaseURL) -> AsyncIterator[httpx.AsyncClient]:
    async with RunningService(seeded, subscription_poll_seconds=0.1) as http:
        yield http


async def _events(response: httpx.Response) -> AsyncIterator[tuple[str, Any]]:
    """The stream's events as (name, data parsed as JSON, or None when empty); comments
    (keep-alives) as ("comment", text)."""
    name, data = "", []
    async for line in response.aiter_lines():
        if line.startswith(":"):
            yield "comment", line[1:].strip()
        elif line.startswith("event:"):
            name = line[len("event:") :].strip()
        elif line.startswith("data:"):
            data.append(line[len("data:") :].removeprefix(" "))
        elif line == "" and name:
            text = "\n".join(data)
            yield name, orjson.loads(text) if text else None
            name, data = "", []


def _stream(
    http: httpx.AsyncClient, query: str, *, as_user: str | None = None, **extra: Any
) -> contextlib.AbstractAsyncContextManager[httpx.Response]:
    headers = dict(EVENTS)
    if as_user:
        headers["authorization"] = f"Bearer {token_for(as_user)}"
    return http.stream("POST", "/graphql", json={"query": query, **extra}, headers=headers)


async def test_a_subscription_streams_each_new_answer(service, seeded):
    http = service
    async with _stream(http, DRAFTS, as_user=ALICE) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        events = _events(response)
        assert await anext(events) == ("next", {"data": {"posts": {"nodes": []}}})
        assert await _metric(http, "service_graphql_subscriptions") == 1
        # her draft appears: a new answer; only she may see it (Row Level Security)
        await add_drafts(seeded, ALICE, "Hers")
        name, data = await asyncio.wait_for(anext(events), 10)
        assert (name, data) == ("next", {"data": {"posts": {"nodes": [{"title": "Hers"}]}}})
    # the client closed the stream: the server stops polling it
    for name in ("service_graphql_live_queries", "service_graphql_subscriptions"):
        for _ in range(50):
            if await _metric(http, name) == 0:
                break
            await asyncio.sleep(0.1)
        assert await _metric(http, name) == 0, name


async def test_an_anonymous_subscriber_sees_what_anonymous_callers_may(service, seeded):
    await add_drafts(seeded, ALICE, "Hers")
    async with _stream(service, DRAFTS) as response:
        assert await anext(_events(response)) == ("next", {"data": {"posts": {"nodes": []}}})


async def test_a_query_or_mutation_is_one_answer_then_complete(service, seeded):
    async with _stream(
        service, "query($id: UUID!) { post(id: $id) { title } }", variables={"id": post_id(2)}
    ) as response:
        assert [e async for e in _events(response)] == [
            ("next", {"data": {"post": {"title": "Post 02"}}}),
            ("complete", None),
        ]
    mutation = 'mutation { createPost(input: {title: "Streamed", content: ""}) { title } }'
    async with _stream(service, mutation, as_user=ALICE) as response:
        assert [e async for e in _events(response)] == [
            ("next", {"data": {"createPost": {"title": "Streamed"}}}),
            ("complete", None),
        ]


async def test_an_operation_that_cannot_run_is_an_errors_event_then_complete(service):
    cases = [
        ("subscription { posts { nope } }", "BAD_USER_INPUT"),
        ("subscription { posts(first: 1000) { totalCount } }", "BAD_USER_INPUT"),
        ("{ posts { totalCount } ", "BAD_USER_INPUT"),  # a syntax error
    ]
    for query, code in cases:
        async with _stream(service, query) as response:
            assert response.status_code == 200
            events = [e async for e in _events(response)]
            assert [name for name, _ in events] == ["next", "complete"], (query, events)
            assert events[0][1]["errors"][0]["extensions"]["code"] == code, (query, events)
    # a body that is not JSON, and a batch
    for body in (b"{", b"[]"):
        async with service.stream(
            "POST",
            "/graphql",
            content=body,
            headers={**EVENTS, "content-type": "application/json"},
        ) as response:
            events = [e async for e in _events(response)]
            assert events[0][1]["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
            assert events[1] == ("complete", None)


async def test_a_bad_token_is_a_401_before_any_stream(service):
    response = await service.post(
        "/graphql",
        json={"query": DRAFTS},
        headers={**EVENTS, "authorization": "Bearer not-a-token"},
    )
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_get_streams_a_subscription_as_eventsource_asks(service):
    # the browser's EventSource: GET, no body, no headers of the page's own
    async with service.stream(
        "GET", "/graphql", params={"query": DRAFTS}, headers=EVENTS
    ) as response:
        assert response.status_code == 200
        assert await anext(_events(response)) == ("next", {"data": {"posts": {"nodes": []}}})
    async with service.stream(
        "GET",
        "/graphql",
        params={"query": "mutation { deletePosts(filter: {}) { id } }"},
        headers=EVENTS,
    ) as response:
        events = [e async for e in _events(response)]
        assert events[0][1]["errors"][0]["message"] == "mutations need POST"


async def test_json_is_still_the_answer_unless_the_stream_is_preferred(service):
    query = {"query": '{ post(id: "' + post_id(2) + '") { title } }'}
    for accept in ("application/json", "application/json, text/event-stream;q=0.5", "*/*"):
        response = await service.post("/graphql", json=query, headers={"accept": accept})
        assert response.headers["content-type"].startswith("application/json"), accept
    response = await service.post(
        "/graphql", json={"query": DRAFTS}, headers={"accept": "application/json"}
    )
    assert "text/event-stream" in response.json()["errors"][0]["message"]


async def test_a_quiet_stream_gets_keep_alive_comments(seeded):
    async with (
        RunningService(seeded, sse_keepalive_seconds=0.2) as http,
        _stream(http, DRAFTS) as response,
    ):
        events = _events(response)
        assert (await anext(events))[0] == "next"
        assert await asyncio.wait_for(anext(events), 5) == ("comment", "keep-alive")


async def test_the_stream_ends_when_the_token_expires(seeded):
    settings = {"subscription_poll_seconds": 0.1, "jwt_leeway_seconds": 0}
    async with RunningService(seeded, **settings) as http:
        token = token_for(ALICE, ttl_seconds=2)
        headers = {**EVENTS, "authorization": f"Bearer {token}"}
        async with http.stream(
            "POST", "/graphql", json={"query": DRAFTS}, headers=headers
        ) as response:
            events = [e async for e in _events(response)]  # ends on its own
    # answers, then no `complete`: the client reconnects, with a fresh token
    assert [name for name, _ in events] == ["next"]


async def _metric(http: httpx.AsyncClient, name: str) -> float:
    text = (await http.get("/metrics")).text
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name} in /metrics")
