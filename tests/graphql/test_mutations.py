"""Writing through the generated API: inputs from the models' Create/Update classes.

Alice writes her own (even-numbered) posts here; who may write what is tested in tests/auth/.
"""

from __future__ import annotations

from tests.graphql.conftest import ALICE, gql, post_id

MINE = post_id(2)  # alice's


async def test_create_takes_the_author_from_the_token_and_defaults_from_the_model(api):
    body = await gql(
        api,
        'mutation { createPost(input: {title: "New", content: "Body"}) '
        "{ title published authorId author { id } } }",
        as_user=ALICE,
    )
    assert body["data"]["createPost"] == {
        "title": "New",
        "published": False,
        "authorId": ALICE,
        "author": {"id": ALICE},
    }


async def test_the_returned_row_reaches_its_relations(api):
    body = await gql(
        api,
        'mutation($post: UUID!) { createComment(input: {postId: $post, body: "Hi"}) '
        "{ body post { title author { id } } author { id } } }",
        {"post": MINE},
        as_user=ALICE,
    )
    assert body["data"]["createComment"] == {
        "body": "Hi",
        "post": {"title": "Post 02", "author": {"id": ALICE}},
        "author": {"id": ALICE},
    }


async def test_relations_of_the_written_row_read_the_rows_as_before_the_statement(api):
    # One statement: its sub-selects cannot see the row it inserts (the README says so).
    count = "{ post(id: $post) { comments { totalCount } } }"
    before = await gql(api, "query($post: UUID!) " + count, {"post": MINE}, as_user=ALICE)
    total = before["data"]["post"]["comments"]["totalCount"]
    body = await gql(
        api,
        'mutation($post: UUID!) { createComment(input: {postId: $post, body: "Hi"}) '
        "{ post { comments { totalCount } } } }",
        {"post": MINE},
        as_user=ALICE,
    )
    assert body["data"]["createComment"]["post"]["comments"]["totalCount"] == total
    after = await gql(api, "query($post: UUID!) " + count, {"post": MINE}, as_user=ALICE)
    assert after["data"]["post"]["comments"]["totalCount"] == total + 1


async def test_update_changes_only_given_fields_and_touches_updated_at(api):
    body = await gql(
        api,
        'mutation($id: UUID!) { updatePost(id: $id, input: {title: "Renamed"}) '
        "{ title content published updatedAt } }",
        {"id": MINE},
        as_user=ALICE,
    )
    post = body["data"]["updatePost"]
    assert post["title"] == "Renamed"
    assert post["content"] == "Content of post 2"
    assert post["published"] is True
    assert post["updatedAt"] > "2026-02-01T00:00:00+00:00"


async def test_update_of_a_missing_row_is_null(api):
    body = await gql(
        api,
        'mutation { updatePost(id: "10000000-0000-0000-0000-999999999999", input: {title: "x"}) '
        "{ id } }",
        as_user=ALICE,
    )
    assert body == {"data": {"updatePost": None}}


async def test_delete_returns_the_deleted_row_and_cascades_comments(api):
    mutation = "mutation($id: UUID!) { deletePost(id: $id) { title } }"
    body = await gql(api, mutation, {"id": MINE}, as_user=ALICE)
    assert body["data"]["deletePost"] == {"title": "Post 02"}
    left = await gql(api, f'{{ comments(filter: {{postId: {{eq: "{MINE}"}}}}) {{ totalCount }} }}')
    assert left["data"]["comments"]["totalCount"] == 0
    again = await gql(api, mutation, {"id": MINE}, as_user=ALICE)
    assert again["data"]["deletePost"] is None


async def test_a_title_over_255_characters_is_bad_user_input_naming_the_field(api):
    body = await gql(
        api,
        "mutation($id: UUID!, $t: String!) { updatePost(id: $id, input: {title: $t}) { id } }",
        {"id": MINE, "t": "x" * 256},
        as_user=ALICE,
    )
    error = body["errors"][0]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "title"}
    assert "title" in error["message"]
    unchanged = await gql(api, f'{{ post(id: "{MINE}") {{ title }} }}')
    assert unchanged["data"]["post"]["title"] == "Post 02"


async def test_null_for_a_required_column_is_bad_user_input(api):
    body = await gql(
        api,
        "mutation($id: UUID!) { updatePost(id: $id, input: {title: null}) { id } }",
        {"id": MINE},
        as_user=ALICE,
    )
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_a_comment_on_a_missing_post_is_refused_and_writes_nothing(api):
    body = await gql(
        api,
        'mutation { createComment(input: {postId: "10000000-0000-0000-0000-999999999999", '
        'body: "hi"}) { id } }',
        as_user=ALICE,
    )
    assert body["errors"][0]["extensions"]["code"] in ("BAD_USER_INPUT", "FORBIDDEN")
    assert "INSERT" not in str(body)


async def test_a_failing_field_rolls_back_the_whole_mutation(api):
    body = await gql(
        api,
        'mutation($id: UUID!) { a: updatePost(id: $id, input: {title: "First"}) { id } '
        'b: createComment(input: {postId: "10000000-0000-0000-0000-999999999999", body: "x"}) '
        "{ id } }",
        {"id": MINE},
        as_user=ALICE,
    )
    assert body["data"] is None
    assert body["errors"][0]["path"] == ["b"]
    unchanged = await gql(api, f'{{ post(id: "{MINE}") {{ title }} }}')
    assert unchanged["data"]["post"]["title"] == "Post 02"


async def test_an_input_object_variable_is_bound_not_planned_anew_for_each_value(seeded):
    # Apollo's usual shape: the whole input as one variable. Each request writes its own
    # values, and one plan serves them all (it used to be planned anew for every value).
    from tests.support import RunningService

    create = (
        "mutation Create($post: PostCreateInput!) { createPost(input: $post) { title published } }"
    )
    update = (
        "mutation Update($id: UUID!, $changes: PostUpdateInput!) "
        "{ updatePost(id: $id, input: $changes) { title published } }"
    )
    service = RunningService(seeded)
    async with service as http:
        for n in range(5):
            post = {"title": f"Made {n}", "content": "-", "published": n % 2 == 0}
            body = await gql(http, create, {"post": post}, as_user=ALICE)
            assert body["data"]["createPost"] == {"title": f"Made {n}", "published": n % 2 == 0}
        for changes in ({"title": "Renamed"}, {"published": False}, {"title": "Again"}):
            body = await gql(http, update, {"id": post_id(2), "changes": changes}, as_user=ALICE)
            assert body["data"]["updatePost"]["title"] == changes.get("title", "Renamed")
    plans = service.app.state.executor.plans.items  # (query, operation name, variables)
    assert [key[0].split("(")[0] for key in plans] == ["mutation Create", "mutation Update"]


CREATE_POSTS = """mutation($posts: [PostCreateInput!]!) {
  createPosts(inputs: $posts) { title published authorId author { id } }
}"""


async def test_create_many_writes_every_row_in_one_statement_in_the_inputs_order(seeded):
    from tests.support import RunningService

    posts = [
        {"title": "Bulk C", "content": "-"},
        {"title": "Bulk A", "content": "-", "published": True},
        {"title": "Bulk B", "content": "-"},
    ]
    statements: list[str] = []
    service = RunningService(seeded, db_pool_size=1)  # one connection: all it runs
    async with service as http:
        async with service.app.state.pools.primary.acquire() as connection:
            connection.add_query_logger(lambda record: statements.append(record.query))
        body = await gql(http, CREATE_POSTS, {"posts": posts}, as_user=ALICE)
        assert "errors" not in body, (body, statements)
        assert body["data"]["createPosts"] == [
            {"title": t, "published": p, "authorId": ALICE, "author": {"id": ALICE}}
            for t, p in (("Bulk C", False), ("Bulk A", True), ("Bulk B", False))
        ]
        writes = [s for s in statements if "INSERT" in s]
        assert len(writes) == 1 and len(statements) <= 2, statements  # (+ the caller's settings)
        # written, and visible to their author
        count = await gql(
            http, '{ posts(filter: {title: {startsWith: "Bulk"}}) { totalCount } }', as_user=ALICE
        )
        assert count["data"]["posts"]["totalCount"] == 3
        empty = await gql(http, CREATE_POSTS, {"posts": []}, as_user=ALICE)
        assert empty == {"data": {"createPosts": []}}


async def test_create_many_refuses_all_when_one_row_is_bad(api):
    posts = [{"title": "Fine", "content": "-"}, {"title": "x" * 256, "content": "-"}]
    body = await gql(api, CREATE_POSTS, {"posts": posts}, as_user=ALICE)
    error = body["errors"][0]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "title"}
    assert error["message"].startswith("inputs[1]: ")
    assert body["data"] is None
    count = await gql(api, '{ posts(filter: {title: {eq: "Fine"}}) { totalCount } }')
    assert count["data"]["posts"]["totalCount"] == 0

    too_many = [{"title": f"P{n}", "content": "-"} for n in range(101)]
    body = await gql(api, CREATE_POSTS, {"posts": too_many}, as_user=ALICE)
    assert body["errors"][0]["extensions"]["code"] == "LIMIT_EXCEEDED"

    # anonymous callers may not write posts: Row Level Security refuses the whole statement
    body = await gql(api, CREATE_POSTS, {"posts": posts[:1]})
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert body["data"] is None


async def test_update_and_delete_many_change_the_callers_matching_rows(api):
    # Alice authors the even-numbered posts, Bob the odd ones; all are published.
    unpublish = """mutation($f: PostFilter!) {
      updatePosts(filter: $f, input: {published: false}) { id title published }
    }"""
    mine = {"title": {"in": ["Post 02", "Post 03", "Post 04"]}}
    body = await gql(api, unpublish, {"f": mine}, as_user=ALICE)
    # Post 03 is Bob's: his row matches the filter but is not Alice's to change
    assert body["data"]["updatePosts"] == [
        {"id": post_id(2), "title": "Post 02", "published": False},
        {"id": post_id(4), "title": "Post 04", "published": False},
    ]
    published = await gql(api, "{ posts(filter: {published: {eq: true}}) { totalCount } }")
    assert published["data"]["posts"]["totalCount"] == 23

    delete = (
        "mutation($f: PostFilter!) { deletePosts(filter: $f) { title comments { totalCount } } }"
    )
    body = await gql(api, delete, {"f": {"published": {"eq": False}}}, as_user=ALICE)
    assert body["data"]["deletePosts"] == [
        {"title": "Post 02", "comments": {"totalCount": 3}},  # as they were before the delete
        {"title": "Post 04", "comments": {"totalCount": 3}},
    ]
    left = await gql(api, "{ posts { totalCount } }", as_user=ALICE)
    assert left["data"]["posts"]["totalCount"] == 23
    nothing = await gql(api, delete, {"f": {"title": {"eq": "no such post"}}}, as_user=ALICE)
    assert nothing == {"data": {"deletePosts": []}}


async def test_more_matching_rows_than_a_page_change_nothing(seeded):
    from tests.support import RunningService

    async with RunningService(seeded, max_page_size=5, default_page_size=5) as http:
        # Alice may change 12 of the 25 posts: more than 5
        body = await gql(
            http,
            'mutation { updatePosts(filter: {}, input: {content: "bulk"}) { id } }',
            as_user=ALICE,
        )
        assert body["errors"][0]["extensions"]["code"] == "LIMIT_EXCEEDED"
        assert "12 rows" in body["errors"][0]["message"]
        assert body["data"] is None
        changed = await gql(
            http, '{ posts(filter: {content: {eq: "bulk"}}) { totalCount } }', as_user=ALICE
        )
        assert changed["data"]["posts"]["totalCount"] == 0
        # anonymous callers change nothing at all
        anonymous = await gql(http, "mutation { deletePosts(filter: {}) { id } }")
        assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
