"""Writing through the generated API: inputs from the models' Create/Update classes."""

from __future__ import annotations

from tests.graphql.conftest import gql, post_id

ALICE = "00000000-0000-0000-0000-000000000001"


async def test_update_changes_only_given_fields_and_touches_updated_at(api):
    body = await gql(
        api,
        'mutation($id: UUID!) { updatePost(id: $id, input: {title: "Renamed"}) '
        "{ title content published updatedAt } }",
        {"id": post_id(1)},
    )
    post = body["data"]["updatePost"]
    assert post["title"] == "Renamed"
    assert post["content"] == "Content of post 1"
    assert post["published"] is True
    assert post["updatedAt"] > "2026-02-01T00:00:00+00:00"


async def test_update_of_a_missing_row_is_null(api):
    body = await gql(
        api,
        'mutation { updatePost(id: "10000000-0000-0000-0000-999999999999", input: {title: "x"}) '
        "{ id } }",
    )
    assert body == {"data": {"updatePost": None}}


async def test_delete_returns_the_deleted_row_and_cascades_comments(api):
    body = await gql(
        api,
        "mutation($id: UUID!) { deletePost(id: $id) { title } }",
        {"id": post_id(2)},
    )
    assert body["data"]["deletePost"] == {"title": "Post 02"}
    left = await gql(
        api,
        f'{{ comments(filter: {{postId: {{eq: "{post_id(2)}"}}}}) {{ totalCount }} }}',
    )
    assert left["data"]["comments"]["totalCount"] == 0
    again = await gql(
        api, "mutation($id: UUID!) { deletePost(id: $id) { id } }", {"id": post_id(2)}
    )
    assert again["data"]["deletePost"] is None


async def test_a_title_over_255_characters_is_bad_user_input_naming_the_field(api):
    body = await gql(
        api,
        "mutation($id: UUID!, $t: String!) { updatePost(id: $id, input: {title: $t}) { id } }",
        {"id": post_id(1), "t": "x" * 256},
    )
    error = body["errors"][0]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "title"}
    assert "title" in error["message"]
    unchanged = await gql(api, f'{{ post(id: "{post_id(1)}") {{ title }} }}')
    assert unchanged["data"]["post"]["title"] == "Post 01"


async def test_null_for_a_required_column_is_bad_user_input(api):
    body = await gql(
        api,
        "mutation($id: UUID!) { updatePost(id: $id, input: {title: null}) { id } }",
        {"id": post_id(1)},
    )
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_a_comment_on_a_missing_post_is_bad_user_input_and_writes_nothing(api):
    body = await gql(
        api,
        'mutation { createComment(input: {postId: "10000000-0000-0000-0000-999999999999", '
        'body: "hi"}) { id } }',
    )
    assert body["errors"][0]["extensions"]["code"] in ("BAD_USER_INPUT", "FORBIDDEN")
    assert "INSERT" not in str(body)


async def test_a_failing_field_rolls_back_the_whole_mutation(api):
    body = await gql(
        api,
        'mutation($id: UUID!) { a: updatePost(id: $id, input: {title: "First"}) { id } '
        'b: createComment(input: {postId: "10000000-0000-0000-0000-999999999999", body: "x"}) '
        "{ id } }",
        {"id": post_id(1)},
    )
    assert body["data"] is None
    assert body["errors"][0]["path"] == ["b"]
    unchanged = await gql(api, f'{{ post(id: "{post_id(1)}") {{ title }} }}')
    assert unchanged["data"]["post"]["title"] == "Post 01"
