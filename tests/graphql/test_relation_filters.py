"""Filters through relations: a row's many-to-one row matches, or some, every or none of its
one-to-many rows match, or how many there are, counting only the rows the caller can see.

Seed (conftest.py): 25 published posts, Bob's odd, Alice's even; three comments on each post,
'Comment c on post p', the first and third by Bob, the second by Alice, post p's at
2026-03-01 + p days - c minutes.
"""

from __future__ import annotations

from tests.graphql.conftest import ALICE, BOB, add_drafts, gql, post_id
from tests.support import execute_sql

POST_IDS = "query($f: PostFilter) { posts(first: 100, filter: $f) { nodes { id } } }"


async def _post_ids(api, post_filter, **kwargs) -> list[str]:
    body = await gql(api, POST_IDS, {"f": post_filter}, **kwargs)
    assert "errors" not in body, body
    return [n["id"] for n in body["data"]["posts"]["nodes"]]


def _posts(*numbers: int) -> list[str]:
    return [post_id(i) for i in numbers]


async def test_a_many_to_one_filter_matches_on_the_related_row(api):
    body = await gql(
        api,
        """{ comments(first: 100, filter: {post: {title: {startsWith: "Post 1"}}}) {
               totalCount nodes { post { title } } } }""",
    )
    comments = body["data"]["comments"]
    assert comments["totalCount"] == 30  # posts 10-19, three comments each
    titles = {n["post"]["title"] for n in comments["nodes"]}
    assert titles == {f"Post {i}" for i in range(10, 20)}


async def test_some_every_and_none_of_a_one_to_many_relation(api):
    some = {"comments": {"some": {"body": {"eq": "Comment 2 on post 7"}}}}
    assert await _post_ids(api, some) == _posts(7)
    # every comment of posts 1-4 is older than March 5th; the newest of post 5 is not
    every = {"comments": {"every": {"createdAt": {"lt": "2026-03-05T00:00:00Z"}}}}
    assert await _post_ids(api, every) == _posts(1, 2, 3, 4)
    none = {"comments": {"none": {"body": {"like": "Comment 3 on post 1_"}}}}
    assert await _post_ids(api, none) == _posts(*range(1, 10), *range(20, 26))
    # given together, all must hold
    both = {"comments": {"some": {"authorId": {"eq": ALICE}}, "none": {"body": {"eq": "x"}}}}
    assert await _post_ids(api, both) == _posts(*range(1, 26))


async def test_every_holds_for_a_row_with_no_related_rows_and_some_does_not(api):
    created = await gql(
        api,
        'mutation { createPost(input: {title: "Quiet", content: "no comments"}) { id } }',
        as_user=ALICE,
    )
    quiet = created["data"]["createPost"]["id"]
    every = {"comments": {"every": {"authorId": {"eq": BOB}}}}
    assert await _post_ids(api, every, as_user=ALICE) == [quiet]
    some = {"comments": {"some": {}}}  # any comment at all
    assert sorted(await _post_ids(api, some, as_user=ALICE)) == _posts(*range(1, 26))


async def test_relation_filters_nest_and_combine_with_and_or_not(api):
    # users with a post that has a given comment: two relations deep
    body = await gql(
        api,
        """{ users(filter: {posts: {some: {comments: {some: {body: {eq: "Comment 1 on post 8"}}}}}})
             { nodes { id } } }""",
    )
    assert [n["id"] for n in body["data"]["users"]["nodes"]] == [ALICE]
    either = {
        "or": [
            {"comments": {"some": {"body": {"eq": "Comment 1 on post 3"}}}},
            {"author": {"id": {"eq": ALICE}}},
        ]
    }
    assert await _post_ids(api, either) == _posts(2, 3, *range(4, 26, 2))
    neither = {"not": either}
    assert await _post_ids(api, neither) == _posts(1, *range(5, 26, 2))


async def test_operands_inside_a_relation_filter_are_bound_per_request(api):
    query = """query($body: String) {
      posts(filter: {comments: {some: {body: {eq: $body}}}}) { nodes { title } } }"""
    for post in (4, 21):
        body = await gql(api, query, {"body": f"Comment 2 on post {post}"})
        assert body["data"]["posts"]["nodes"] == [{"title": f"Post {post:02d}"}]


async def test_a_private_column_cannot_be_probed_through_a_relation_filter(api):
    # Bob's email is visible to Bob only; filtering on it must not tell anyone else whose
    # posts are his
    by_email = {"author": {"email": {"eq": "bob@example.com"}}}
    assert await _post_ids(api, by_email, as_user=BOB) == _posts(*range(1, 26, 2))
    assert await _post_ids(api, by_email, as_user=ALICE) == []
    assert await _post_ids(api, by_email) == []


async def test_related_rows_the_caller_cannot_see_do_not_count(api):
    draft = await gql(
        api,
        'mutation { createPost(input: {title: "Draft", content: "unpublished"}) { id } }',
        as_user=ALICE,
    )
    assert "errors" not in draft, draft
    query = """{ users(filter: {posts: {some: {published: {eq: false}}}}) { nodes { id } } }"""
    mine = await gql(api, query, as_user=ALICE)
    assert [n["id"] for n in mine["data"]["users"]["nodes"]] == [ALICE]
    for caller in (BOB, None):
        others = await gql(api, query, as_user=caller)
        assert others["data"]["users"]["nodes"] == []


async def test_how_many_related_rows_there_are(api, seeded):
    await execute_sql(
        seeded,
        "INSERT INTO comments (body, post_id, author_id) "
        f"SELECT 'more', '{post_id(4)}', '{BOB}' FROM generate_series(1, 2)",
    )
    await execute_sql(seeded, f"DELETE FROM comments WHERE post_id = '{post_id(9)}'")
    assert await _post_ids(api, {"comments": {"count": {"gt": 3}}}) == _posts(4)
    assert await _post_ids(api, {"comments": {"count": {"eq": 0}}}) == _posts(9)
    between = {"comments": {"count": {"gte": 1, "lte": 3}}, "title": {"lt": "Post 04"}}
    assert await _post_ids(api, between) == _posts(1, 2, 3)
    # with the other quantifiers, and through a relation's relation
    both = {"comments": {"count": {"in": [5]}, "some": {"body": {"eq": "more"}}}}
    assert await _post_ids(api, both) == _posts(4)
    body = await gql(
        api,
        """{ comments(first: 100, filter: {post: {comments: {count: {gte: 5}}}}) {
               totalCount } }""",
    )
    assert body["data"]["comments"]["totalCount"] == 5


async def test_a_count_of_related_rows_counts_those_the_caller_can_see(api, seeded):
    await add_drafts(seeded, ALICE, "Draft")
    # Alice wrote 12 of the 25 published posts; her draft is hers alone to count
    query = "{ users(filter: {posts: {count: {gte: 13}}}) { nodes { id } } }"
    mine = await gql(api, query, as_user=ALICE)
    assert [n["id"] for n in mine["data"]["users"]["nodes"]] == [ALICE, BOB]
    for caller in (BOB, None):
        others = await gql(api, query, as_user=caller)
        assert [n["id"] for n in others["data"]["users"]["nodes"]] == [BOB], caller


async def test_a_quantifier_that_does_not_exist_is_bad_user_input(api):
    body = await gql(api, '{ posts(filter: {comments: {any: {body: {eq: "x"}}}}) { totalCount } }')
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "any" in body["errors"][0]["message"]
