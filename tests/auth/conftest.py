"""Two users and their posts and comments, published and not, for the access-control tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from service.db.url import DatabaseURL
from tests.support import RunningService, token_for

ALICE = "a0000000-0000-0000-0000-000000000001"
BOB = "b0000000-0000-0000-0000-000000000002"
POSTS = {
    "alice_published": "a1000000-0000-0000-0000-000000000001",
    "alice_draft": "a2000000-0000-0000-0000-000000000002",
    "bob_published": "b1000000-0000-0000-0000-000000000001",
    "bob_draft": "b2000000-0000-0000-0000-000000000002",
}
COMMENTS = {
    # (post, author)
    "bob_on_alice_published": "c1000000-0000-0000-0000-000000000001",
    "alice_on_alice_draft": "c2000000-0000-0000-0000-000000000002",
    # written while alice's draft was published, before she unpublished it
    "bob_on_alice_draft": "c3000000-0000-0000-0000-000000000003",
    "alice_on_bob_published": "c4000000-0000-0000-0000-000000000004",
}

SEED = f"""
INSERT INTO auth.users (id, email) VALUES
    ('{ALICE}', 'alice@example.com'), ('{BOB}', 'bob@example.com');
INSERT INTO posts (id, title, content, published, author_id) VALUES
    ('{POSTS["alice_published"]}', 'alice_published', '', true, '{ALICE}'),
    ('{POSTS["alice_draft"]}', 'alice_draft', '', false, '{ALICE}'),
    ('{POSTS["bob_published"]}', 'bob_published', '', true, '{BOB}'),
    ('{POSTS["bob_draft"]}', 'bob_draft', '', false, '{BOB}');
INSERT INTO comments (id, body, post_id, author_id) VALUES
    ('{COMMENTS["bob_on_alice_published"]}', 'bob_on_alice_published',
     '{POSTS["alice_published"]}', '{BOB}'),
    ('{COMMENTS["alice_on_alice_draft"]}', 'alice_on_alice_draft',
     '{POSTS["alice_draft"]}', '{ALICE}'),
    ('{COMMENTS["bob_on_alice_draft"]}', 'bob_on_alice_draft', '{POSTS["alice_draft"]}', '{BOB}'),
    ('{COMMENTS["alice_on_bob_published"]}', 'alice_on_bob_published',
     '{POSTS["bob_published"]}', '{ALICE}');
"""

USERS = {"anon": None, "alice": ALICE, "bob": BOB}


@pytest.fixture
async def people(database: DatabaseURL) -> AsyncIterator[httpx.AsyncClient]:
    connection = await asyncpg.connect(**database.asyncpg_kwargs())
    try:
        await connection.execute(SEED)
    finally:
        await connection.close()
    async with RunningService(database) as http:
        yield http


async def call(
    http: httpx.AsyncClient, who: str, query: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    user = USERS[who]
    headers = {"authorization": f"Bearer {token_for(user)}"} if user else {}
    response = await http.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def code(body: dict[str, Any]) -> str | None:
    errors = body.get("errors")
    return errors[0]["extensions"]["code"] if errors else None
