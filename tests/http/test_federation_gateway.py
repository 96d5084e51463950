"""Apollo Gateway itself (the npm packages) composing `service serve` with FEDERATION=true and a
second subgraph (tests/e2e/reviews_subgraph.py, Strawberry's federation), as a company running
a supergraph would. tests/e2e/federation.spec.mjs starts the gateway and runs the operations;
the assertions are here, against what the service answers directly for the same posts.

Without node the test is skipped on a developer's machine and fails in CI (CI=true).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from tests.orchestration.service_process import free_port
from tests.served import served
from tests.support import (
    ROOT,
    Server,
    execute_sql,
    fetch_sql,
    node_for_e2e,
    run_e2e_spec,
    service_env,
    sign_token,
)

SPEC = ROOT / "tests" / "e2e" / "federation.spec.mjs"
SUBGRAPH = ROOT / "tests" / "e2e" / "reviews_subgraph.py"
GATEWAY = ROOT / "graphiql" / "node_modules" / "@apollo" / "gateway"
JWT_SECRET = "federation-e2e-secret-federation-e2e-0123"
AUTHOR = "author@example.com"  # `service token` creates this user
SEED = f"""
INSERT INTO auth.users (email) VALUES ('other@example.com');
INSERT INTO posts (title, content, published, author_id)
SELECT title, '-', published, (SELECT id FROM auth.users WHERE email = email_)
FROM (VALUES ('Published', true, '{AUTHOR}'), ('Draft', false, '{AUTHOR}'),
             ('Unreviewed', true, 'other@example.com')) AS seed (title, published, email_);
"""
POST = "query Post($id: UUID!) { post(id: $id) { id title author { id email } } }"
FIRST = 10
POSTS = "query Posts($first: Int!) { posts(first: $first) { nodes { id title } } }"
PAGE = "{ posts(first: 1) { pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }"


@contextmanager
def reviews_subgraph(*post_ids: str) -> Iterator[str]:
    """tests/e2e/reviews_subgraph.py on a free port, reviewing these posts; yields its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/graphql"
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [sys.executable, str(SUBGRAPH), str(port), *post_ids],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.post(url, json={"query": "{ __typename }"}).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise AssertionError(f"reviews subgraph did not start:\n{log.read().decode()}")
                time.sleep(0.1)
            yield url
        finally:
            if process.poll() is None:
                process.terminate()
                process.wait(30)


def direct(base: str, query: str, variables: dict[str, Any], token: str | None) -> Any:
    """The service's own answer, without the gateway: the reference."""
    headers = {"authorization": f"Bearer {token}"} if token else {}
    response = httpx.post(
        f"{base}/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    body = response.json()
    assert response.status_code == 200 and "errors" not in body, body
    return body["data"]


@pytest.fixture(scope="module")
def observed(postgres: Server, template: str) -> dict[str, Any]:
    node = node_for_e2e("Apollo Gateway", GATEWAY)
    name = f"federation_e2e_{os.getpid()}"
    postgres.run(f"CREATE DATABASE {name} TEMPLATE {template}")
    url = postgres.url(name)
    try:
        token = sign_token(
            service_env(DATABASE_URL=url.sqlalchemy, JWT_SECRET=JWT_SECRET), email=AUTHOR
        )
        asyncio.run(execute_sql(url, SEED))
        ids = {r["title"]: str(r["id"]) for r in asyncio.run(fetch_sql(url, "TABLE posts"))}
        reviewed = [ids["Published"], ids["Draft"]]  # "Review 1", "Review 2"
        with (
            served(url, FEDERATION="true", JWT_SECRET=JWT_SECRET) as base,
            reviews_subgraph(*reviewed) as reviews_url,
        ):
            reference = {
                "anonymous": [direct(base, POST, {"id": i}, None)["post"] for i in reviewed],
                "author": [direct(base, POST, {"id": i}, token)["post"] for i in reviewed],
                "posts": direct(base, POSTS, {"first": FIRST}, None)["posts"]["nodes"],
                "page": direct(base, PAGE, {}, None)["posts"]["pageInfo"],
            }
            summary: dict[str, Any] = run_e2e_spec(
                node,
                SPEC,
                FEDERATION_E2E_BLOG_URL=f"{base}/graphql",
                FEDERATION_E2E_REVIEWS_URL=reviews_url,
                FEDERATION_E2E_TOKEN=token,
                FEDERATION_E2E_FIRST=str(FIRST),
            )
    finally:
        postgres.run(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    assert summary["composition"] is None, summary  # the gateway composed both subgraphs
    return {
        **summary["operations"],
        "logged": summary["logged"],
        "reference": reference,
        "ids": ids,
    }


def test_the_service_hides_the_draft_from_anonymous_callers_only(observed):
    # the premise of the RLS checks below, from the service directly
    published, draft = observed["reference"]["anonymous"]
    assert published["title"] == "Published"
    assert draft is None
    assert observed["reference"]["author"][1]["title"] == "Draft"


def test_the_gateway_fetches_the_reviewed_posts_from_the_services_entities(observed):
    # The reviews subgraph knows only the ids; title and author are the service's, exactly as
    # it answers them itself. The draft the caller may not see is null, without an error.
    anonymous = observed["reference"]["anonymous"]
    assert observed["reviews"] == {
        "status": 200,
        "data": {
            "reviews": [
                {"body": "Review 1", "post": anonymous[0]},
                {"body": "Review 2", "post": None},
            ]
        },
        "errors": None,
    }


def test_the_gateway_forwards_the_token_so_the_author_sees_their_draft(observed):
    author = observed["reference"]["author"]
    assert author[0]["author"]["email"] == AUTHOR  # their own email: the token reached the service
    assert observed["reviewsAsAuthor"] == {
        "status": 200,
        "data": {
            "reviews": [
                {"body": "Review 1", "post": author[0]},
                {"body": "Review 2", "post": author[1]},
            ]
        },
        "errors": None,
    }


def test_the_gateway_adds_the_reviews_subgraphs_field_to_the_services_posts(observed):
    published = observed["ids"]["Published"]
    nodes = [
        {**node, "reviews": [{"body": "Review 1"}] if node["id"] == published else []}
        for node in observed["reference"]["posts"]
    ]
    assert {node["title"] for node in nodes} == {"Published", "Unreviewed"}
    assert observed["posts"] == {"status": 200, "data": {"posts": {"nodes": nodes}}, "errors": None}


def test_the_services_page_info_composes_with_another_subgraphs(observed):
    # Both subgraphs define PageInfo (Relay's shape). Federation 2 composes a type defined twice
    # only when every definition is @shareable: without it on the service's, the gateway fails.
    assert observed["logged"] == []  # no composition error, warning or hint
    assert observed["reference"]["page"]["hasNextPage"] is True  # two published posts
    assert observed["pages"] == {
        "status": 200,
        "data": {
            "posts": {"pageInfo": observed["reference"]["page"]},
            "reviewPage": {
                "nodes": [{"body": "Review 1"}],
                "pageInfo": {
                    "hasNextPage": True,
                    "hasPreviousPage": False,
                    "startCursor": "0",
                    "endCursor": "0",
                },
            },
        },
        "errors": None,
    }
