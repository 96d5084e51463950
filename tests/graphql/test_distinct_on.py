"""`distinctOn`: of the rows a connection matches, the first in its order of each kind.

The newest post of each author, each day's first comment, every post's first comment by each
commenter: PostgreSQL's DISTINCT ON, on root and nested connections, paged by keyset cursors
both ways, counted and aggregated over the same rows, under Row Level Security. The expected
rows come from DISTINCT ON queries written here (asyncpg, plain SQL).
"""

from __future__ import annotations

from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.db.url import DatabaseURL
from tests.graphql.conftest import ALICE, add_drafts, gql
from tests.support import fetch_sql

# distinctOn choice -> the SQL values it is distinct on, for comments
KINDS = {
    "AUTHOR_ID": "author_id",
    "POST_ID": "post_id",
    "CREATED_AT_TRUNCATED_TO_DAY": "date_trunc('day', created_at, 'UTC')",
    "CREATED_AT_TRUNCATED_TO_MONTH": "date_trunc('month', created_at, 'UTC')",
    "BODY": "body",
}
ORDERS = {"createdAt": "created_at", "body": "body", "authorId": "author_id"}


def _data(body: dict[str, Any]) -> Any:
    assert "errors" not in body, body
    return body["data"]


async def _reference(url: DatabaseURL, sql: str) -> list[str]:
    return [row[0] for row in await fetch_sql(url, sql)]


async def test_the_newest_post_of_each_author(api: httpx.AsyncClient, seeded) -> None:
    data = _data(
        await gql(
            api,
            """{ posts(distinctOn: [AUTHOR_ID], orderBy: [{createdAt: DESC}]) {
                  nodes { title authorId } totalCount
                  aggregates { count distinctCount { authorId } min { title } } } }""",
        )
    )
    expected = await _reference(
        seeded,
        "SELECT title FROM (SELECT DISTINCT ON (author_id) * FROM posts "
        "ORDER BY author_id, created_at DESC, id) p ORDER BY created_at DESC, id",
    )
    assert [n["title"] for n in data["posts"]["nodes"]] == expected
    assert len(expected) == 2
    assert data["posts"]["totalCount"] == 2
    assert data["posts"]["aggregates"] == {
        "count": 2,
        "distinctCount": {"authorId": 2},
        "min": {"title": min(expected)},
    }


async def test_one_row_per_day_and_per_parent(api: httpx.AsyncClient, seeded) -> None:
    data = _data(
        await gql(
            api,
            """query($by: [CommentGroupBy!]) {
              days: comments(distinctOn: $by, orderBy: {createdAt: ASC}, first: 3) {
                nodes { body } totalCount }
              posts(first: 2, orderBy: {title: ASC}) { nodes { title
                comments(distinctOn: AUTHOR_ID, orderBy: {createdAt: ASC}) {
                  nodes { body authorId } } } } }""",
            {"by": ["CREATED_AT_TRUNCATED_TO_DAY"]},
        )
    )
    # each post's comments fall on a day of their own; the earliest of each day comes first
    assert [n["body"] for n in data["days"]["nodes"]] == [
        "Comment 3 on post 1",
        "Comment 3 on post 2",
        "Comment 3 on post 3",
    ]
    assert data["days"]["totalCount"] == 25
    # per post, each commenter's first comment, in the connection's order
    first_post = data["posts"]["nodes"][0]
    assert first_post["title"] == "Post 01"
    assert [n["body"] for n in first_post["comments"]["nodes"]] == [
        "Comment 3 on post 1",
        "Comment 2 on post 1",
    ]


async def test_rows_the_caller_cannot_see_are_not_the_first_of_anything(
    api: httpx.AsyncClient, seeded
) -> None:
    await add_drafts(seeded, ALICE, "Alice's newest draft")
    query = """{ posts(distinctOn: AUTHOR_ID, orderBy: {createdAt: DESC}) {
                   nodes { title } } }"""
    anonymous = _data(await gql(api, query))
    assert "Alice's newest draft" not in [n["title"] for n in anonymous["posts"]["nodes"]]
    assert len(anonymous["posts"]["nodes"]) == 2
    alice = _data(await gql(api, query, as_user=ALICE))
    assert alice["posts"]["nodes"][0] == {"title": "Alice's newest draft"}


async def test_bad_distinct_on_is_a_clear_error(api: httpx.AsyncClient) -> None:
    for arguments in (
        "distinctOn: [AUTHOR_ID, AUTHOR_ID]",
        "distinctOn: [CREATED_AT, CREATED_AT_TRUNCATED_TO_DAY]",
        "distinctOn: [NOPE]",
    ):
        body = await gql(api, f"{{ comments({arguments}) {{ nodes {{ id }} }} }}")
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", body
    # an empty list is no distinctOn at all
    body = await gql(api, "{ comments(distinctOn: []) { totalCount } }")
    assert _data(body) == {"comments": {"totalCount": 75}}


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    kinds=st.lists(st.sampled_from(sorted(KINDS)), min_size=1, max_size=2, unique=True).filter(
        lambda k: not {"CREATED_AT_TRUNCATED_TO_DAY", "CREATED_AT_TRUNCATED_TO_MONTH"} <= set(k)
    ),
    order=st.lists(
        st.tuples(st.sampled_from(sorted(ORDERS)), st.sampled_from(["ASC", "DESC"])),
        max_size=2,
        unique_by=lambda o: o[0],
    ),
    size=st.integers(1, 9),
    backward=st.booleans(),
)
async def test_paging_through_distinct_rows_gives_exactly_the_distinct_on_query(
    api: httpx.AsyncClient,
    seeded,
    kinds: list[str],
    order: list[tuple[str, str]],
    size: int,
    backward: bool,
) -> None:
    values = ", ".join(KINDS[k] for k in kinds)
    sort = "".join(f"{ORDERS[f]} {d}, " for f, d in order) + "id ASC"
    expected = await _reference(
        seeded,
        f"SELECT body FROM (SELECT DISTINCT ON ({values}) * FROM comments "
        f"ORDER BY {values}, {sort}) c ORDER BY {sort}",
    )
    order_by = [{f: d} for f, d in order]
    if backward:
        page_args = "last: $size, before: $cursor"
        cursor_key, more_key = "startCursor", "hasPreviousPage"
    else:
        page_args = "first: $size, after: $cursor"
        cursor_key, more_key = "endCursor", "hasNextPage"
    query = f"""query($size: Int, $cursor: String, $by: [CommentGroupBy!],
                      $order: [CommentOrderBy!]) {{
      comments({page_args}, distinctOn: $by, orderBy: $order) {{
        nodes {{ body }} totalCount pageInfo {{ {cursor_key} {more_key} }} }} }}"""
    seen: list[str] = []
    cursor = None
    for _ in range(80):
        variables = {"size": size, "cursor": cursor, "by": kinds, "order": order_by}
        page = _data(await gql(api, query, variables))["comments"]
        assert page["totalCount"] == len(expected)
        bodies = [n["body"] for n in page["nodes"]]
        seen = bodies + seen if backward else seen + bodies
        if not page["pageInfo"][more_key]:
            break
        cursor = page["pageInfo"][cursor_key]
    assert seen == expected


async def test_a_query_function_best_match_of_each_author(api: httpx.AsyncClient) -> None:
    # ranked by the search's own order (no orderBy): the best match per author, best first
    data = _data(
        await gql(
            api,
            """{ all: searchPosts(query: "content or 7") { totalCount }
                 best: searchPosts(query: "content or 7", distinctOn: AUTHOR_ID) {
                   nodes { title searchRank(query: "content or 7") } totalCount } }""",
        )
    )
    best = data["best"]["nodes"]
    assert data["all"]["totalCount"] > 2 and data["best"]["totalCount"] == len(best) == 2
    # post 7 holds both words, so it is its author's best match and the best of all
    assert best[0]["title"] == "Post 07"
    assert best[0]["searchRank"] >= best[1]["searchRank"]
