"""Creating rows together with their related rows: `createPost(input: {..., comments: [...]})`.

The related rows are created by their own model's create class, their foreign key taken from
the new row, as the caller, in the mutation's transaction; the answer is read after the writes,
so it shows them. Validation of nested rows and nesting in upserts are tested with models
added for it (test_new_model.py, test_upsert.py).
"""

from __future__ import annotations

import re
from typing import Any

import asyncpg

from service.db.url import DatabaseURL
from tests.graphql.conftest import ALICE, BOB, gql, post_id, statements_for

WITH_COMMENTS = (
    "{ id title authorId comments(orderBy: {body: ASC}) "
    "{ totalCount nodes { body authorId postId } } }"
)


async def _fetch(url: DatabaseURL, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """Rows as PostgreSQL has them, read past the API (and its Row Level Security)."""
    connection = await asyncpg.connect(**url.asyncpg_kwargs())
    try:
        return [tuple(r) for r in await connection.fetch(sql, *args)]
    finally:
        await connection.close()


async def _stored_comments(url: DatabaseURL, post: str) -> list[tuple[str, str]]:
    sql = "SELECT body, author_id::text FROM comments WHERE post_id = $1 ORDER BY body"
    return [(body, author) for body, author in await _fetch(url, sql, post)]


async def test_a_post_with_its_comments_in_one_mutation(api, seeded):
    given = {"title": "With comments", "content": "c", "comments": [{"body": "b"}, {"body": "a"}]}
    body = await gql(
        api,
        "mutation($in: PostCreateInput!) { createPost(input: $in) " + WITH_COMMENTS + " }",
        {"in": given},
        as_user=ALICE,
    )
    assert "errors" not in body, body
    post = body["data"]["createPost"]
    assert (post["title"], post["authorId"]) == ("With comments", ALICE)
    # The answer is read after the writes: it has the new comments, each with the new
    # post's id and its author from the token.
    assert post["comments"] == {
        "totalCount": 2,
        "nodes": [
            {"body": "a", "authorId": ALICE, "postId": post["id"]},
            {"body": "b", "authorId": ALICE, "postId": post["id"]},
        ],
    }
    assert await _stored_comments(seeded, post["id"]) == [("a", ALICE), ("b", ALICE)]


async def test_literal_inputs_and_no_comments(api, seeded):
    body = await gql(
        api,
        'mutation { a: createPost(input: {title: "A", content: "", comments: [{body: "x"}]}) '
        "{ title comments { nodes { body } } } "
        'b: createPost(input: {title: "B", content: "", comments: []}) '
        "{ title comments { totalCount } } "
        'c: createPost(input: {title: "C", content: "", comments: null}) { title } }',
        as_user=BOB,
    )
    assert body == {
        "data": {
            "a": {"title": "A", "comments": {"nodes": [{"body": "x"}]}},
            "b": {"title": "B", "comments": {"totalCount": 0}},
            "c": {"title": "C"},
        }
    }


async def test_many_posts_each_with_its_own_comments_in_the_inputs_order(api, seeded):
    inputs = [
        {"title": "First", "content": "", "comments": [{"body": "1b"}, {"body": "1a"}]},
        {"title": "Second", "content": ""},
        {"title": "Third", "content": "", "comments": [{"body": "3a"}]},
        {"title": "Fourth", "content": "", "comments": [{"body": f"4-{i:02}"} for i in range(12)]},
    ]
    body = await gql(
        api,
        "mutation($in: [PostCreateInput!]!) { createPosts(inputs: $in) "
        "{ id title comments(orderBy: {body: ASC}) { nodes { body postId } } } }",
        {"in": inputs},
        as_user=ALICE,
    )
    assert "errors" not in body, body
    posts = body["data"]["createPosts"]
    assert [p["title"] for p in posts] == ["First", "Second", "Third", "Fourth"]
    for post, item in zip(posts, inputs, strict=True):
        expected = sorted(c["body"] for c in item.get("comments", []))
        assert [c["body"] for c in post["comments"]["nodes"]] == expected
        assert all(c["postId"] == post["id"] for c in post["comments"]["nodes"])
        assert [b for b, _ in await _stored_comments(seeded, post["id"])] == expected


async def test_a_later_failure_in_the_operation_writes_none_of_it(api, seeded):
    before = await _fetch(
        seeded, "SELECT count(*) FROM posts UNION ALL SELECT count(*) FROM comments"
    )
    body = await gql(
        api,
        "mutation($bobs: UUID!) { "
        'createPost(input: {title: "Gone", content: "", comments: [{body: "gone"}]}) { id } '
        'updatePost(id: $bobs, input: {title: "not hers"}) { id } }',
        {"bobs": post_id(1)},
        as_user=ALICE,
    )
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert body["errors"][0]["path"] == ["updatePost"]
    after = await _fetch(
        seeded, "SELECT count(*) FROM posts UNION ALL SELECT count(*) FROM comments"
    )
    assert after == before


async def test_only_a_signed_in_user_creates_them(api, seeded):
    body = await gql(
        api,
        'mutation { createPost(input: {title: "T", content: "", comments: [{body: "x"}]}) { id } }',
    )
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert await _fetch(seeded, "SELECT 1 FROM comments WHERE body = 'x'") == []


async def test_more_than_a_page_of_nested_rows_is_refused_before_any_sql(api, seeded):
    comments = [{"body": "many"}] * 60
    body = await gql(
        api,
        "mutation($in: [PostCreateInput!]!) { createPosts(inputs: $in) { id } }",
        {"in": [{"title": "A", "content": "", "comments": comments}] * 2},  # 120 comments
        as_user=ALICE,
    )
    assert body["data"] is None
    error = body["errors"][0]
    assert error["extensions"]["code"] == "LIMIT_EXCEEDED"
    assert "`comments`: at most 100" in error["message"]
    assert await _fetch(seeded, "SELECT 1 FROM comments WHERE body = 'many'") == []


async def test_a_statement_per_level_then_the_answer(seeded):
    query = (
        'mutation { createPost(input: {title: "T", content: "", comments: [{body: "x"}, '
        '{body: "y"}]}) { title comments { totalCount } } }'
    )
    body, statements = await statements_for(seeded, query, as_user=ALICE)
    assert body["data"]["createPost"] == {"title": "T", "comments": {"totalCount": 2}}
    ours = [s for s in statements if '"posts"' in s or '"comments"' in s]  # not asyncpg's own
    assert [re.findall(r'INSERT INTO "(\w+)"', s) for s in ours[:2]] == [["posts"], ["comments"]]
    assert len(ours) == 3 and ours[2].startswith("SELECT json_build_object")
    assert "BEGIN" in statements and "COMMIT" in statements  # one transaction
    # without nested rows a create stays one statement, its answer in its RETURNING
    body, statements = await statements_for(
        seeded, 'mutation { createPost(input: {title: "U", content: ""}) { title } }', as_user=ALICE
    )
    ours = [s for s in statements if '"posts"' in s]
    assert len(ours) == 1 and ours[0].startswith('INSERT INTO "posts"') and "RETURNING" in ours[0]


async def test_the_schema_names_them_by_parent_and_relation(api):
    body = await gql(
        api,
        '{ __type(name: "PostCommentsCreateInput") { inputFields { name } } '
        'post: __type(name: "PostCreateInput") '
        "{ inputFields { name type { ofType { ofType { name } } } } } }",
    )
    # the comment's postId comes from the post
    assert body["data"]["__type"]["inputFields"] == [{"name": "body"}]
    fields = {f["name"]: f for f in body["data"]["post"]["inputFields"]}
    assert fields["comments"]["type"]["ofType"]["ofType"]["name"] == "PostCommentsCreateInput"
