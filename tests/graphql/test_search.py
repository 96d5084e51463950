"""Full-text search of posts: `searchPosts(query:)`, the query function search_posts (0006).

It matches English words of the title and content (stemmed: "benchmarks" finds
"Benchmarking"), reads web-search syntax (quotes, `-word`, `or`), returns a connection like
`posts` (pages, filters, orders, counts) and, running as the caller, shows only the matches
Row Level Security lets them read: a draft is found by its author alone.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest

from service.db.url import DatabaseURL
from tests.graphql.conftest import ALICE, BOB, gql, statements_for
from tests.support import RunningService

# (title, content, published, author)
POSTS = [
    ("Benchmarking PostgreSQL on two cores", "We measured how fast the rig runs.", True, ALICE),
    ("Gardening in winter", "Frost and benchmarks do not mix.", True, BOB),
    ("Secret benchmark draft", "Unreleased numbers.", False, BOB),
    ("Cooking for two", "Nothing about speed at all.", True, ALICE),
]


@pytest.fixture
async def searchable(seeded: DatabaseURL) -> DatabaseURL:
    connection = await asyncpg.connect(**seeded.asyncpg_kwargs())
    try:
        await connection.executemany(
            "INSERT INTO posts (title, content, published, author_id) VALUES ($1, $2, $3, $4)",
            POSTS,
        )
    finally:
        await connection.close()
    return seeded


@pytest.fixture
async def http(searchable: DatabaseURL):
    async with RunningService(searchable) as client:
        yield client


async def _titles(http: httpx.AsyncClient, query: str, as_user: str | None = None) -> list[str]:
    body = await gql(
        http,
        "query($q: String!) { searchPosts(query: $q, orderBy: {title: ASC}) { nodes { title } } }",
        {"q": query},
        as_user=as_user,
    )
    assert "errors" not in body, body
    return [n["title"] for n in body["data"]["searchPosts"]["nodes"]]


async def test_search_matches_stemmed_words_of_title_and_content(http):
    # "benchmark" is in one title ("Benchmarking") and one content ("benchmarks")
    assert await _titles(http, "benchmark") == [
        "Benchmarking PostgreSQL on two cores",
        "Gardening in winter",
    ]
    assert await _titles(http, "frost") == ["Gardening in winter"]
    assert await _titles(http, "measuring") == ["Benchmarking PostgreSQL on two cores"]
    assert await _titles(http, "violin") == []


async def test_search_reads_web_search_syntax(http):
    assert await _titles(http, "benchmark -frost") == ["Benchmarking PostgreSQL on two cores"]
    assert await _titles(http, '"two cores"') == ["Benchmarking PostgreSQL on two cores"]
    # both words, but not as that phrase
    assert await _titles(http, '"cores two"') == []
    assert await _titles(http, "gardening or cooking") == ["Cooking for two", "Gardening in winter"]
    # punctuation is not an error, and words that are all stop words match nothing
    assert await _titles(http, "\"&|!(:*') <-> -") == []
    assert await _titles(http, "the and of") == []


async def test_a_draft_is_found_by_its_author_only(http):
    found = ["Benchmarking PostgreSQL on two cores", "Gardening in winter"]
    assert await _titles(http, "benchmark") == found
    assert await _titles(http, "benchmark", as_user=ALICE) == found
    assert await _titles(http, "benchmark", as_user=BOB) == sorted(
        [*found, "Secret benchmark draft"]
    )
    assert await _titles(http, "unreleased") == []
    assert await _titles(http, "unreleased", as_user=BOB) == ["Secret benchmark draft"]


async def test_search_results_page_filter_order_and_count_like_posts(http, searchable):
    # every seeded post says "post" ("Post 07", "Content of post 7"): 25 of them, in
    # createdAt order and then by id, the tie-breaker
    connection = await asyncpg.connect(**searchable.asyncpg_kwargs())
    try:
        rows = await connection.fetch(
            "SELECT title FROM posts WHERE title LIKE 'Post __' ORDER BY created_at DESC, id ASC"
        )
    finally:
        await connection.close()
    expected = [r["title"] for r in rows]
    assert len(expected) == 25
    query = """query($after: String) {
        searchPosts(query: "posts", first: 10, after: $after, orderBy: {createdAt: DESC}) {
          totalCount pageInfo { hasNextPage endCursor }
          nodes { title author { id } comments { totalCount } } } }"""
    seen: list[str] = []
    after = None
    while True:
        body = await gql(http, query, {"after": after})
        assert "errors" not in body, body
        page: dict[str, Any] = body["data"]["searchPosts"]
        assert page["totalCount"] == 25
        assert all(n["comments"]["totalCount"] == 3 for n in page["nodes"])
        seen += [n["title"] for n in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == expected
    body = await gql(
        http,
        """query($bob: UUID!) {
             searchPosts(query: "post", filter: {authorId: {eq: $bob}, title: {endsWith: "5"}}) {
               aggregates { count max { title } } } }""",
        {"bob": BOB},
    )
    assert body["data"]["searchPosts"]["aggregates"] == {"count": 3, "max": {"title": "Post 25"}}


async def test_search_is_one_statement(searchable):
    body, statements = await statements_for(
        searchable,
        """{ searchPosts(query: "benchmark") { nodes { title author { id }
               comments(first: 2) { nodes { body } } } } }""",
    )
    assert len(body["data"]["searchPosts"]["nodes"]) == 2
    assert len(statements) == 1, statements


async def test_search_needs_its_query(http):
    body = await gql(http, "{ searchPosts { nodes { title } } }")
    assert "data" not in body  # a request error: nothing ran
    [error] = body["errors"]
    assert "query" in error["message"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"


async def test_a_saved_search_is_a_live_query(searchable):
    from tests.graphql.test_subscriptions import POLL, create_post, socket_to
    from tests.support import token_for

    def found(message: dict[str, Any]) -> list[str]:
        assert message["type"] == "next", message
        return [n["title"] for n in message["payload"]["data"]["searchPosts"]["nodes"]]

    async with (
        RunningService(searchable, subscription_poll_seconds=POLL) as live,
        socket_to(live) as socket,
    ):
        await socket.init(token_for(ALICE))
        await socket.subscribe(
            "1", 'subscription { searchPosts(query: "violins") { nodes { title } } }'
        )
        assert found(await socket.receive()) == []
        await create_post(live, "Violin lessons", as_user=BOB)  # a draft: not Alice's
        await create_post(live, "A violin for Alice", as_user=ALICE)
        assert found(await socket.receive()) == ["A violin for Alice"]


async def test_without_an_order_the_best_matches_come_first_page_by_page(http, searchable):
    # (title, content): "violin" five, three and one times
    ranked = [
        ("All strings", "violin violin violin violin violin"),
        ("Violin and viola", "violin lessons, violin"),
        ("Music", "a violin once"),
    ]
    connection = await asyncpg.connect(**searchable.asyncpg_kwargs())
    try:
        # ids in the opposite order, so that the tie-breaker alone would list them worst first
        await connection.executemany(
            "INSERT INTO posts (id, title, content, published, author_id) "
            "VALUES ($1, $2, $3, true, $4)",
            [
                (f"30000000-0000-0000-0000-{3 - i:012d}", title, content, ALICE)
                for i, (title, content) in enumerate(ranked)
            ],
        )
    finally:
        await connection.close()
    best_first = [title for title, _ in ranked]
    body = await gql(http, '{ searchPosts(query: "violins") { nodes { title } } }')
    assert [n["title"] for n in body["data"]["searchPosts"]["nodes"]] == best_first
    # the rank is a keyset: one row a page, forward, then back from the end
    page = """query($after: String, $before: String, $first: Int, $last: Int) {
        searchPosts(query: "violins", first: $first, after: $after, last: $last,
                    before: $before) {
          pageInfo { hasNextPage endCursor startCursor } nodes { title } } }"""
    seen: list[str] = []
    variables: dict[str, Any] = {"first": 1}
    while True:
        result = (await gql(http, page, variables))["data"]["searchPosts"]
        seen += [n["title"] for n in result["nodes"]]
        if not result["pageInfo"]["hasNextPage"]:
            break
        variables = {"first": 1, "after": result["pageInfo"]["endCursor"]}
    assert seen == best_first
    last_two = (await gql(http, page, {"last": 2}))["data"]["searchPosts"]
    assert [n["title"] for n in last_two["nodes"]] == best_first[1:]
    before = await gql(http, page, {"last": 5, "before": last_two["pageInfo"]["startCursor"]})
    assert [n["title"] for n in before["data"]["searchPosts"]["nodes"]] == best_first[:1]
    # an order the client gives replaces the rank
    body = await gql(
        http, '{ searchPosts(query: "violins", orderBy: {title: ASC}) { nodes { title } } }'
    )
    assert [n["title"] for n in body["data"]["searchPosts"]["nodes"]] == sorted(best_first)


async def test_a_posts_search_rank_is_a_field_taking_the_query(http, searchable):
    # the rank that orders searchPosts, as PostgreSQL's ts_rank gives it (written out here)
    connection = await asyncpg.connect(**searchable.asyncpg_kwargs())
    try:
        rows = await connection.fetch(
            "SELECT id::text, ts_rank(to_tsvector('english', title || ' ' || content), "
            "websearch_to_tsquery('english', 'benchmark')) AS rank FROM posts"
        )
    finally:
        await connection.close()
    expected = {r["id"]: r["rank"] for r in rows}
    body = await gql(
        http,
        """query($q: String!) {
             searchPosts(query: $q) { nodes { id searchRank(query: $q) } }
             posts(first: 100) { nodes { id searchRank(query: $q) } }
             comments(first: 3) { nodes { post { id searchRank(query: $q) } } } }""",
        {"q": "benchmark"},
    )
    assert "errors" not in body, body
    data = body["data"]
    found = data["searchPosts"]["nodes"]
    assert len(found) == 2 and all(n["searchRank"] > 0 for n in found)
    every = found + data["posts"]["nodes"] + [n["post"] for n in data["comments"]["nodes"]]
    for node in every:
        assert node["searchRank"] == pytest.approx(expected[node["id"]], rel=1e-6)
    assert sum(1 for n in data["posts"]["nodes"] if n["searchRank"] > 0) == 2
    # a write returns it too, of the words just stored
    body = await gql(
        http,
        """mutation { createPost(input: {title: "Benchmarks", content: "benchmark it"}) {
             searchRank(query: "benchmark") other: searchRank(query: "violin") } }""",
        as_user=ALICE,
    )
    assert body["data"]["createPost"]["searchRank"] > 0
    assert body["data"]["createPost"]["other"] == 0
