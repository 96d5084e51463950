"""Bad input over real HTTP: always a clear client error, never a 500, a traceback or SQL text.

Every case goes through the served app on a real socket and a seeded PostgreSQL. A client's
mistake must come back as a 4xx or as GraphQL errors whose `extensions.code` is one of API.md's,
with nothing of PostgreSQL's or Python's internals in it, and the server must not log it as an
ERROR or with a traceback (that is for our bugs and outages, which page someone).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from dateutil.parser import isoparse
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLObjectType,
    build_schema,
    get_introspection_query,
    get_named_type,
    get_nullable_type,
)
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.graphql.conftest import ALICE, SEED, post_id
from tests.support import CLIENT_CODES, LEAKS, RunningService, Server, token_for

CLIENT_STATUSES = {200, 400, 401, 405, 413, 415}
GRAPHQL_RESPONSE = "application/graphql-response+json"


class Captured(logging.Handler):
    """The records the service's loggers (and uvicorn's error logger) emit while serving."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def take(self) -> list[logging.LogRecord]:
        taken, self.records = self.records, []
        return taken


@dataclass
class Service:
    http: httpx.AsyncClient
    logs: Captured
    token: str

    async def request(
        self,
        method: str,
        url: str = "/graphql",
        *,
        statuses: set[int] = CLIENT_STATUSES,
        **kwargs: Any,
    ) -> httpx.Response:
        self.logs.take()
        response = await self.http.request(method, url, **kwargs)
        self.assert_client_error_only(response, statuses)
        return response

    async def post(self, payload: Any, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", content=orjson.dumps(payload), **_json_headers(kwargs))

    async def gql(
        self, query: str, variables: Any = None, *, user: bool = False, **extra: Any
    ) -> dict[str, Any]:
        """A request that must be answered as GraphQL (200 or 400 with a JSON body)."""
        payload: dict[str, Any] = {"query": query, **extra}
        if variables is not None:
            payload["variables"] = variables
        headers = {"authorization": f"Bearer {self.token}"} if user else {}
        response = await self.post(payload, headers=headers)
        assert response.status_code in (200, 400), response.text
        body: dict[str, Any] = response.json()
        return body

    def assert_client_error_only(self, response: httpx.Response, statuses: set[int]) -> None:
        text = response.text
        assert response.status_code in statuses, (response.status_code, text[:2000])
        for leak in LEAKS:
            assert leak not in text, (leak, text[:2000])
        json_types = ("application/json", GRAPHQL_RESPONSE)
        if response.content and response.headers.get("content-type", "").startswith(json_types):
            body = response.json()
            for answer in body if isinstance(body, list) else [body]:  # a batch: each answer
                for error in answer.get("errors") or []:
                    assert isinstance(error.get("message"), str) and error["message"], error
                    assert error.get("extensions", {}).get("code") in CLIENT_CODES, error
        problems = [
            r for r in self.logs.take() if r.levelno >= logging.ERROR or r.exc_info is not None
        ]
        assert not problems, [f"{r.levelname} {r.name}: {r.getMessage()}" for r in problems]


def _json_headers(kwargs: dict[str, Any]) -> dict[str, Any]:
    headers = {"content-type": "application/json", **kwargs.pop("headers", {})}
    return {"headers": headers, **kwargs}


def errors_of(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors") or []]


def bad(body: dict[str, Any], code: str = "BAD_USER_INPUT") -> str:
    """The body is a refusal with `code` and no data; returns the message(s)."""
    assert body.get("data") is None, body
    assert errors_of(body) and set(errors_of(body)) == {code}, body
    return " ".join(e["message"] for e in body["errors"])


def b64(text: str | bytes) -> str:
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


@contextmanager
def capturing(handler: Captured) -> Iterator[None]:
    # After the app is built: building it sets up logging, which replaces uvicorn's handlers.
    loggers = [logging.getLogger(name) for name in ("service", "uvicorn.error")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


@pytest.fixture(scope="module")
async def service(postgres: Server, template: str) -> AsyncIterator[Service]:
    """One seeded database and one served app for the whole module: the cases only read, or
    write rows of their own."""
    name = f"bad_input_{os.getpid()}"
    await postgres.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    await postgres.execute(f"CREATE DATABASE {name} TEMPLATE {template}")
    url = postgres.url(name)
    try:
        connection = await asyncpg.connect(**url.asyncpg_kwargs())
        try:
            await connection.execute(SEED)
        finally:
            await connection.close()
        served = RunningService(url)
        handler = Captured()
        with capturing(handler):
            async with served as http:
                yield Service(http, handler, token_for(ALICE))
    finally:
        await postgres.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


# --- the body and the request line ---------------------------------------------------------

JSON = "application/json"


@pytest.mark.parametrize(
    ("content", "content_type", "status", "code"),
    [
        (b"", JSON, 400, "BAD_USER_INPUT"),
        (b"hello", JSON, 400, "BAD_USER_INPUT"),
        (b"{", JSON, 400, "BAD_USER_INPUT"),
        (b'{"query": "{ posts { totalCount } }"', JSON, 400, "BAD_USER_INPUT"),
        (b"null", JSON, 400, "BAD_USER_INPUT"),
        (b"42", JSON, 400, "BAD_USER_INPUT"),
        (b'"{ posts { totalCount } }"', JSON, 400, "BAD_USER_INPUT"),
        (b'{"query": "\xff\xfe"}', JSON, 400, "BAD_USER_INPUT"),
        (
            b'{"query": "{ posts(filter: {title: {eq: \\"\xc3\\"}}) { totalCount } }"}',
            JSON,
            400,
            "BAD_USER_INPUT",
        ),
        (
            b'{"query": "{ __typename }", "variables": {"a": "\\ud800"}}',
            JSON,
            400,
            "BAD_USER_INPUT",
        ),
        (b"\xef\xbb\xbf" + b'{"query": "{ __typename }"}', JSON, 400, "BAD_USER_INPUT"),
        (b'{"query": "{ __typename }", "variables": {"a": NaN}}', JSON, 400, "BAD_USER_INPUT"),
        (b'{"query": "{ __typename }", "variables": {"a": Infinity}}', JSON, 400, "BAD_USER_INPUT"),
        (b'{"query": "{ __typename }", "variables": {"a": 1e999}}', JSON, 400, "BAD_USER_INPUT"),
        (b'{"query": "{ __typename }"} trailing', JSON, 400, "BAD_USER_INPUT"),
        # a duplicate key: the last one wins, as JSON parsers do
        (b'{"query": "{ __typename }", "query": 1}', JSON, 400, "BAD_USER_INPUT"),
        (b"[" * 5000 + b"]" * 5000, JSON, 400, "LIMIT_EXCEEDED"),
        (b'{"query": {"a": ' * 2000 + b"1" + b"}" * 2000 + b"}", JSON, 400, "LIMIT_EXCEEDED"),
        (b'{"query": "{ __typename }"}', "text/plain", 415, "BAD_USER_INPUT"),
        (
            b'{"query": "{ __typename }"}',
            "application/x-www-form-urlencoded",
            415,
            "BAD_USER_INPUT",
        ),
        (b"query=%7B__typename%7D", "application/x-www-form-urlencoded", 415, "BAD_USER_INPUT"),
        (b'{"query": "{ __typename }"}', "multipart/form-data; boundary=x", 415, "BAD_USER_INPUT"),
        (b'{"query": "{ __typename }"}', "application/json; charset=utf-16", 415, "BAD_USER_INPUT"),
        (b'{"query": "{ __typename }"}', "application/json; charset=latin1", 415, "BAD_USER_INPUT"),
        (b"\xff\xfe{ __typename }", "application/graphql", 400, "BAD_USER_INPUT"),
        (
            b'mutation { createPost(input: {title: "\xff", content: "c"}) { id } }',
            "application/graphql",
            400,
            "BAD_USER_INPUT",
        ),
    ],
)
async def test_a_body_that_is_not_a_graphql_request_is_a_clear_4xx(
    service, content, content_type, status, code
):
    response = await service.request(
        "POST", content=content, headers={"content-type": content_type}
    )
    assert response.status_code == status, response.text
    assert errors_of(response.json()) == [code]


@pytest.mark.parametrize(
    ("content_type", "content"),
    [
        ("application/json", b'{"query": "{ __typename }"}'),
        ("application/json; charset=utf-8", b'{"query": "{ __typename }"}'),
        ('Application/JSON; Charset="UTF-8"', b'{"query": "{ __typename }"}'),
        (None, b'{"query": "{ __typename }"}'),
        ("application/graphql", b"{ __typename }"),
        ("application/graphql; charset=utf-8", "{ __typename } # caf\u00e9".encode()),
    ],
)
async def test_well_formed_bodies_are_served(service, content_type, content):
    headers = {"content-type": content_type} if content_type else {}
    response = await service.request("POST", content=content, headers=headers)
    assert response.status_code == 200
    assert response.json() == {"data": {"__typename": "Query"}}


async def test_an_empty_document_is_a_graphql_error(service):
    response = await service.request(
        "POST", content=b"", headers={"content-type": "application/graphql"}
    )
    bad(response.json())


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"query": None},
        {"query": ""},
        {"query": 42},
        {"query": ["{ __typename }"]},
        {"query": {"text": "{ __typename }"}},
        {"query": "{ __typename }", "operationName": 1},
        {"query": "{ __typename }", "operationName": ["a"]},
        {"query": "{ __typename }", "variables": "{}"},
        {"query": "{ __typename }", "variables": []},
        {"query": "{ __typename }", "variables": 1},
        {"query": "{ __typename }", "variables": True},
        {"query": "{ __typename }", "extensions": "x"},
        {"query": "{ __typename }", "extensions": []},
    ],
)
async def test_a_malformed_request_object_is_a_400(service, payload):
    response = await service.post(payload)
    assert response.status_code == 400, response.text
    assert errors_of(response.json()) == ["BAD_USER_INPUT"]


async def test_extensions_as_an_object_are_accepted_and_ignored(service):
    response = await service.post({"query": "{ __typename }", "extensions": {"persisted": 1}})
    assert response.json() == {"data": {"__typename": "Query"}}


async def test_a_batch_answers_each_request_in_its_place(service):
    # (tests/graphql/test_batches.py: order, transactions, limits)
    response = await service.post([{"query": "{ __typename }"}, {"query": 1}, None, []])
    assert response.status_code == 200
    first, *bad = response.json()
    assert first == {"data": {"__typename": "Query"}}
    assert [errors_of(b) for b in bad] == [["BAD_USER_INPUT"]] * 3


async def test_an_empty_batch_is_refused(service):
    response = await service.post([])
    assert response.status_code == 400
    assert errors_of(response.json()) == ["BAD_USER_INPUT"]


@pytest.mark.parametrize("size", [1_000_001, 3_000_000])
async def test_a_body_over_the_limit_is_a_413(service, size):
    padding = "x" * size
    response = await service.post({"query": "{ __typename }", "padding": padding})
    assert response.status_code == 413
    assert errors_of(response.json()) == ["LIMIT_EXCEEDED"]


async def test_a_streamed_body_over_the_limit_is_a_413_without_a_length(service):
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"query": "{ __typename }", "padding": "'
        for _ in range(40):
            yield b"x" * 50_000
        yield b'"}'

    response = await service.request(
        "POST", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


async def test_a_body_streamed_in_pieces_is_read_whole(service):
    # Chunked, no length: the endpoint joins the pieces (a query split mid-token included).
    async def chunks() -> AsyncIterator[bytes]:
        for piece in (b'{"query": "{ __type', b"name }", b'", "operationName": null}'):
            yield piece
            await asyncio.sleep(0.01)  # separate writes, so separate messages to the app

    response = await service.request(
        "POST", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 200
    assert response.json() == {"data": {"__typename": "Query"}}


async def test_a_client_that_hangs_up_mid_body_leaves_no_error_behind(service):
    # A phone going into a tunnel: the request stops half-sent. Nothing to answer, nothing to
    # log as an error (it is not the service's fault), and the service serves on.
    url = httpx.URL(str(service.http.base_url))
    _, writer = await asyncio.open_connection(url.host, url.port)
    writer.write(
        b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Content-Length: 100\r\n\r\n{"query": "{ __type'
    )
    await writer.drain()
    await asyncio.sleep(0.2)  # the app is reading the body
    writer.close()
    await writer.wait_closed()
    await asyncio.sleep(0.3)  # and learns of the hang-up
    records = service.logs.take()
    problems = [r for r in records if r.levelno >= logging.ERROR or r.exc_info]
    assert not problems, [f"{r.levelname} {r.name}: {r.getMessage()}" for r in problems]
    # The request log says what happened, as nginx would: 499, client closed request.
    assert any("POST /graphql 499" in r.getMessage() for r in records), [
        r.getMessage() for r in records
    ]
    response = await service.post({"query": "{ __typename }"})
    assert response.json() == {"data": {"__typename": "Query"}}


async def raw_status(service: Service, request: bytes) -> int:
    """Send bytes no HTTP client would; the status line's code."""
    url = httpx.URL(str(service.http.base_url))
    reader, writer = await asyncio.open_connection(url.host, url.port)
    try:
        writer.write(request)
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 10)
    finally:
        writer.close()
    return int(status_line.split()[1])


@pytest.mark.parametrize(
    "framing",
    [
        b"Content-Length: abc\r\n\r\n{}",
        b"Content-Length: -1\r\n\r\n{}",
        b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
        b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
        b"Transfer-Encoding: gzip\r\n\r\n{}",
    ],
)
async def test_a_body_of_broken_framing_is_a_400(service, framing):
    head = b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    assert await raw_status(service, head + framing) == 400


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS"])
async def test_other_methods_are_405(service, method):
    response = await service.request(method, json={"query": "{ __typename }"})
    assert response.status_code == 405


# --- GET -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({}, 400),
        ({"query": ""}, 400),
        ({"query": "{ __typename }", "variables": "{"}, 400),
        ({"query": "{ __typename }", "variables": "[]"}, 400),
        ({"query": "{ __typename }", "variables": '"x"'}, 400),
        ({"query": "{ __typename }", "variables": "NaN"}, 400),
        ({"query": "{ __typename }", "variables": "null"}, 200),
        ({"query": 'mutation { deletePost(id: "' + post_id(1) + '") { id } }'}, 405),
        ({"query": "mutation A { __typename } query B { __typename }", "operationName": "A"}, 405),
        ({"query": "{ __typename }", "operationName": "Nope"}, 200),
        (
            {
                "query": "query($n: Int) { posts(first: $n) { totalCount } }",
                "variables": '{"n": "x"}',
            },
            200,
        ),
        # read since persisted queries: like POST's, they must be a JSON object
        ({"query": "{ posts(first: 1) { nodes { title } } }", "extensions": "{"}, 400),
        ({"query": "{ posts(first: 1) { nodes { title } } }", "extensions": "[]"}, 400),
        ({"query": "{ posts(first: 1) { nodes { title } } }", "extensions": "{}"}, 200),
    ],
)
async def test_get_with_bad_parameters_is_a_clear_error(service, params, status):
    response = await service.request("GET", params=params)
    assert response.status_code == status, response.text
    if status == 405:
        assert response.headers["allow"] == "POST"
        assert errors_of(response.json()) == ["BAD_USER_INPUT"]


async def test_head_is_answered_like_get(service):
    response = await service.request("HEAD", params={"query": "{ __typename }"})
    assert response.status_code == 200
    response = await service.request("HEAD", params={"query": "mutation { __typename }"})
    assert response.status_code == 405


async def test_get_with_a_query_string_of_invalid_percent_encoding_is_not_a_500(service):
    response = await service.request("GET", "/graphql?query=%7B%20__typename%20%7D%ff%fe")
    bad(response.json())
    response = await service.request("GET", "/graphql?query=%7B%20__typename%20%7D&variables=%ff")
    assert response.status_code == 400


# --- documents -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "operation_name", "code"),
    [
        ("{ posts { totalCount } }", "Nope", "BAD_USER_INPUT"),
        ("query A { __typename } query B { __typename }", None, "BAD_USER_INPUT"),
        ("query A { __typename } query A { __typename }", "A", "BAD_USER_INPUT"),
        ("query A { __typename } { __typename }", None, "BAD_USER_INPUT"),
        ("subscription { posts { totalCount } }", None, "BAD_USER_INPUT"),
        ("subscription S { __typename }", "S", "BAD_USER_INPUT"),
        (
            "{ posts { ...F } } fragment F on PostConnection { ...G } "
            "fragment G on PostConnection { ...F }",
            None,
            "BAD_USER_INPUT",
        ),
        ("{ posts { ...F } } fragment F on PostConnection { ...F }", None, "BAD_USER_INPUT"),
        ("{ posts { ...Missing } }", None, "BAD_USER_INPUT"),
        ("{ posts { ... on Post { id } } }", None, "BAD_USER_INPUT"),
        ("{ posts { totalCount } } fragment Unused on Post { id }", None, "BAD_USER_INPUT"),
        ("{ nope }", None, "BAD_USER_INPUT"),
        ("{ posts }", None, "BAD_USER_INPUT"),
        ("{ posts { totalCount { x } } }", None, "BAD_USER_INPUT"),
        ("{ posts(nope: 1) { totalCount } }", None, "BAD_USER_INPUT"),
        ("{ posts(first: 1, first: 2) { totalCount } }", None, "BAD_USER_INPUT"),
        ("{ posts { totalCount @nope } }", None, "BAD_USER_INPUT"),
        ("{ posts { totalCount @skip } }", None, "BAD_USER_INPUT"),
        ("{ posts { totalCount @skip(if: true) @skip(if: false) } }", None, "BAD_USER_INPUT"),
        ("query($a: Int, $a: Int) { posts(first: $a) { totalCount } }", None, "BAD_USER_INPUT"),
        ("query { posts(first: $undeclared) { totalCount } }", None, "BAD_USER_INPUT"),
        ("query($n: String) { posts(first: $n) { totalCount } }", None, "BAD_USER_INPUT"),
        ("query($n: PostFilter) { __typename }", None, "BAD_USER_INPUT"),
        ("query($n: Nope) { __typename }", None, "BAD_USER_INPUT"),
        ("query($n: Post) { __typename }", None, "BAD_USER_INPUT"),
        ("mutation { __typename nope }", None, "BAD_USER_INPUT"),
        ("{ alias: posts { totalCount } alias: users { totalCount } }", None, "BAD_USER_INPUT"),
        ("{", None, "BAD_USER_INPUT"),
        ("}", None, "BAD_USER_INPUT"),
        ("{ __typename }\u0000", None, "BAD_USER_INPUT"),
        ('{ posts(filter: {title: {eq: "\\uD800"}}) { totalCount } }', None, "BAD_USER_INPUT"),
        ('{ posts(filter: {title: {eq: "\\u{110000}"}}) { totalCount } }', None, "BAD_USER_INPUT"),
        ("# only a comment", None, "BAD_USER_INPUT"),
        ("fragment F on Post { id }", None, "BAD_USER_INPUT"),
    ],
)
async def test_an_invalid_document_is_a_graphql_error(service, query, operation_name, code):
    body = await service.gql(query, operationName=operation_name)
    bad(body, code)


async def test_invalid_documents_are_a_400_for_graphql_response_clients(service):
    response = await service.post({"query": "{ nope }"}, headers={"accept": GRAPHQL_RESPONSE})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    assert errors_of(response.json()) == ["BAD_USER_INPUT"]


@pytest.mark.parametrize(
    "query",
    [
        # selection depth
        "{ posts { nodes { author { posts { nodes { comments { nodes { post { author { posts "
        "{ nodes { comments { nodes { post { author { id } } } } } } } } } } } } } } } }",
        # aliases
        "{ " + " ".join(f"a{i}: __typename" for i in range(40)) + " }",
        # tokens
        "{ " + " ".join("__typename" for _ in range(6000)) + " }",
    ],
)
async def test_documents_past_the_limits_are_limit_exceeded(service, query):
    bad(await service.gql(query), "LIMIT_EXCEEDED")


@pytest.mark.parametrize(
    "query",
    [
        "{" * 3000 + "}" * 3000,
        "{ posts " + "{ nodes " * 1500 + "}" * 1501 + " }",
        "{ posts(filter: " + "{and: [" * 700 + "{}" + "]}" * 700 + ") { totalCount } }",
        "{ posts(filter: " + "{not: " * 1500 + "{}" + "}" * 1500 + ") { totalCount } }",
        "{ posts(filter: " + "{author: {posts: {some: " * 500 + "{}" + "}}}" * 500 + ") { id } }",
        "{ posts(orderBy: " + "[" * 2400 + "]" * 2400 + ") { totalCount } }",
        "query($a: " + "[" * 2000 + "Int" + "]" * 2000 + ") { __typename }",
        "{ __typename " + "... on Query { " * 1200 + "__typename" + " }" * 1200 + " }",
    ],
)
async def test_deeply_nested_documents_are_refused_not_crashed_on(service, query):
    body = await service.gql(query)
    assert set(errors_of(body)) <= {"BAD_USER_INPUT", "LIMIT_EXCEEDED"}, body
    assert errors_of(body), body


@pytest.mark.parametrize("depth", [50, 150, 600])
async def test_deeply_nested_filters_in_variables_are_answered_or_refused(service, depth):
    # built as text: JSON encoders refuse to nest this deep, a client's hand-made body need not
    inner = '{"title": {"eq": "Post 01"}}'
    text = '{"and": [' * depth + inner + "]}" * depth
    body = await _posts_count(service, text)
    if depth <= 50:
        assert body == {"data": {"posts": {"totalCount": 1}}}
    else:
        assert "nested too deeply" in bad(body, "LIMIT_EXCEEDED")


@pytest.mark.parametrize("steps", [2, 7, 100])
async def test_filters_through_relations_are_held_to_the_depth_limit(service, steps):
    # posts with a comment whose post has a comment whose post ... is Post 01: two relations
    # a step, each a sub-select; past MAX_QUERY_DEPTH (12) relations the filter is refused
    # before PostgreSQL plans it
    inner = '{"title": {"eq": "Post 01"}}'
    text = '{"comments": {"some": {"post": ' * steps + inner + "}}}" * steps
    body = await _posts_count(service, text)
    if 2 * steps <= 12:
        assert body == {"data": {"posts": {"totalCount": 1}}}
    elif steps < 50:
        assert "at most 12 relations" in bad(body, "LIMIT_EXCEEDED")
    else:
        assert "nested too deeply" in bad(body, "LIMIT_EXCEEDED")


async def _posts_count(service, filter_text: str) -> dict:
    response = await service.request(
        "POST",
        content=b'{"query": "query($f: PostFilter) { posts(filter: $f) { totalCount } }", '
        + b'"variables": {"f": '
        + filter_text.encode()
        + b"}}",
        headers={"content-type": "application/json"},
    )
    return response.json()


def fragment_bomb(levels: int) -> str:
    """Each fragment spreads the one below twice: 2**levels fields once expanded."""
    fragments = ["fragment F0 on Query { posts { totalCount } }"]
    fragments += [
        f"fragment F{i} on Query {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, levels + 1)
    ]
    return f"{{ ...F{levels} }} " + " ".join(fragments)


async def test_fragments_spread_exponentially_are_answered_at_once(service):
    started = time.perf_counter()
    body = await service.gql(fragment_bomb(40))
    assert body == {"data": {"posts": {"totalCount": 25}}}
    assert time.perf_counter() - started < 2


async def test_fragments_multiplying_aliases_or_depth_are_limit_exceeded_at_once(service):
    aliases = ["fragment A0 on Query { a: __typename }"]
    aliases += [
        f"fragment A{i} on Query {{ ...A{i - 1} ... on Query {{ ...A{i - 1} }} }}"
        for i in range(1, 40)
    ]
    started = time.perf_counter()
    bad(await service.gql("{ ...A39 } " + " ".join(aliases)), "LIMIT_EXCEEDED")
    deep = ["fragment D0 on Post { id }"]
    deep += [
        f"fragment D{i} on Post {{ author {{ posts {{ nodes {{ ...D{i - 1} ...D{i - 1} }} }} }} }}"
        for i in range(1, 30)
    ]
    bad(await service.gql("{ posts { nodes { ...D29 } } } " + " ".join(deep)), "LIMIT_EXCEEDED")
    assert time.perf_counter() - started < 2


@pytest.mark.parametrize(
    "query",
    [
        "{ " + " ".join("posts { totalCount }" for _ in range(300)) + " }",
        "{ posts { " + " ".join("nodes { id }" for _ in range(300)) + " } }",
        "{ ...F } "
        + " ".join(
            f"fragment F{i} on Query {{ posts {{ totalCount }} }}" for i in range(300)
        ).replace(
            "fragment F0 on Query {",
            "fragment F on Query { " + " ".join(f"...F{i}" for i in range(1, 300)) + " ",
        ),
    ],
)
async def test_a_field_repeated_hundreds_of_times_is_limit_exceeded_at_once(service, query):
    started = time.perf_counter()
    message = bad(await service.gql(query), "LIMIT_EXCEEDED")
    assert "more than 50 times" in message
    assert time.perf_counter() - started < 1


async def test_a_field_repeated_a_few_times_is_merged(service):
    query = "{ " + " ".join("posts(first: 1) { nodes { id } totalCount }" for _ in range(50)) + " }"
    body = await service.gql(query)
    assert body == {"data": {"posts": {"nodes": [{"id": post_id(1)}], "totalCount": 25}}}


@pytest.mark.parametrize(
    ("query", "data"),
    [
        ("{ }", {}),
        ("{ posts { } }", {"posts": {}}),
        ("{ posts(first: 1) { nodes { } } }", {"posts": {"nodes": [{}]}}),
    ],
)
async def test_empty_selection_sets_are_answered_empty(service, query, data):
    assert await service.gql(query) == {"data": data}


@pytest.mark.parametrize(
    "query",
    [
        "{ ...F } fragment F on Query { __schema { queryType { name } } }",
        "{ ...F posts(first: 1) { totalCount } } "
        "fragment F on Query { __schema { queryType { name } } }",
        "{ ... on Query { __schema { queryType { name } } } posts(first: 1) { totalCount } }",
        "{ ... @include(if: true) { __schema { queryType { name } } } }",
    ],
)
async def test_introspection_inside_fragments_is_answered(service, query):
    body = await service.gql(query)
    assert body["data"]["__schema"] == {"queryType": {"name": "Query"}}, body
    if "posts" in query:
        assert body["data"]["posts"] == {"totalCount": 25}


async def test_the_introspection_query_of_graphiql_passes_the_limits(service):
    body = await service.gql(get_introspection_query(descriptions=True))
    assert "errors" not in body
    assert body["data"]["__schema"]["queryType"]["name"] == "Query"


async def test_typename_everywhere_is_answered(service):
    query = """
    { __typename
      posts(first: 1) { __typename totalCount
        edges { __typename cursor node { __typename nodeId } }
        nodes { __typename author { __typename } comments(first: 1) { __typename
          nodes { __typename post { __typename } } pageInfo { __typename } } }
        pageInfo { __typename hasNextPage } }
      viewer { __typename }
      node(nodeId: "NODE_ID") { __typename ... on Post { __typename title } } }
    """.replace("NODE_ID", b64(f"Post:{post_id(1)}"))
    body = await service.gql(query)
    assert "errors" not in body, body
    data = body["data"]
    assert data["__typename"] == "Query"
    assert data["posts"]["__typename"] == "PostConnection"
    assert data["posts"]["edges"][0]["__typename"] == "PostEdge"
    assert data["posts"]["nodes"][0]["comments"]["pageInfo"] == {"__typename": "PageInfo"}
    assert data["node"] == {"__typename": "Post", "title": "Post 01"}


async def test_introspection_mixed_with_data_answers_both(service):
    body = await service.gql(
        '{ __typename __type(name: "Post") { name } posts(first: 1) { totalCount } '
        "__schema { queryType { name } } }"
    )
    assert body == {
        "data": {
            "__typename": "Query",
            "__type": {"name": "Post"},
            "posts": {"totalCount": 25},
            "__schema": {"queryType": {"name": "Query"}},
        }
    }


async def test_introspection_with_bad_arguments_is_a_graphql_error(service):
    body = await service.gql("query($n: String!) { __type(name: $n) { name } }", {"n": None})
    bad(body)
    body = await service.gql("{ __type(name: 1) { name } }")
    bad(body)


# --- variables -----------------------------------------------------------------------------

PAGE = "query($n: Int) { posts(first: $n) { totalCount nodes { id } } }"
BY_ID = "query($id: UUID!) { post(id: $id) { id } }"
TITLE_EQ = "query($t: String) { posts(filter: {title: {eq: $t}}) { totalCount } }"
CREATED_GT = "query($d: DateTime) { posts(filter: {createdAt: {gt: $d}}) { totalCount } }"
FILTER = "query($f: PostFilter) { posts(filter: $f) { totalCount } }"


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        (PAGE, {"n": "10"}),
        (PAGE, {"n": 2**31}),
        (PAGE, {"n": -(2**31) - 1}),
        (PAGE, {"n": 2**63}),
        (PAGE, {"n": 1.5}),
        (PAGE, {"n": True}),
        (PAGE, {"n": [1]}),
        (PAGE, {"n": {"value": 1}}),
        (PAGE, {"n": 101}),
        (PAGE, {"n": -1}),
        (PAGE, {"n": 2**31 - 1}),
        (BY_ID, {}),
        (BY_ID, {"id": None}),
        (BY_ID, {"id": ""}),
        (BY_ID, {"id": "not-a-uuid"}),
        (BY_ID, {"id": post_id(1) + "0"}),
        (BY_ID, {"id": post_id(1) + "\u0000"}),
        (BY_ID, {"id": 1}),
        (BY_ID, {"id": [post_id(1)]}),
        (BY_ID, {"id": {"id": post_id(1)}}),
        (BY_ID, {"id": "{" + post_id(1) + "}x"}),
        (TITLE_EQ, {"t": 1}),
        (TITLE_EQ, {"t": ["a"]}),
        (TITLE_EQ, {"t": {"eq": "a"}}),
        (CREATED_GT, {"d": "yesterday"}),
        (CREATED_GT, {"d": "0000-01-01T00:00:00+00:00"}),
        (CREATED_GT, {"d": "99999-01-01T00:00:00+00:00"}),
        (CREATED_GT, {"d": "+99999-01-01T00:00:00+00:00"}),
        (CREATED_GT, {"d": "2026-13-01T00:00:00+00:00"}),
        (CREATED_GT, {"d": "2026-02-30T00:00:00+00:00"}),
        (CREATED_GT, {"d": "2026-01-01T00:00:00+25:00"}),
        (CREATED_GT, {"d": "2026-01-01T00:00:00\u0000"}),
        (CREATED_GT, {"d": 1767225600}),
        (CREATED_GT, {"d": ""}),
        (FILTER, {"f": "title"}),
        (FILTER, {"f": []}),
        (FILTER, {"f": {"nope": {"eq": 1}}}),
        (FILTER, {"f": {"title": {"eq": 1}}}),
        (FILTER, {"f": {"title": {"nope": "a"}}}),
        (FILTER, {"f": {"title": {"in": [None]}}}),
        (FILTER, {"f": {"title": {"in": ["a", None]}}}),
        (FILTER, {"f": {"title": {"isNull": "yes"}}}),
        (FILTER, {"f": {"published": {"eq": "true"}}}),
        (FILTER, {"f": {"published": {"eq": 1}}}),
        (FILTER, {"f": {"id": {"in": ["x"]}}}),
        (FILTER, {"f": {"id": {"lt": post_id(1)}}}),
        (FILTER, {"f": {"createdAt": {"in": ["2026-01-01T00:00:00+00:00", "x"]}}}),
        (FILTER, {"f": {"and": {"title": {"eq": "a"}}, "or": 1}}),
        (FILTER, {"f": {"and": [None]}}),
        (FILTER, {"f": {"not": [{"title": {"eq": "a"}}]}}),
        (
            "query($o: [PostOrderBy!]) { posts(orderBy: $o) { totalCount } }",
            {"o": [{}]},
        ),
        (
            "query($o: [PostOrderBy!]) { posts(orderBy: $o) { totalCount } }",
            {"o": [{"title": "ASC", "id": "DESC"}]},
        ),
        (
            "query($o: [PostOrderBy!]) { posts(orderBy: $o) { totalCount } }",
            {"o": [{"title": None}]},
        ),
        (
            "query($o: [PostOrderBy!]) { posts(orderBy: $o) { totalCount } }",
            {"o": [None]},
        ),
        (
            "query($o: [PostOrderBy!]) { posts(orderBy: $o) { totalCount } }",
            {"o": [{"title": "asc"}]},
        ),
        ("query($s: Boolean!) { posts @skip(if: $s) { totalCount } }", {"s": "yes"}),
        ("query($s: Boolean!) { posts @skip(if: $s) { totalCount } }", {}),
    ],
)
async def test_variables_of_the_wrong_type_or_range_are_bad_user_input(service, query, variables):
    bad(await service.gql(query, variables))


async def test_an_int_beyond_64_bits_is_bad_user_input(service):
    response = await service.request(
        "POST",
        content=b'{"query": "query($n: Int) { posts(first: $n) { totalCount } }", '
        b'"variables": {"n": 1000000000000000000000000000000}}',
        headers={"content-type": "application/json"},
    )
    bad(response.json())


async def test_a_single_value_for_a_list_is_a_list_of_one(service):
    body = await service.gql(FILTER, {"f": {"title": {"in": "Post 01"}}})
    assert body == {"data": {"posts": {"totalCount": 1}}}


async def test_unknown_extra_variables_are_ignored(service):
    body = await service.gql(PAGE, {"n": 1, "extra": {"deep": [1, 2, None]}, "": 1})
    assert body["data"]["posts"]["totalCount"] == 25


async def test_an_integral_float_is_an_int(service):
    body = await service.gql(PAGE, {"n": 2.0})
    assert len(body["data"]["posts"]["nodes"]) == 2


@pytest.mark.parametrize(
    "query",
    [
        "{ posts(first: 2147483648) { totalCount } }",
        "{ posts(first: -2147483649) { totalCount } }",
        "{ posts(first: 1.5) { totalCount } }",
        "{ posts(first: 1e3) { totalCount } }",
        '{ posts(first: "1") { totalCount } }',
        "{ posts(first: -1) { nodes { id } } }",
        "{ posts(last: -1) { nodes { id } } }",
        "{ posts(first: 101) { nodes { id } } }",
        "{ posts(first: 1, last: 1) { nodes { id } } }",
        '{ post(id: "") { id } }',
        '{ post(id: "Post:1") { id } }',
        "{ post(id: 1) { id } }",
        '{ posts(filter: {createdAt: {gt: "0000-01-01T00:00:00+00:00"}}) { totalCount } }',
        '{ posts(filter: {createdAt: {gt: "10000-01-01T00:00:00Z"}}) { totalCount } }',
        "{ posts(filter: {createdAt: {in: [null]}}) { totalCount } }",
        '{ posts(filter: {title: {in: ["a", null]}}) { totalCount } }',
        "{ posts(orderBy: [{}]) { totalCount } }",
        "{ posts(orderBy: [{title: ASC, id: ASC}]) { totalCount } }",
        "{ posts(orderBy: [{title: null}]) { totalCount } }",
        "{ posts(orderBy: {title: SIDEWAYS}) { totalCount } }",
    ],
)
async def test_literals_of_the_wrong_type_or_range_are_bad_user_input(service, query):
    bad(await service.gql(query))


# --- values PostgreSQL would choke on ------------------------------------------------------

NUL = "a\u0000b"


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        (TITLE_EQ, {"t": NUL}),
        (TITLE_EQ, {"t": "\u0000"}),
        (FILTER, {"f": {"title": {"neq": NUL}}}),
        (FILTER, {"f": {"title": {"lt": NUL}}}),
        (FILTER, {"f": {"title": {"gte": NUL}}}),
        (FILTER, {"f": {"title": {"like": NUL}}}),
        (FILTER, {"f": {"title": {"ilike": NUL}}}),
        (FILTER, {"f": {"title": {"startsWith": NUL}}}),
        (FILTER, {"f": {"title": {"in": ["x", NUL]}}}),
        (FILTER, {"f": {"content": {"nin": [NUL]}}}),
        (FILTER, {"f": {"or": [{"title": {"eq": "Post 01"}}, {"content": {"eq": NUL}}]}}),
        ('query { posts(filter: {title: {eq: "a\\u0000b"}}) { totalCount } }', None),
        ('query { posts(filter: {title: {in: ["\\u0000"]}}) { totalCount } }', None),
    ],
)
async def test_a_nul_character_in_a_string_is_bad_user_input(service, query, variables):
    message = bad(await service.gql(query, variables))
    assert "NUL" in message, message


@pytest.mark.parametrize("field", ["title", "content"])
async def test_a_nul_character_in_a_written_string_is_bad_user_input_and_writes_nothing(
    service, field
):
    values = {"title": "t", "content": "c", field: "bad\u0000value"}
    body = await service.gql(
        "mutation($i: PostCreateInput!) { createPost(input: $i) { id } }",
        {"i": values},
        user=True,
    )
    bad(body)
    count = await service.gql('{ posts(filter: {title: {eq: "t"}}) { totalCount } }', user=True)
    assert count["data"]["posts"]["totalCount"] == 0


@pytest.mark.parametrize(
    "pattern", ["\\", "a\\", "%", "_", "%%", "\\%", "[a-z]", "'", "''", '"', "$1", "%\\"]
)
@pytest.mark.parametrize("operator", ["like", "ilike", "startsWith"])
async def test_patterns_with_special_characters_are_answered_or_refused_clearly(
    service, operator, pattern
):
    body = await service.gql(
        "query($p: String) { posts(filter: {title: {OP: $p}}) { totalCount } }".replace(
            "OP", operator
        ),
        {"p": pattern},
    )
    trailing_escapes = len(pattern) - len(pattern.rstrip("\\"))
    if operator != "startsWith" and trailing_escapes % 2 == 1:
        # whatever the rows: PostgreSQL itself refuses it only when matching reaches the end
        assert "escape" in bad(body)
    else:
        assert isinstance(body["data"]["posts"]["totalCount"], int), body


async def test_like_matches_what_postgresql_documents(service):
    counts = {}
    for pattern in ["Post 0_", "Post 1%", "%", "post%", "Post \\01"]:
        body = await service.gql(
            "query($p: String) { posts(filter: {title: {like: $p}}) { totalCount } }",
            {"p": pattern},
        )
        counts[pattern] = body["data"]["posts"]["totalCount"]
    assert counts == {"Post 0_": 9, "Post 1%": 10, "%": 25, "post%": 0, "Post \\01": 1}


# --- pages, cursors and ids ----------------------------------------------------------------


@pytest.mark.parametrize("argument", ["first", "last"])
async def test_a_page_of_zero_is_empty_and_says_what_follows(service, argument):
    body = await service.gql(
        "{ posts(" + argument + ": 0) { totalCount nodes { id } edges { cursor } "
        "pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }"
    )
    posts = body["data"]["posts"]
    assert posts["totalCount"] == 25
    assert posts["nodes"] == [] and posts["edges"] == []
    assert posts["pageInfo"]["startCursor"] is None and posts["pageInfo"]["endCursor"] is None
    more = "hasNextPage" if argument == "first" else "hasPreviousPage"
    assert posts["pageInfo"][more] is True


async def first_cursor(service: Service, query: str) -> str:
    body = await service.gql(query)
    assert "errors" not in body, body
    connection = next(iter(body["data"].values()))
    cursor: str = connection["edges"][0]["cursor"]
    return cursor


async def test_a_cursor_from_another_ordering_or_type_is_refused(service):
    by_title = await first_cursor(
        service, "{ posts(first: 1, orderBy: [{title: ASC}]) { edges { cursor } } }"
    )
    comment = await first_cursor(
        service, "{ comments(first: 1, orderBy: [{createdAt: DESC}]) { edges { cursor } } }"
    )
    user = await first_cursor(service, "{ users(first: 1) { edges { cursor } } }")
    for cursor, query in [
        (by_title, "query($c: String) { posts(after: $c) { totalCount nodes { id } } }"),
        (
            comment,
            "query($c: String) { posts(after: $c, orderBy: [{createdAt: DESC}]) { nodes { id } } }",
        ),
        (user, "query($c: String) { posts(after: $c) { nodes { id } } }"),
        (user, "query($c: String) { comments(before: $c) { nodes { id } } }"),
    ]:
        message = bad(await service.gql(query, {"c": cursor}))
        assert "cursor" in message


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "x",
        "====",
        "%%%",
        b64(b"\xff\xfe\x00"),
        b64("null"),
        b64("[]"),
        b64("{}"),
        b64('"Post/id:A"'),
        b64("x" * 10_000),
        "A" * 100_000,
    ],
)
async def test_a_garbage_cursor_is_bad_user_input(service, cursor):
    for query in [
        "query($c: String) { posts(first: 2, after: $c) { nodes { id } } }",
        "query($c: String) { posts(last: 2, before: $c) { pageInfo { hasNextPage } } }",
        "query($c: String) { posts(after: $c, orderBy: [{createdAt: ASC}]) { totalCount } }",
    ]:
        message = bad(await service.gql(query, {"c": cursor}))
        assert "cursor" in message, message


BY_TITLE = (
    "query($c: String) { posts(first: 2, after: $c, orderBy: [{title: ASC}]) { nodes { id } } }"
)
BY_DATE = (
    "query($c: String) { posts(last: 2, before: $c, orderBy: [{createdAt: DESC}]) "
    "{ nodes { id } } }"
)


@pytest.mark.parametrize(
    ("query", "values"),
    [
        (PAGE.replace("Int) {", "Int, $c: String) {").replace("$n)", "$n, after: $c)"), []),
        (BY_TITLE, ["Post 01"]),
        (BY_TITLE, ["Post 01", post_id(1), "extra"]),
        (BY_TITLE, [None, post_id(1)]),
        (BY_TITLE, [1, post_id(1)]),
        (BY_TITLE, [["Post 01"], post_id(1)]),
        (BY_TITLE, ["Post 01", "not-a-uuid"]),
        (BY_TITLE, ["Post 01", post_id(1) + "\u0000"]),
        (BY_TITLE, ["Post\u000001", post_id(1)]),
        (BY_DATE, ["yesterday", post_id(1)]),
        (BY_DATE, ["0000-01-01T00:00:00Z", post_id(1)]),
        (BY_DATE, ["2026-02-01T00:00:00+99:00", post_id(1)]),
        (BY_DATE, ["2026-02-01T00:00:00\u0000", post_id(1)]),
        (BY_DATE, [{"a": 1}, post_id(1)]),
    ],
)
async def test_a_cursor_of_the_right_ordering_with_bad_values_is_bad_user_input(
    service, query, values
):
    signature = "Post/title:A,id:A" if "title" in query else "Post/createdAt:D,id:A"
    if "title" not in query and "createdAt" not in query:
        signature = "Post/id:A"
    cursor = b64(orjson.dumps([signature, *values]))
    bad(await service.gql(query, {"c": cursor, "n": 2}))


async def test_a_cursor_made_the_way_the_service_makes_them_pages_on(service):
    # the control for the cases above: their cursors differ from this one only in the values
    cursor = b64(orjson.dumps(["Post/title:A,id:A", "Post 01", post_id(1)]))
    body = await service.gql(BY_TITLE, {"c": cursor})
    assert body == {"data": {"posts": {"nodes": [{"id": post_id(2)}, {"id": post_id(3)}]}}}


@pytest.mark.parametrize(
    "node_id",
    [
        "",
        "Post",
        b64("Post"),
        b64("Post:"),
        b64("Nope:" + post_id(1)),
        b64("post:" + post_id(1)),
        b64("Query:" + post_id(1)),
        b64("Node:" + post_id(1)),
        b64("__proto__:" + post_id(1)),
        b64("Post:" + post_id(1) + "\u0000"),
        b64("Post:\u0000"),
        b64(b"\xff\xfe:" + post_id(1).encode()),
        b64("Post:" + "1" * 10_000),
        "Post:" + post_id(1),
        "A" * 100_000,
    ],
)
async def test_a_node_id_that_names_no_node_is_bad_user_input(service, node_id):
    body = await service.gql("query($n: ID!) { node(nodeId: $n) { nodeId } }", {"n": node_id})
    assert "nodeId" in bad(body)


async def test_a_node_id_of_one_type_with_another_types_key_is_null(service):
    body = await service.gql(
        "query($n: ID!) { node(nodeId: $n) { nodeId } }", {"n": b64("Comment:" + post_id(1))}
    )
    assert body == {"data": {"node": None}}


async def test_a_node_id_given_as_an_int_literal_is_read_as_an_id(service):
    body = await service.gql("{ node(nodeId: 1) { nodeId } }")
    assert "nodeId" in bad(body)


# --- mutations -----------------------------------------------------------------------------

CREATE_POST = "mutation($i: PostCreateInput!) { createPost(input: $i) { id title } }"


@pytest.mark.parametrize(
    ("query", "variables", "code"),
    [
        (CREATE_POST, {"i": {"title": "t"}}, "BAD_USER_INPUT"),
        (CREATE_POST, {"i": {"title": "t", "content": "c", "authorId": ALICE}}, "BAD_USER_INPUT"),
        (CREATE_POST, {"i": {"title": "t", "content": "c", "id": post_id(99)}}, "BAD_USER_INPUT"),
        (CREATE_POST, {"i": {"title": None, "content": "c"}}, "BAD_USER_INPUT"),
        (CREATE_POST, {"i": {"title": "t", "content": "c", "published": None}}, "BAD_USER_INPUT"),
        (CREATE_POST, {"i": {"title": "x" * 256, "content": "c"}}, "BAD_USER_INPUT"),
        (CREATE_POST, {"i": {"title": "t", "content": 5}}, "BAD_USER_INPUT"),
        (CREATE_POST, {"i": None}, "BAD_USER_INPUT"),
        (CREATE_POST, {"i": "title"}, "BAD_USER_INPUT"),
        (CREATE_POST, {}, "BAD_USER_INPUT"),
        ('mutation { createPost(input: {title: "t"}) { id } }', None, "BAD_USER_INPUT"),
        (
            'mutation { createPost(input: {title: "t", content: "c", nope: 1}) { id } }',
            None,
            "BAD_USER_INPUT",
        ),
        (
            'mutation { createPost(input: {title: null, content: "c"}) { id } }',
            None,
            "BAD_USER_INPUT",
        ),
        (
            'mutation { createPost(input: {title: "t", content: "c", published: null}) { id } }',
            None,
            "BAD_USER_INPUT",
        ),
        ("mutation { createPost { id } }", None, "BAD_USER_INPUT"),
        (
            "mutation($id: UUID!) { updatePost(id: $id, input: {title: null}) { id } }",
            {"id": post_id(2)},
            "BAD_USER_INPUT",
        ),
        (
            'mutation($id: UUID!) { updatePost(id: $id, input: {title: "%s"}) { id } }'
            % ("x" * 300),
            {"id": post_id(2)},
            "BAD_USER_INPUT",
        ),
        (
            "mutation($id: UUID!, $i: PostUpdateInput!) { updatePost(id: $id, input: $i) { id } }",
            {"id": post_id(2), "i": {"published": "yes"}},
            "BAD_USER_INPUT",
        ),
        (
            'mutation { createComment(input: {postId: "10000000-0000-0000-0000-999999999999", '
            'body: "hi"}) { id } }',
            None,
            # an invisible post and a missing one look the same: the policy refuses both
            "FORBIDDEN",
        ),
        (
            'mutation { createComment(input: {postId: "' + post_id(2) + '", body: "a\\u0000"}) '
            "{ id } }",
            None,
            "BAD_USER_INPUT",
        ),
        (
            'mutation { createComment(input: {postId: "' + post_id(2) + '", body: "a"}) { id } '
            'createPost(input: {title: "b\\u0000", content: "c"}) { id } }',
            None,
            "BAD_USER_INPUT",
        ),
    ],
)
async def test_bad_mutation_input_is_refused_and_writes_nothing(service, query, variables, code):
    before = await service.gql("{ posts { totalCount } comments { totalCount } }", user=True)
    bad(await service.gql(query, variables, user=True), code)
    after = await service.gql("{ posts { totalCount } comments { totalCount } }", user=True)
    assert after == before
    untouched = await service.gql(
        "query($id: UUID!) { post(id: $id) { title } }", {"id": post_id(2)}, user=True
    )
    assert untouched["data"]["post"]["title"] == "Post 02"


@pytest.mark.parametrize("kind", ["update", "delete"])
async def test_a_write_to_a_row_that_does_not_exist_is_null(service, kind):
    arguments = 'input: {title: "x"}' if kind == "update" else ""
    missing = "10000000-0000-0000-0000-999999999999"
    body = await service.gql(
        "mutation { " + kind + 'Post(id: "' + missing + '" ' + arguments + ") { id } }",
        user=True,
    )
    assert body == {"data": {f"{kind}Post": None}}


async def test_an_anonymous_write_is_unauthenticated(service):
    body = await service.gql('mutation { createPost(input: {title: "t", content: "c"}) { id } }')
    bad(body, "UNAUTHENTICATED")


# --- Authorization -------------------------------------------------------------------------


async def test_authorization_header_oddities(service):
    token = service.token
    accepted = [f"bearer {token}", f"BEARER {token}", f"Bearer  {token}", f"Bearer \t{token}"]
    for header in accepted:
        response = await service.request(
            "POST", json={"query": "{ viewer { id } }"}, headers={"authorization": header}
        )
        assert response.status_code == 200, (header, response.text)
        assert response.json()["data"]["viewer"] == {"id": ALICE}
    refused = [
        "",
        "Bearer",
        "Bearer \t.",
        "Basic dXNlcjpwYXNz",
        token,
        f"Token {token}",
        f"Bearer {token}x",
        f"Bearer {token}.x",
        f"Bearer {token[:-4]}",
        "Bearer a.b.c",
        "Bearer ....",
        "Bearer e30.e30.",
        "Bearer " + "A" * 8000,
        "Bearer " + ".".join(["eyJhbGciOiJub25lIn0", "e30", ""]),
        f"Bearer {token}, Bearer {token}",
    ]
    for header in refused:
        response = await service.request(
            "POST", json={"query": "{ viewer { id } }"}, headers={"authorization": header}
        )
        assert response.status_code == 401, (header[:50], response.text)
        assert errors_of(response.json()) == ["UNAUTHENTICATED"]
        assert response.headers["www-authenticate"].startswith("Bearer")


async def test_a_huge_authorization_header_is_a_401(service):
    response = await service.request(
        "POST",
        json={"query": "{ viewer { id } }"},
        headers={"authorization": "Bearer " + "A" * 500_000},
    )
    assert response.status_code == 401
    assert errors_of(response.json()) == ["UNAUTHENTICATED"]


async def test_a_token_whose_subject_is_not_a_user_id_is_401(service):
    # correctly signed, but `auth.uid()` (a UUID) could never read its subject
    token = token_for("not-a-uuid")
    response = await service.request(
        "POST", json={"query": "{ viewer { id } }"}, headers={"authorization": f"Bearer {token}"}
    )
    assert response.status_code == 401
    assert errors_of(response.json()) == ["UNAUTHENTICATED"]


# --- the other routes ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "statuses"),
    [
        ("GET", "/livez", {200}),
        ("GET", "/livez?x=%ff", {200}),
        ("POST", "/livez", {405}),
        ("GET", "/readyz", {200}),
        ("DELETE", "/readyz", {405}),
        ("GET", "/metrics", {200}),
        ("POST", "/metrics", {405}),
        ("GET", "/nope", {404}),
        ("GET", "/graphql/", {404, 307}),
        ("GET", "/graphiql/assets/", {404}),
        ("GET", "/graphiql/assets/..", {404}),
        ("GET", "/graphiql/assets/../../app.py", {404}),
        ("GET", "/graphiql/assets/..%2f..%2fapp.py", {404}),
        ("GET", "/graphiql/assets/%2e%2e/%2e%2e/app.py", {404}),
        ("GET", "/graphiql/assets/%2e%2e%2f%2e%2e%2fsettings.py", {404}),
        ("GET", "/graphiql/assets/..%5c..%5capp.py", {404}),
        ("GET", "/graphiql/assets/%00", {404, 400}),
        ("GET", "/graphiql/assets/manifest.json%00.js", {404, 400}),
        ("GET", "/graphiql/assets/" + "a" * 5000, {404}),
        ("GET", "/graphiql/assets/%ff%fe", {404}),
        ("GET", "/graphiql/assets//etc/passwd", {404}),
        ("POST", "/graphiql/assets/manifest.json", {405}),
    ],
)
async def test_other_routes_answer_odd_requests_without_a_500(service, method, path, statuses):
    response = await service.request(method, path, statuses=statuses | {400})
    assert "root:" not in response.text


# --- properties: whatever a client sends ---------------------------------------------------

SLOW_OK = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from([post_id(1), "2026-02-01T00:00:00+00:00", "ASC", "DESC", "", "\u0000"])
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)
# A variable of each declared type the API has, used where that type goes.
TYPED_QUERIES = [
    "query($v: Int) { posts(first: $v) { totalCount } }",
    "query($v: Int) { posts(last: $v) { nodes { id } } }",
    "query($v: String) { posts(after: $v) { nodes { id } } }",
    "query($v: String) { posts(filter: {title: {like: $v}}) { totalCount } }",
    "query($v: [String!]) { posts(filter: {title: {in: $v}}) { totalCount } }",
    "query($v: UUID!) { post(id: $v) { id } }",
    "query($v: [UUID!]) { posts(filter: {id: {nin: $v}}) { totalCount } }",
    "query($v: DateTime) { comments(filter: {createdAt: {lte: $v}}) { totalCount } }",
    "query($v: [DateTime!]) { posts(filter: {createdAt: {in: $v}}) { totalCount } }",
    "query($v: Boolean) { posts(filter: {published: {eq: $v}}) { totalCount } }",
    "query($v: ID!) { node(nodeId: $v) { nodeId } }",
    "query($v: PostFilter) { posts(filter: $v) { totalCount } }",
    "query($v: StringFilter) { users(filter: {email: $v}) { totalCount } }",
    "query($v: [PostOrderBy!]) { posts(first: 2, orderBy: $v) { nodes { id } } }",
    "query($v: SortDirection!) { comments(first: 2, orderBy: [{body: $v}]) { nodes { id } } }",
    "query($v: String!) { __type(name: $v) { name } }",
    "mutation($v: CommentUpdateInput!) { "
    'updateComment(id: "20000000-0000-0000-9999-000000000001", input: $v) { id } }',
    "mutation($v: UUID!) { deletePost(id: $v) { id } }",
]


@SLOW_OK
@given(query=st.sampled_from(TYPED_QUERIES), value=json_values, user=st.booleans())
async def test_any_json_value_for_any_variable_is_answered_or_refused_cleanly(
    service, query, value, user
):
    # mutations here touch no row that exists: any value is validated, none is written
    body = await service.gql(query, {"v": value}, user=user)
    assert "data" in body or "errors" in body


def _expected_count(operator: str, value: str) -> int | None:
    titles = [f"Post {i:02d}" for i in range(1, 26)]
    if operator == "eq":
        return sum(t == value for t in titles)
    if operator == "neq":
        return sum(t != value for t in titles)
    if operator == "startsWith":
        return sum(t.startswith(value) for t in titles)
    return None  # lt/gt follow the collation, like/ilike the pattern language


@SLOW_OK
@given(
    operator=st.sampled_from(
        ["eq", "neq", "lt", "lte", "gt", "gte", "like", "ilike", "startsWith"]
    ),
    value=st.text(max_size=30) | st.sampled_from(["Post 0", "Post 01", "%", "_", "\\", "Post\\"]),
)
async def test_any_string_in_a_string_filter_is_answered_or_refused_clearly(
    service, operator, value
):
    body = await service.gql(
        "query($v: String) { posts(filter: {title: {OP: $v}}) { totalCount } }".replace(
            "OP", operator
        ),
        {"v": value},
    )
    if "\u0000" in value:
        assert "NUL" in bad(body)
        return
    if operator in ("like", "ilike") and (len(value) - len(value.rstrip("\\"))) % 2 == 1:
        assert "escape" in bad(body)
        return
    assert "errors" not in body, body
    expected = _expected_count(operator, value)
    if expected is not None:
        assert body["data"]["posts"]["totalCount"] == expected, (operator, value)


@SLOW_OK
@given(size=st.integers(min_value=-(2**40), max_value=2**40) | st.integers(-3, 103))
async def test_any_int_as_a_page_size_is_a_page_or_bad_user_input(service, size):
    body = await service.gql(PAGE, {"n": size})
    if 0 <= size <= 100:
        assert len(body["data"]["posts"]["nodes"]) == min(size, 25)
    else:
        bad(body)


datetime_texts = st.builds(
    lambda year, month, day, hour, offset: (
        f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:00:00{offset}"
    ),
    st.sampled_from([0, 1, 2, 1969, 2026, 9999, 10000, 99999]) | st.integers(0, 300_000),
    st.integers(0, 13),
    st.integers(0, 32),
    st.integers(0, 25),
    st.sampled_from(["", "Z", "+00:00", "-14:00", "+14:00", "+23:59", "+24:00", "+99:00"]),
)


POSTS_CREATED = [datetime(2026, 2, 1, tzinfo=UTC) + timedelta(hours=i // 2) for i in range(1, 26)]


@SLOW_OK
@given(text=datetime_texts | st.text(max_size=30))
@example(text="0001-01-01T00:00:00+23:59")  # Python compares it; it cannot be sent in UTC
async def test_any_datetime_text_is_compared_or_bad_user_input(service, text):
    body = await service.gql(CREATED_GT, {"d": text})
    try:
        parsed = isoparse(text)  # the DateTime scalar's parser: ISO 8601, e.g. 24:00 too
    except (ValueError, OverflowError):
        bad(body)
        return
    offset = parsed.utcoffset()
    if offset is None:
        assert "errors" not in body, (text, body)  # read in the session's time zone
        return
    # In UTC, year 1 at +14:00 is in year 0 and 9999 at -14:00 in 10000: PostgreSQL has them,
    # Python not. Past PostgreSQL's largest offset (15:59:59) the service sends the time in UTC,
    # so those cannot be sent at all (Python's own comparison below may still succeed).
    if abs(offset) > timedelta(hours=15, minutes=59, seconds=59):
        try:
            parsed.astimezone(UTC)
        except OverflowError:
            assert "out of range" in bad(body), (text, body)
            return
    try:
        expected = sum(created > parsed for created in POSTS_CREATED)
    except OverflowError:
        expected = 25 if parsed.year == 1 else 0
    assert body == {"data": {"posts": {"totalCount": expected}}}, text


@SLOW_OK
@given(text=st.text(min_size=1, max_size=200))
async def test_any_text_written_reads_back_exactly_or_is_refused(service, text):
    body = await service.gql(
        "mutation($i: CommentCreateInput!) { createComment(input: $i) { id body } }",
        {"i": {"postId": post_id(2), "body": text}},
        user=True,
    )
    if "\u0000" in text:
        assert "NUL" in bad(body)
        return
    assert "errors" not in body, body
    created = body["data"]["createComment"]
    assert created["body"] == text
    again = await service.gql(
        "query($id: UUID!) { comment(id: $id) { body } }", {"id": created["id"]}, user=True
    )
    assert again["data"]["comment"]["body"] == text


@pytest.mark.parametrize(
    "selection",
    [
        "{ id post { comments(first: 1000) { nodes { id } } } }",
        '{ id post { comments(after: "garbage") { nodes { id } } } }',
        "{ id post { comments(first: -1) { totalCount } } }",
    ],
)
async def test_a_bad_argument_in_what_a_mutation_returns_refuses_the_write(service, selection):
    count = "query($f: CommentFilter) { comments(filter: $f) { totalCount } }"
    only_mine = {"f": {"body": {"eq": "returned badly"}}}
    for mutation in [
        'mutation { createComment(input: {postId: "'
        + post_id(2)
        + '", body: "returned badly"}) '
        + selection
        + " }",
        'mutation { first: createComment(input: {postId: "' + post_id(2) + '", body: "returned '
        'badly"}) { id } second: createComment(input: {postId: "' + post_id(2) + '", body: '
        '"returned badly"}) ' + selection + " }",
    ]:
        bad(await service.gql(mutation, user=True))
        assert (await service.gql(count, only_mine, user=True))["data"]["comments"] == {
            "totalCount": 0
        }


async def test_extremely_long_strings_are_compared_and_stored_whole(service):
    long = "é" * 400_000  # 800 kB of UTF-8, under the body limit
    body = await service.gql(TITLE_EQ, {"t": long})
    assert body == {"data": {"posts": {"totalCount": 0}}}
    created = await service.gql(
        "mutation($i: CommentCreateInput!) { createComment(input: $i) { id } }",
        {"i": {"postId": post_id(2), "body": long}},
        user=True,
    )
    comment_id = created["data"]["createComment"]["id"]
    read = await service.gql(
        "query($id: UUID!) { comment(id: $id) { body } }", {"id": comment_id}, user=True
    )
    assert read["data"]["comment"]["body"] == long
    too_long = await service.gql(
        "mutation($i: PostCreateInput!) { createPost(input: $i) { id } }",
        {"i": {"title": long, "content": "c"}},
        user=True,
    )
    assert "title" in bad(too_long)


OPERATORS: dict[str, list[tuple[str, Any]]] = {
    # (column, type) → odd but valid operands for each operator of its filter
    "id": [
        ("eq", post_id(1)),
        ("neq", post_id(1).upper()),
        ("in", []),
        ("in", [post_id(1), post_id(1)]),
        ("nin", []),
        ("nin", ["{" + post_id(1) + "}"]),
        ("isNull", True),
        ("isNull", False),
    ],
    "title": [
        ("eq", ""),
        ("neq", " "),
        ("in", []),
        ("in", ["", "Post 01", "Post 01"]),
        ("nin", []),
        ("lt", "\uffff"),
        ("lte", ""),
        ("gt", "\U0001f600"),
        ("gte", "Z" * 10_000),
        ("like", ""),
        ("like", "%%%"),
        ("ilike", "POST 0_"),
        ("ilike", "\\%"),
        ("startsWith", ""),
        ("startsWith", "%"),
        ("isNull", True),
    ],
    "published": [("eq", True), ("neq", False), ("isNull", False)],
    "createdAt": [
        ("eq", "2026-02-01T01:00:00+00:00"),
        ("neq", "2026-02-01T01:00:00Z"),
        ("in", []),
        ("in", ["2026-02-01T01:00:00+00:00", "2026-02-01T02:00:00.000000+00:00"]),
        ("nin", []),
        ("lt", "0001-01-01T00:00:00+00:00"),
        ("lte", "9999-12-31T23:59:59.999999+00:00"),
        ("gt", "1970-01-01T00:00:00-14:00"),
        ("gte", "2026-02-01T00:00:00+15:59"),
        ("isNull", True),
    ],
}


@pytest.mark.parametrize(
    ("column", "operator", "operand"),
    [(column, op, operand) for column, cases in OPERATORS.items() for op, operand in cases],
)
async def test_every_operator_on_every_scalar_type_answers_odd_but_valid_operands(
    service, column, operator, operand
):
    for query, variables in [
        ("query($f: PostFilter) { posts(filter: $f) { totalCount } }", None),
        ("{ posts(filter: FILTER) { totalCount } }", "literal"),
    ]:
        condition = {column: {operator: operand}}
        if variables == "literal":
            body = await service.gql(query.replace("FILTER", _literal(condition)))
        else:
            body = await service.gql(query, {"f": condition})
        assert "errors" not in body, (column, operator, operand, body)
        count = body["data"]["posts"]["totalCount"]
        if operator == "in" and operand == []:
            assert count == 0
        if operator == "nin" and operand == []:
            assert count == 25


def _literal(value: Any) -> str:
    """A JSON-like value as a GraphQL input literal."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return orjson.dumps(value).decode()


async def test_a_filter_with_more_terms_than_a_statement_can_bind_is_limit_exceeded(service):
    many = {"or": [{"title": {"eq": "x"}} for _ in range(33_000)]}
    assert "values" in bad(await service.gql(FILTER, {"f": many}), "LIMIT_EXCEEDED")
    some = {"or": [{"title": {"eq": f"Post {i:02d}"}} for i in range(2_000)]}
    assert await service.gql(FILTER, {"f": some}) == {"data": {"posts": {"totalCount": 25}}}
    # a long list binds as one value
    listed = {"title": {"in": [f"Post {i:02d}" for i in range(50_000)]}}
    assert await service.gql(FILTER, {"f": listed}) == {"data": {"posts": {"totalCount": 25}}}


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ('query($v: ID = "x") { node(nodeId: $v) { nodeId } }', "nodeId"),
        ('query($v: UUID = "' + post_id(1) + '") { post(id: $v) { id } }', "id"),
        ('mutation($v: UUID = "' + post_id(2) + '") { deletePost(id: $v) { id } }', "id"),
        (
            'mutation($v: UUID = "' + post_id(2) + '") { updatePost(id: $v, input: {}) { id } }',
            "id",
        ),
        (
            'mutation($v: PostUpdateInput = {title: "x"}) { '
            'updatePost(id: "' + post_id(2) + '", input: $v) { id } }',
            "input",
        ),
        (
            'mutation($v: PostCreateInput = {title: "x", content: "y"}) '
            "{ createPost(input: $v) { id } }",
            "input",
        ),
        ("query($v: Boolean = true) { posts @skip(if: $v) { totalCount } }", "if"),
    ],
)
async def test_an_explicit_null_for_a_variable_with_a_default_in_a_required_place_is_refused(
    service, query, name
):
    # A variable with a default may stand where a value is required; null is still no value.
    before = await service.gql("{ posts { totalCount } }")
    message = bad(await service.gql(query, {"v": None}, user=True))
    assert f"`{name}` must not be null" in message
    assert await service.gql("{ posts { totalCount } }") == before
    assert (await service.gql('{ post(id: "' + post_id(2) + '") { title } }'))["data"] == {
        "post": {"title": "Post 02"}
    }


# Documents generated from the schema: most pass validation and reach the planner and the SQL,
# with arguments of odd values, aliases and fragments. Whatever their shape, the answer is data
# or a client error.
SCHEMA = build_schema((Path(__file__).parents[2] / "schema.graphql").read_text())
scalar_literals = {
    "Int": st.sampled_from(["0", "1", "2", "-1", "100", "101", "2147483647", "1.0"]),
    "String": st.sampled_from(
        ['""', '"x"', '"Post 01"', '"%"', '"\\\\"', '"\\u0000"', '"WyJQb3N0L2lkOkEiXQ=="']
    ),
    "UUID": st.sampled_from([f'"{post_id(1)}"', f'"{ALICE}"', '"nope"', '""']),
    "ID": st.sampled_from([f'"{b64("Post:" + post_id(1))}"', f'"{b64("User:" + ALICE)}"', '"x"']),
    "DateTime": st.sampled_from(
        ['"2026-02-01T03:00:00Z"', '"0001-01-01T00:00:00+14:00"', '"2026-02-01"', '"x"']
    ),
    "Boolean": st.sampled_from(["true", "false"]),
}


@st.composite
def value_of(draw: st.DrawFn, type_: Any, depth: int = 0) -> str:
    if draw(st.integers(0, 30)) == 0:
        return "null"
    type_ = get_nullable_type(type_)
    if isinstance(type_, GraphQLList):
        items = draw(st.lists(value_of(type_.of_type, depth + 1), max_size=3))
        return "[" + ", ".join(items) + "]"
    if isinstance(type_, GraphQLEnumType):
        return draw(st.sampled_from(sorted(type_.values)))
    if isinstance(type_, GraphQLInputObjectType):
        names = sorted(type_.fields)
        if depth > 3:
            names = [n for n in names if n not in ("and", "or", "not")]
        chosen = draw(st.lists(st.sampled_from(names), max_size=2, unique=True))
        fields = [f"{n}: {draw(value_of(type_.fields[n].type, depth + 1))}" for n in chosen]
        return "{" + ", ".join(fields) + "}"
    return draw(scalar_literals[type_.name])


@st.composite
def selection_of(draw: st.DrawFn, type_: Any, depth: int = 0) -> str:
    parts = []
    for _ in range(draw(st.integers(1, 3))):
        name = draw(st.sampled_from(sorted(type_.fields)))
        field_ = type_.fields[name]
        chosen = draw(
            st.lists(st.sampled_from(sorted(field_.args) or [""]), max_size=2, unique=True)
        )
        args = ", ".join(f"{a}: {draw(value_of(field_.args[a].type))}" for a in chosen if a)
        head = draw(st.sampled_from(["", "", "a: "])) + name + (f"({args})" if args else "")
        target = get_named_type(field_.type)
        if isinstance(target, GraphQLObjectType | GraphQLInterfaceType):
            if depth >= 4:
                continue
            if isinstance(target, GraphQLInterfaceType):
                concrete = draw(st.sampled_from(list(SCHEMA.get_possible_types(target))))
                inner = f"... on {concrete.name} {{ {draw(selection_of(concrete, depth + 1))} }}"
            else:
                inner = draw(selection_of(target, depth + 1))
            head += f" {{ __typename {inner} }}"
        parts.append(head)
    if not parts:
        return "__typename"
    return " ".join(parts)


@SLOW_OK
@given(document=selection_of(SCHEMA.query_type), skip=st.booleans())
async def test_any_query_the_schema_allows_is_answered_or_refused_cleanly(service, document, skip):
    query = "query($s: Boolean!) { __typename ... @skip(if: $s) { " + document + " } }"
    await service.gql(query, {"s": skip})
