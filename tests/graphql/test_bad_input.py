"""Bad cursors, ids, enum values and page sizes are BAD_USER_INPUT, however they arrive.

Literals are refused by validation, variables by coercion, tokens the client holds (cursors,
node ids) by the service; a value that only PostgreSQL can judge is still the client's error.
No case may be a 500, leak SQL, or return data. Null and empty arguments are not errors.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx

from tests.graphql.conftest import gql, post_id


def b64(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return base64.b64encode(text.encode()).decode()


async def assert_bad(http: httpx.AsyncClient, query: str, variables: dict[str, Any]) -> None:
    response = await http.post("/graphql", json={"query": query, "variables": variables})
    assert response.status_code in (200, 400), (query, variables, response.text)
    body = response.json()
    assert body.get("data") is None, (query, variables, body)
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"], (
        query,
        variables,
        body,
    )
    assert "SELECT" not in response.text and "Traceback" not in response.text


async def signature(http: httpx.AsyncClient, order: str) -> str:
    """The ordering's signature inside a real cursor: forged cursors below differ in one way."""
    body = await gql(
        http, f"{{ posts(first: 1, orderBy: {order}) {{ pageInfo {{ endCursor }} }} }}"
    )
    cursor = body["data"]["posts"]["pageInfo"]["endCursor"]
    first: str = json.loads(base64.b64decode(cursor))[0]
    return first


async def test_invalid_cursors_are_bad_user_input_wherever_they_are_used(api):
    by_date = await signature(api, "[{createdAt: DESC}]")
    by_published = await signature(api, "[{published: ASC}]")
    by_title = await signature(api, "[{title: ASC}]")
    cursors = [
        "not base64!",
        b64("not json"),
        b64({"a": 1}),
        b64([]),
        b64([by_title, "Post 01", post_id(1)]),  # another ordering's cursor
        b64([by_date, "2026-02-01T00:00:00+00:00"]),  # too few values
        b64([by_date, "2026-02-01T00:00:00+00:00", post_id(1), "extra"]),
        b64([by_date, "2026-02-01T00:00:00+00:00", "not-a-uuid"]),
        b64([by_date, "yesterday", post_id(1)]),
        b64([by_date, None, post_id(1)]),  # createdAt is never null
        b64([by_date, {"x": 1}, post_id(1)]),
    ]
    shapes = [
        "query($c: String) { posts(first: 2, after: $c, orderBy: [{createdAt: DESC}]) "
        "{ nodes { id } } }",
        "query($c: String) { posts(last: 2, before: $c, orderBy: [{createdAt: DESC}]) "
        "{ edges { cursor } pageInfo { hasNextPage hasPreviousPage } } }",
        "query($c: String) { posts(after: $c, orderBy: [{createdAt: DESC}]) { totalCount } }",
        "query($c: String) { users { nodes { posts(after: $c, orderBy: [{createdAt: DESC}]) "
        "{ nodes { id } } } } }",
    ]
    for shape in shapes:
        for cursor in cursors:
            await assert_bad(api, shape, {"c": cursor})
    # a boolean sort key that only PostgreSQL can read
    await assert_bad(
        api,
        "query($c: String) { posts(after: $c, orderBy: [{published: ASC}]) { nodes { id } } }",
        {"c": b64([by_published, "maybe", post_id(1)])},
    )


async def test_invalid_uuids_are_bad_user_input(api):
    cases: list[tuple[str, dict[str, Any]]] = [
        ('{ post(id: "nope") { id } }', {}),
        ("query($id: UUID!) { post(id: $id) { id } }", {"id": "nope"}),
        ('{ posts(filter: {id: {eq: "nope"}}) { totalCount } }', {}),
        ("query($v: UUID) { posts(filter: {authorId: {eq: $v}}) { totalCount } }", {"v": "x"}),
        ("query($v: [UUID!]) { posts(filter: {id: {in: $v}}) { totalCount } }", {"v": ["x"]}),
        (
            "query($f: PostFilter) { posts(filter: $f) { totalCount } }",
            {"f": {"id": {"nin": [post_id(1), "x"]}}},
        ),
        (
            'mutation($p: UUID!) { createComment(input: {postId: $p, body: "hi"}) { id } }',
            {"p": "x"},
        ),
        ('mutation { deletePost(id: "x") { id } }', {}),
        ("query($n: ID!) { node(nodeId: $n) { nodeId } }", {"n": b64("Post:not-a-uuid")}),
        ("query($n: ID!) { node(nodeId: $n) { nodeId } }", {"n": b64(f"Nope:{post_id(1)}")}),
        ("query($n: ID!) { node(nodeId: $n) { nodeId } }", {"n": "%%%"}),
    ]
    for query, variables in cases:
        await assert_bad(api, query, variables)


async def test_invalid_enum_values_and_orderings_are_bad_user_input(api):
    cases: list[tuple[str, dict[str, Any]]] = [
        ("{ posts(orderBy: [{createdAt: UP}]) { totalCount } }", {}),
        ('{ posts(orderBy: [{createdAt: "DESC"}]) { totalCount } }', {}),
        ("{ posts(orderBy: [{nope: ASC}]) { totalCount } }", {}),
        ("{ posts(orderBy: [{createdAt: ASC, id: DESC}]) { totalCount } }", {}),
        ("{ posts(orderBy: [{}]) { totalCount } }", {}),
        (
            "query($o: [PostOrderBy!]) { posts(orderBy: $o) { totalCount } }",
            {"o": [{"createdAt": "SIDEWAYS"}]},
        ),
        (
            "query($o: [PostOrderBy!]) { posts(orderBy: $o) { totalCount } }",
            {"o": [{"createdAt": "ASC", "id": "DESC"}]},
        ),
        ("query($d: SortDirection!) { posts(orderBy: [{id: $d}]) { totalCount } }", {"d": "asc"}),
    ]
    for query, variables in cases:
        await assert_bad(api, query, variables)


async def test_invalid_page_sizes_are_bad_user_input(api):
    cases: list[tuple[str, dict[str, Any]]] = [
        ("query($n: Int) { posts(first: $n) { nodes { id } } }", {"n": 101}),
        ("query($n: Int) { posts(last: $n) { nodes { id } } }", {"n": 101}),
        ("query($n: Int) { posts(first: $n) { nodes { id } } }", {"n": -1}),
        ("query($n: Int) { posts(last: $n) { totalCount } }", {"n": -5}),
        ("query($n: Int) { posts(first: $n) { nodes { id } } }", {"n": "ten"}),
        ("query($n: Int) { posts(first: $n) { nodes { id } } }", {"n": 2.5}),
        ("query($n: Int) { posts(first: 1, last: $n) { nodes { id } } }", {"n": 1}),
        ("{ posts(first: 1) { nodes { comments(first: 1000) { nodes { id } } } } }", {}),
        ("{ users { nodes { posts(last: 101) { totalCount } } } }", {}),
        ("{ posts(first: 99999999999) { nodes { id } } }", {}),
    ]
    for query, variables in cases:
        await assert_bad(api, query, variables)


async def test_null_and_empty_arguments_place_no_condition(api):
    everything = {"data": {"posts": {"totalCount": 25}}}
    cases: list[tuple[str, dict[str, Any]]] = [
        ("query($f: PostFilter) { posts(filter: $f) { totalCount } }", {"f": None}),
        ("query($f: PostFilter) { posts(filter: $f) { totalCount } }", {}),
        ("query($o: [PostOrderBy!]) { posts(orderBy: $o) { totalCount } }", {"o": None}),
        ("query($o: [PostOrderBy!]) { posts(orderBy: $o) { totalCount } }", {"o": []}),
        ("{ posts(orderBy: []) { totalCount } }", {}),
        ("{ posts(filter: {}) { totalCount } }", {}),
        ("{ posts(filter: null) { totalCount } }", {}),
        ("{ posts(filter: {title: null}) { totalCount } }", {}),
        ("{ posts(filter: {title: {eq: null}}) { totalCount } }", {}),
        ("{ posts(filter: {not: null}) { totalCount } }", {}),
        ("{ posts(filter: {and: []}) { totalCount } }", {}),
        ("query($a: [PostFilter!]) { posts(filter: {and: $a}) { totalCount } }", {"a": []}),
        ("query($t: StringFilter) { posts(filter: {title: $t}) { totalCount } }", {"t": None}),
        ("query($n: Int) { posts(first: $n) { totalCount } }", {"n": None}),
    ]
    for query, variables in cases:
        assert await gql(api, query, variables) == everything, (query, variables)
    # an `or` of nothing matches nothing
    none = await gql(api, "{ posts(filter: {or: []}) { totalCount } }")
    assert none == {"data": {"posts": {"totalCount": 0}}}
