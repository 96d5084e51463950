"""FEDERATION=true: the service as an Apollo Federation 2 subgraph.

A router reads the subgraph's SDL from `_service` and asks for the rows other subgraphs refer
to with `_entities(representations:)`: each `{__typename, <key>}` answered with its row, in
order, null where the caller sees none (RLS, as for every read), in one SQL statement.
A real gateway composing the service with another subgraph: tests/http/test_federation_gateway.py.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from graphql import parse

from tests.graphql.conftest import ALICE, BOB, add_drafts, gql, post_id, statements_for
from tests.support import RunningService, fetch_sql, run_service

ENTITIES = """
query Entities($representations: [_Any!]!) {
  _entities(representations: $representations) {
    __typename
    ... on Post { id title author { id } comments { totalCount } }
    ... on Comment { body post { title } }
    ... on User { id createdAt }
  }
}
"""


def comment_id(post: int, number: int) -> str:
    return f"20000000-0000-0000-{post:04d}-{number:012d}"


async def entities(url, representations: list[Any], *, as_user: str | None = None, **settings):
    async with RunningService(url, federation=True, **settings) as http:
        return await gql(http, ENTITIES, {"representations": representations}, as_user=as_user)


async def test_the_subgraph_sdl_links_federation_and_keys_every_model_by_its_primary_key(
    seeded,
):
    async with RunningService(seeded, federation=True) as http:
        body = await gql(http, "{ _service { sdl } }")
    sdl = body["data"]["_service"]["sdl"]
    parse(sdl)  # what a router parses
    assert (
        '@link(url: "https://specs.apollo.dev/federation/v2.0", import: ["@key", "@shareable"])'
        in sdl
    )
    assert "type PageInfo @shareable {" in sdl  # other subgraphs have one too
    for type_name in ("Post", "Comment", "User"):
        assert f'type {type_name} implements Node @key(fields: "id"' in sdl
    assert "union _Entity = Comment | Post | User" in sdl
    # `service schema` prints the same SDL, for `rover subgraph publish --schema`
    printed = run_service("schema", FEDERATION="true")
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.strip() == sdl.strip()


async def test_entities_answer_each_representation_in_its_place_in_one_statement(seeded):
    missing = str(uuid.uuid4())
    representations = [
        {"__typename": "Post", "id": post_id(2)},
        {"__typename": "User", "id": BOB},
        {"__typename": "Comment", "id": comment_id(3, 1)},
        {"__typename": "Post", "id": missing},  # no such row: null in its place
        {"__typename": "Post", "id": post_id(1), "title": "a router may send more fields"},
    ]
    body, statements = await statements_for(
        seeded, ENTITIES, {"representations": representations}, federation=True
    )
    assert "errors" not in body, body
    # From the seed (conftest.SEED): even posts are Alice's, 3 comments each.
    assert body["data"]["_entities"] == [
        {
            "__typename": "Post",
            "id": post_id(2),
            "title": "Post 02",
            "author": {"id": ALICE},
            "comments": {"totalCount": 3},
        },
        {"__typename": "User", "id": BOB, "createdAt": "2026-01-02T00:00:00+00:00"},
        {"__typename": "Comment", "body": "Comment 1 on post 3", "post": {"title": "Post 03"}},
        None,
        {
            "__typename": "Post",
            "id": post_id(1),
            "title": "Post 01",
            "author": {"id": BOB},
            "comments": {"totalCount": 3},
        },
    ]
    assert len(statements) == 1, statements


async def test_representations_written_in_the_query_work_like_variables(seeded):
    query = f"""{{ _entities(representations: [{{__typename: "Post", id: "{post_id(7)}"}}]) {{
        ... on Post {{ title }} }} }}"""
    async with RunningService(seeded, federation=True) as http:
        body = await gql(http, query)
    assert body == {"data": {"_entities": [{"title": "Post 07"}]}}


async def test_an_entity_the_caller_may_not_see_is_null(seeded):
    await add_drafts(seeded, BOB, "Bob's draft")
    [[draft]] = await fetch_sql(seeded, "SELECT id::text FROM posts WHERE title = 'Bob''s draft'")
    wanted = [{"__typename": "Post", "id": draft}]
    async with RunningService(seeded, federation=True) as http:
        for caller, seen in ((None, None), (ALICE, None), (BOB, {"title": "Bob's draft"})):
            query = (
                "query E($r: [_Any!]!) { _entities(representations: $r) { ... on Post { title } } }"
            )
            body = await gql(http, query, {"r": wanted}, as_user=caller)
            assert body == {"data": {"_entities": [seen]}}, caller


@pytest.mark.parametrize(
    ("representation", "message"),
    [
        ("Post", "representations[0] must be an object"),
        ({"id": BOB}, "representations[0]: __typename must name an entity of this subgraph"),
        ({"__typename": "PageInfo"}, "__typename must name an entity of this subgraph"),
        ({"__typename": "Post"}, "representations[0]: Post's key needs a valid 'id'"),
        ({"__typename": "Post", "id": "not-a-uuid"}, "Post's key needs a valid 'id'"),
        ({"__typename": "User", "id": {"eq": BOB}}, "User's key needs a valid 'id'"),
    ],
)
async def test_a_representation_that_names_no_row_of_ours_is_bad_user_input(
    seeded, representation, message
):
    body = await entities(seeded, [representation])
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert message in error["message"]
    assert body["data"] is None


async def test_representations_count_towards_the_rows_an_operation_may_return(seeded):
    # Each representation: its row and a page of one comment under it = 2 rows.
    query = """query E($r: [_Any!]!) { _entities(representations: $r) {
        ... on Post { comments(first: 1) { nodes { body } } } } }"""
    posts = [{"__typename": "Post", "id": post_id(i)} for i in range(1, 7)]
    async with RunningService(seeded, federation=True, max_query_rows=10) as http:
        allowed = await gql(http, query, {"r": posts[:5]})
        refused = await gql(http, query, {"r": posts})
    assert len(allowed["data"]["_entities"]) == 5
    [error] = refused["errors"]
    assert error["extensions"]["code"] == "LIMIT_EXCEEDED"
    assert "6 representations may return 12 rows; at most 10" in error["message"]


async def test_in_production_the_sdl_still_answers_but_introspection_does_not(seeded, monkeypatch):
    # A router composes from `_service` (Apollo Server's subgraphs answer it with
    # introspection off too); `__schema` stays closed.
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("JWT_SECRET", "a-production-secret-of-at-least-32-bytes!")
    async with RunningService(seeded, federation=True) as http:
        sdl = await gql(http, "{ _service { sdl } }")
        schema = await gql(http, "{ __schema { queryType { name } } }")
    assert "@key" in sdl["data"]["_service"]["sdl"]
    assert "introspection has been disabled" in schema["errors"][0]["message"]


async def test_without_federation_the_schema_has_no_federation_fields(api):
    for query in ("{ _service { sdl } }", "{ _entities(representations: []) { __typename } }"):
        body = await gql(api, query)
        [error] = body["errors"]
        assert "Cannot query field" in error["message"], body
