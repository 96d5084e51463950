"""MAX_QUERY_ROWS: an operation whose connections may return more rows than that is refused
before any SQL runs. Depth and page size alone do not bound a response: three nested pages of
100 are a million rows, which PostgreSQL would build in full before a timeout could stop it.

Rows are counted as GitHub counts nodes: each connection's page size times the rows it is
nested under, summed over the operation.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import httpx
import pytest

from service.db.url import DatabaseURL
from tests.graphql.conftest import ALICE, gql, post_id
from tests.support import RunningService

# 100 posts, 100 comments each, and each comment's post's 100 comments: 1,010,100 rows
MILLION = """
{ posts(first: 100) { nodes { comments(first: 100) { nodes {
    post { comments(first: 100) { nodes { id } } } } } } } }
"""


@dataclass
class Served:
    http: httpx.AsyncClient
    statements: list[str]  # what reached PostgreSQL on the service's only connection


@pytest.fixture
async def served(seeded: DatabaseURL) -> AsyncIterator[Served]:
    statements: list[str] = []
    service = RunningService(seeded, db_pool_size=1)
    async with service as http:
        async with service.app.state.pools.primary.acquire() as connection:
            connection.add_query_logger(lambda record: statements.append(record.query))
        yield Served(http, statements)


def refused(body: dict) -> str:
    assert "data" not in body, body
    [error] = body["errors"]
    assert error["extensions"]["code"] == "LIMIT_EXCEEDED", error
    message: str = error["message"]
    return message


async def test_a_million_rows_through_nested_pages_is_refused_before_any_sql(served):
    message = refused(await gql(served.http, MILLION))
    assert "may return 1010100 rows" in message
    assert "at most 50000" in message
    assert served.statements == []


async def test_page_sizes_from_variables_count_as_given(served):
    query = """
    query($n: Int) { posts(first: $n) { nodes { comments(first: $n) { nodes {
        post { comments(first: $n) { nodes { id } } } } } } } }
    """
    # 30 + 900 + 27,000 rows may come back: answered, whatever the data holds
    body = await gql(served.http, query, {"n": 30})
    assert len(body["data"]["posts"]["nodes"]) == 25
    assert body["data"]["posts"]["nodes"][0]["comments"]["nodes"][0]["post"]["comments"]
    # 40 + 1,600 + 64,000: refused, although this database holds 75 comments
    assert "may return 65640 rows" in refused(await gql(served.http, query, {"n": 40}))


async def test_the_limit_is_on_the_whole_operation(served):
    # each alias may return 100 posts and 100 comments for each: 10,100 rows
    page = "posts(first: 100) { nodes { comments(first: 100) { nodes { id } } } }"
    four = "{ " + " ".join(f"p{i}: {page}" for i in range(4)) + " }"
    five = "{ " + " ".join(f"p{i}: {page}" for i in range(5)) + " }"
    body = await gql(served.http, four)
    assert len(body["data"]["p3"]["nodes"]) == 25
    assert "may return 50500 rows" in refused(await gql(served.http, five))


async def test_a_count_is_one_row_per_parent(served):
    # 100 posts, 100 comments each, and for each comment its post's count: 20,100 rows
    counts = """
    { posts(first: 100) { nodes { comments(first: 100) { nodes {
        post { comments(first: 100) { totalCount } } } } } } }
    """
    body = await gql(served.http, counts)
    first = body["data"]["posts"]["nodes"][0]["comments"]["nodes"][0]
    assert first["post"]["comments"]["totalCount"] == 3


async def test_a_refused_mutation_writes_nothing(served, seeded):
    mutation = """
    mutation($post: UUID!) { createComment(input: {postId: $post, body: "hello"}) {
        post { comments(first: 100) { nodes { post { comments(first: 100) { nodes {
            post { comments(first: 100) { nodes { id } } } } } } } } } } }
    """
    body = await gql(served.http, mutation, {"post": post_id(2)}, as_user=ALICE)
    assert "may return 1010100 rows" in refused(body)
    connection = await asyncpg.connect(**seeded.asyncpg_kwargs())
    try:
        assert await connection.fetchval("SELECT count(*) FROM comments") == 75
    finally:
        await connection.close()


async def test_node_lookups_count_the_largest_of_their_types(served):
    query = """
    query($id: ID!) { node(nodeId: $id) {
        ... on Post { comments(first: 100) { nodes { post { comments(first: 100) {
            nodes { post { comments(first: 100) { nodes { id } } } } } } } } }
        ... on Comment { id }
    } }
    """
    body = await gql(served.http, query, {"id": "anything"})
    assert "may return 1010100 rows" in refused(body)


async def test_the_limit_is_a_setting_and_default_pages_count(seeded):
    async with RunningService(seeded, max_query_rows=100) as http:
        body = await gql(
            http, "{ posts(first: 10) { nodes { comments(first: 9) { nodes { id } } } } }"
        )
        assert len(body["data"]["posts"]["nodes"]) == 10  # 10 + 90 rows
        body = await gql(
            http, "{ posts(first: 10) { nodes { comments(first: 10) { nodes { id } } } } }"
        )
        assert "may return 110 rows" in refused(body)
        assert "at most 100 " in refused(body)
        # no `first`: pages of 20
        body = await gql(http, "{ posts { nodes { comments { nodes { id } } } } }")
        assert "may return 420 rows" in refused(body)
