"""Ordering by related values: a many-to-one row's column, an aggregate over one-to-many rows.

Seed (conftest.py): 25 published posts, Bob's odd (13), Alice's even (12); three comments on
each post, by Bob (1 and 3) and Alice (2). Paging through these orders, with inserts between
pages, is the property of test_paging_properties.py; here are readable cases, what Row Level
Security and private columns do to them, and bad input.
"""

from __future__ import annotations

from tests.graphql.conftest import ALICE, BOB, gql, post_id, statements_for
from tests.support import RunningService


async def _comment(api, post: int, as_user: str) -> None:
    body = await gql(
        api,
        'mutation($p: UUID!) { createComment(input: {postId: $p, body: "more"}) { id } }',
        {"p": post_id(post)},
        as_user=as_user,
    )
    assert "errors" not in body, body


async def test_posts_by_their_comment_count_with_the_id_as_tie_breaker(api):
    for post, extra in ((7, 2), (4, 1), (9, 1)):
        for _ in range(extra):
            await _comment(api, post, ALICE)
    query = """{ posts(first: 5, orderBy: [{comments: {count: DESC}}]) {
        nodes { title comments { totalCount } } } }"""
    nodes = (await gql(api, query))["data"]["posts"]["nodes"]
    assert [(n["title"], n["comments"]["totalCount"]) for n in nodes] == [
        ("Post 07", 5),
        ("Post 04", 4),
        ("Post 09", 4),
        ("Post 01", 3),
        ("Post 02", 3),
    ]


async def test_comments_by_their_posts_title_and_posts_by_their_newest_comment(api):
    query = """{
      comments(first: 4, orderBy: [{post: {title: DESC}}, {body: ASC}]) { nodes { body } }
      posts(first: 3, orderBy: {comments: {max: {createdAt: DESC}}}) { nodes { title } }
    }"""
    data = (await gql(api, query))["data"]
    assert [n["body"] for n in data["comments"]["nodes"]] == [
        "Comment 1 on post 25",
        "Comment 2 on post 25",
        "Comment 3 on post 25",
        "Comment 1 on post 24",
    ]
    # post p's comments were made on March 1 + p days: the newest are on the last posts
    assert [n["title"] for n in data["posts"]["nodes"]] == ["Post 25", "Post 24", "Post 23"]


async def test_a_nested_connection_orders_by_a_related_value_in_the_same_statement(seeded):
    query = """query($id: UUID!) { user(id: $id) {
        posts(first: 2, orderBy: [{comments: {min: {body: ASC}}}, {title: DESC}]) {
          nodes { title comments(orderBy: {author: {createdAt: DESC}}) { nodes { body } } }
        } } }"""
    body, statements = await statements_for(seeded, query, {"id": ALICE})
    posts = body["data"]["user"]["posts"]["nodes"]
    # every post's first comment body is "Comment 1 on post N": by min body, then title DESC
    assert [p["title"] for p in posts] == ["Post 10", "Post 12"]
    # Bob joined after Alice: newest author first puts his comments (1, 3) before hers (2)
    assert [c["body"] for c in posts[0]["comments"]["nodes"]] == [
        "Comment 1 on post 10",
        "Comment 3 on post 10",
        "Comment 2 on post 10",
    ]
    assert len(statements) == 1, statements


async def test_counts_are_of_the_rows_the_caller_can_see(api):
    # Alice writes three drafts: she sees 15 posts of hers, everyone else 12 (Bob has 13).
    for i in range(3):
        body = await gql(
            api,
            'mutation($t: String!) { createPost(input: {title: $t, content: "draft"}) { id } }',
            {"t": f"Draft {i}"},
            as_user=ALICE,
        )
        assert "errors" not in body, body
    query = """{ users(first: 2, orderBy: {posts: {count: DESC}}) {
        nodes { id posts { totalCount } } } }"""
    as_alice = (await gql(api, query, as_user=ALICE))["data"]["users"]["nodes"]
    anonymous = (await gql(api, query))["data"]["users"]["nodes"]
    assert [(u["id"], u["posts"]["totalCount"]) for u in as_alice] == [(ALICE, 15), (BOB, 13)]
    assert [(u["id"], u["posts"]["totalCount"]) for u in anonymous] == [(BOB, 13), (ALICE, 12)]


async def test_a_private_column_sorts_as_null_for_everyone_but_its_owner(api):
    # Only Alice sees her email; Bob's is null to her, and nulls sort last ascending.
    query = """query($id: UUID!) { post(id: $id) {
        comments(orderBy: [{author: {email: ASC}}, {body: DESC}]) { nodes { body } } } }"""
    as_alice = await gql(api, query, {"id": post_id(5)}, as_user=ALICE)
    as_bob = await gql(api, query, {"id": post_id(5)}, as_user=BOB)
    bodies = [n["body"] for n in as_alice["data"]["post"]["comments"]["nodes"]]
    assert bodies == ["Comment 2 on post 5", "Comment 3 on post 5", "Comment 1 on post 5"]
    bodies = [n["body"] for n in as_bob["data"]["post"]["comments"]["nodes"]]
    assert bodies == ["Comment 3 on post 5", "Comment 1 on post 5", "Comment 2 on post 5"]


async def test_a_cursor_of_another_related_order_is_bad_user_input(api):
    by_count = """{ posts(first: 2, orderBy: {comments: {count: DESC}}) {
        pageInfo { endCursor } } }"""
    cursor = (await gql(api, by_count))["data"]["posts"]["pageInfo"]["endCursor"]
    query = """query($c: String) { posts(first: 2, after: $c,
        orderBy: {comments: {max: {createdAt: DESC}}}) { nodes { id } } }"""
    body = await gql(api, query, {"c": cursor})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "cursor" in body["errors"][0]["message"]


async def test_an_empty_or_double_related_entry_is_bad_user_input(api):
    for order in ("{author: {}}", "{author: {email: ASC, id: ASC}}", "{comments: {}}"):
        body = await gql(api, f"{{ posts(orderBy: {order}) {{ nodes {{ id }} }} }}")
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", (order, body)
        assert "data" not in body or body["data"] is None


async def test_an_order_through_more_relations_than_the_depth_limit_is_refused(seeded):
    async with RunningService(seeded, max_query_depth=2) as http:
        ok = await gql(http, "{ comments(orderBy: {post: {author: {email: ASC}}}) { totalCount } }")
        assert ok["data"]["comments"]["totalCount"] == 75
        body = await gql(
            http, "{ comments(orderBy: {post: {author: {posts: {count: ASC}}}}) { totalCount } }"
        )
    assert body["errors"][0]["extensions"]["code"] == "LIMIT_EXCEEDED"
    assert "2 relations" in body["errors"][0]["message"]


async def test_a_single_value_where_a_list_is_expected_is_a_list_of_one(api):
    # GraphQL's input coercion: `orderBy: {…}` means `orderBy: [{…}]`, in literals as in
    # variables, for every list an argument holds.
    query = """{
      ordered: posts(first: 2, orderBy: {title: DESC}) { nodes { title } }
      anded: posts(first: 2, filter: {and: {title: {startsWith: "Post 2"}}}) { nodes { title } }
      listed: posts(filter: {title: {in: "Post 03"}}) { nodes { title } }
    }"""
    data = (await gql(api, query))["data"]
    assert [n["title"] for n in data["ordered"]["nodes"]] == ["Post 25", "Post 24"]
    assert [n["title"] for n in data["anded"]["nodes"]] == ["Post 20", "Post 21"]
    assert [n["title"] for n in data["listed"]["nodes"]] == ["Post 03"]
    body = await gql(
        api,
        'mutation { createPosts(inputs: {title: "One", content: "of a list"}) { title } }',
        as_user=ALICE,
    )
    assert body == {"data": {"createPosts": [{"title": "One"}]}}
