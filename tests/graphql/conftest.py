"""Seeded data for the API tests: 2 users, 25 published posts, 3 comments each.

Everything is published so that every caller sees every row: these tests are about the API's
shape. Who sees what (RLS) is tested in tests/auth/.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from service.db.url import DatabaseURL
from tests.support import token_for

SEED = """
INSERT INTO auth.users (id, email, created_at) VALUES
    ('00000000-0000-0000-0000-000000000001', 'alice@example.com', '2026-01-01T00:00:00Z'),
    ('00000000-0000-0000-0000-000000000002', 'bob@example.com', '2026-01-02T00:00:00Z');
INSERT INTO posts (id, title, content, published, author_id, created_at, updated_at)
SELECT
    ('10000000-0000-0000-0000-' || lpad(i::text, 12, '0'))::uuid,
    'Post ' || lpad(i::text, 2, '0'),
    'Content of post ' || i,
    true,
    ('00000000-0000-0000-0000-00000000000' || (1 + i % 2))::uuid,
    -- two posts share each timestamp, so ordering by createdAt needs the id tie-breaker
    timestamptz '2026-02-01T00:00:00Z' + (i / 2) * interval '1 hour',
    timestamptz '2026-02-01T00:00:00Z'
FROM generate_series(1, 25) AS i;
INSERT INTO comments (id, body, post_id, author_id, created_at)
SELECT
    ('20000000-0000-0000-' || lpad(p::text, 4, '0') || '-' || lpad(c::text, 12, '0'))::uuid,
    'Comment ' || c || ' on post ' || p,
    ('10000000-0000-0000-0000-' || lpad(p::text, 12, '0'))::uuid,
    ('00000000-0000-0000-0000-00000000000' || (1 + c % 2))::uuid,
    timestamptz '2026-03-01T00:00:00Z' + p * interval '1 day' - c * interval '1 minute'
FROM generate_series(1, 25) AS p, generate_series(1, 3) AS c;
"""


def post_id(i: int) -> str:
    return f"10000000-0000-0000-0000-{i:012d}"


async def add_drafts(url: DatabaseURL, author: str, *titles: str) -> None:
    """Unpublished posts: only their author can read them (RLS), unlike the seed's."""
    connection = await asyncpg.connect(**url.asyncpg_kwargs())
    try:
        await connection.executemany(
            "INSERT INTO posts (title, content, published, author_id) VALUES ($1, '', false, $2)",
            [(title, author) for title in titles],
        )
    finally:
        await connection.close()


@pytest.fixture
async def seeded(database: DatabaseURL) -> DatabaseURL:
    connection = await asyncpg.connect(**database.asyncpg_kwargs())
    try:
        await connection.execute(SEED)
    finally:
        await connection.close()
    return database


@pytest.fixture
async def api(seeded: DatabaseURL) -> AsyncIterator[httpx.AsyncClient]:
    from tests.support import RunningService

    async with RunningService(seeded) as http:
        yield http


ALICE = "00000000-0000-0000-0000-000000000001"  # author of the even-numbered posts
BOB = "00000000-0000-0000-0000-000000000002"  # author of the odd-numbered posts


async def gql(
    http: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    as_user: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {token_for(as_user)}"} if as_user else {}
    response = await http.post(
        "/graphql", json={"query": query, "variables": variables, **extra}, headers=headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def statements_for(
    url: DatabaseURL,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    as_user: str | None = None,
    **settings: Any,
) -> tuple[dict[str, Any], list[str]]:
    """The response to one operation and every SQL statement the service sent for it: on a
    pool of one connection, which already holds the anonymous caller (so a signed-in
    caller's first statement sets who they are)."""
    from tests.support import RunningService

    statements: list[str] = []
    service = RunningService(url, db_pool_size=1, **settings)
    async with service as http:
        async with service.app.state.pools.primary.acquire() as connection:
            connection.add_query_logger(lambda record: statements.append(record.query))
        body = await gql(http, query, variables, as_user=as_user)
    return body, statements


@pytest.fixture
async def engine(seeded: DatabaseURL) -> AsyncIterator[AsyncEngine]:
    """SQLAlchemy on the seeded database, for reference queries, with the reference's extra
    users (tests/graphql/reference.py) added."""
    from service.db.engine import create_engine
    from tests.graphql.reference import EXTRA_USERS

    engine = create_engine(seeded)
    async with engine.begin() as connection:
        await connection.exec_driver_sql(EXTRA_USERS)
    try:
        yield engine
    finally:
        await engine.dispose()
