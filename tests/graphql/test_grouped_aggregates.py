"""`groupedAggregates` on every connection: the matching rows grouped by columns (dates and
times also truncated), with count, min, max, sum and avg per group; nested per parent row;
under RLS. Expected values come from SQL written here, run on the database directly."""

from __future__ import annotations

from typing import Any

import asyncpg

from service.db.url import DatabaseURL
from tests.graphql.conftest import ALICE, BOB, add_drafts, gql, post_id


async def rows(url: DatabaseURL, query: str, *args: Any) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(**url.asyncpg_kwargs())
    try:
        return await connection.fetch(query, *args)
    finally:
        await connection.close()


def iso(moment: Any) -> str:
    return str(moment.isoformat())


async def two_more_comments_on_post_5(url: DatabaseURL) -> None:
    """By Alice, now: post 5 has five comments, the others three."""
    await rows(
        url,
        "INSERT INTO comments (body, post_id, author_id) SELECT 'more', $1, $2 "
        "FROM generate_series(1, 2)",
        post_id(5),
        ALICE,
    )


async def test_rows_grouped_by_a_column_in_the_keys_order(api, seeded):
    body = await gql(
        api,
        """{ comments { groupedAggregates(groupBy: [AUTHOR_ID]) {
               keys { authorId postId } count min { createdAt } max { body } } } }""",
    )
    assert "errors" not in body, body
    expected = await rows(
        seeded,
        "SELECT author_id::text, count(*), min(created_at) AS at, max(body) AS body "
        "FROM comments GROUP BY author_id ORDER BY author_id",
    )
    assert body["data"]["comments"]["groupedAggregates"] == [
        {
            "keys": {"authorId": r["author_id"], "postId": None},  # not grouped by: null
            "count": r["count"],
            "min": {"createdAt": iso(r["at"])},
            "max": {"body": r["body"]},
        }
        for r in expected
    ]
    assert [r["author_id"] for r in expected] == [ALICE, BOB]


async def test_times_truncated_to_days_and_the_first_groups(api, seeded):
    query = """query($first: Int, $bob: UUID!) { comments(filter: {authorId: {eq: $bob}}) {
                 groupedAggregates(groupBy: CREATED_AT_TRUNCATED_TO_DAY, first: $first) {
                   keys { createdAt } count } } }"""
    expected = await rows(
        seeded,
        "SELECT date_trunc('day', created_at, 'UTC') AS day, count(*) FROM comments "
        "WHERE author_id = $1 GROUP BY 1 ORDER BY 1",
        BOB,
    )
    groups = [{"keys": {"createdAt": iso(r["day"])}, "count": r["count"]} for r in expected]
    assert len(groups) == 25  # a day each post, its two comments by Bob
    default = await gql(api, query, {"bob": BOB})
    assert default["data"]["comments"]["groupedAggregates"] == groups[:20]  # a page's default
    every = await gql(api, query, {"first": 100, "bob": BOB})
    assert every["data"]["comments"]["groupedAggregates"] == groups
    assert every["data"]["comments"]["groupedAggregates"][0]["keys"]["createdAt"].endswith(
        "T00:00:00+00:00"
    )


async def test_groups_per_parent_row_by_two_keys_from_a_variable(api, seeded):
    body = await gql(
        api,
        """query($by: [CommentGroupBy!]!, $id: UUID!) { post(id: $id) {
             comments { groupedAggregates(groupBy: $by) {
               __typename keys { postId authorId } count } } } }""",
        {"by": ["POST_ID", "AUTHOR_ID"], "id": post_id(3)},
    )
    assert "errors" not in body, body
    assert body["data"]["post"]["comments"]["groupedAggregates"] == [
        {
            "__typename": "CommentGroup",
            "keys": {"postId": post_id(3), "authorId": ALICE},
            "count": 1,
        },
        {"__typename": "CommentGroup", "keys": {"postId": post_id(3), "authorId": BOB}, "count": 2},
    ]


async def test_only_rows_the_caller_may_see_are_grouped(api, seeded):
    await add_drafts(seeded, BOB, "Draft 1", "Draft 2")
    query = "{ posts { groupedAggregates(groupBy: PUBLISHED) { keys { published } count } } }"
    anonymous = await gql(api, query)
    assert anonymous["data"]["posts"]["groupedAggregates"] == [
        {"keys": {"published": True}, "count": 25}
    ]
    bobs = await gql(api, query, as_user=BOB)
    assert bobs["data"]["posts"]["groupedAggregates"] == [
        {"keys": {"published": False}, "count": 2},
        {"keys": {"published": True}, "count": 25},
    ]


async def test_wrong_groupings_are_bad_user_input(api):
    for grouping, field in (
        ("groupBy: [CREATED_AT, CREATED_AT_TRUNCATED_TO_DAY]", "groupBy"),
        ("groupBy: []", "groupBy"),
        ("groupBy: TITLE, first: 101", "first"),
        ("groupBy: TITLE, first: -1", "first"),
    ):
        body = await gql(api, f"{{ posts {{ groupedAggregates({grouping}) {{ count }} }} }}")
        assert body.get("data") is None, (grouping, body)
        assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": field}
    unknown = await gql(api, "{ posts { groupedAggregates(groupBy: CONTENTS) { count } } }")
    assert unknown["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_groups_sorted_by_their_aggregates_then_keys(api, seeded):
    await two_more_comments_on_post_5(seeded)  # the most commented post
    body = await gql(
        api,
        """{ most: comments { groupedAggregates(groupBy: POST_ID, first: 3,
               orderBy: [{count: DESC}]) { keys { postId } count } }
             latest: comments { groupedAggregates(groupBy: POST_ID, first: 2,
               orderBy: {max: {createdAt: DESC}}) { keys { postId } } } }""",
    )
    assert "errors" not in body, body
    expected = await rows(
        seeded,
        "SELECT post_id::text, count(*) FROM comments GROUP BY post_id "
        "ORDER BY count(*) DESC, post_id LIMIT 3",
    )
    assert body["data"]["most"]["groupedAggregates"] == [
        {"keys": {"postId": r["post_id"]}, "count": r["count"]} for r in expected
    ]
    assert expected[0]["post_id"] == post_id(5) and expected[0]["count"] == 5
    latest = [g["keys"]["postId"] for g in body["data"]["latest"]["groupedAggregates"]]
    assert latest == [post_id(5), post_id(25)]  # post 5's new comments are the newest


async def test_having_keeps_the_groups_whose_aggregates_match(api, seeded):
    await two_more_comments_on_post_5(seeded)
    body = await gql(
        api,
        """query($h: CommentGroupHaving) {
             busy: comments { groupedAggregates(groupBy: POST_ID, having: {count: {gt: 3}}) {
               keys { postId } count } }
             asVariable: comments { groupedAggregates(groupBy: POST_ID, having: $h) { count } }
             latest: posts { groupedAggregates(groupBy: AUTHOR_ID,
               having: {max: {title: {gte: "Post 25"}}}) { keys { authorId } } }
             both: comments { groupedAggregates(groupBy: AUTHOR_ID,
               having: {count: {lt: 30}, distinctCount: {postId: {eq: 25}}}) {
               keys { authorId } count } } }""",
        {"h": {"count": {"gte": 5}}},
    )
    assert "errors" not in body, body
    data = body["data"]
    assert data["busy"]["groupedAggregates"] == [{"keys": {"postId": post_id(5)}, "count": 5}]
    assert data["asVariable"]["groupedAggregates"] == [{"count": 5}]
    # Bob wrote the odd-numbered posts, Post 25 the last of them
    assert data["latest"]["groupedAggregates"] == [{"keys": {"authorId": BOB}}]
    # Alice's 25 + 2 comments, on every post; Bob's 50 fail `count < 30`
    assert data["both"]["groupedAggregates"] == [{"keys": {"authorId": ALICE}, "count": 27}]
