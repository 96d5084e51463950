"""Reading through the generated API: pages, cursors, order, filters, relations, lookups."""

from __future__ import annotations

import base64

from tests.graphql.conftest import ALICE, BOB, gql, post_id, statements_for
from tests.support import execute_sql

Q2 = """
query Q2 {
  posts(first: 20, orderBy: [{createdAt: DESC}, {id: DESC}]) {
    nodes {
      id title createdAt author { id }
      comments(first: 2, orderBy: [{createdAt: ASC}, {id: ASC}]) { nodes { body author { id } } }
    }
  }
}
"""


async def test_default_page_is_20_rows_in_primary_key_order(api):
    body = await gql(api, "{ posts { nodes { id } pageInfo { hasNextPage hasPreviousPage } } }")
    ids = [n["id"] for n in body["data"]["posts"]["nodes"]]
    assert ids == [post_id(i) for i in range(1, 21)]
    assert body["data"]["posts"]["pageInfo"] == {"hasNextPage": True, "hasPreviousPage": False}


async def test_second_page_starts_after_the_cursor_and_goes_back_with_before(api):
    query = """
    query($after: String, $before: String, $first: Int, $last: Int) {
      posts(first: $first, after: $after, last: $last, before: $before,
            orderBy: [{createdAt: DESC}]) {
        edges { cursor node { title } }
        pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
      }
    }"""
    first = (await gql(api, query, {"first": 10}))["data"]["posts"]
    second = (await gql(api, query, {"first": 10, "after": first["pageInfo"]["endCursor"]}))[
        "data"
    ]["posts"]
    titles = [e["node"]["title"] for e in first["edges"] + second["edges"]]
    # createdAt DESC with the id (ascending) as tie-breaker: posts 24,25 share an hour, etc.
    all_rows = (await gql(api, query, {"first": 25}))["data"]["posts"]["edges"]
    assert titles == [e["node"]["title"] for e in all_rows[:20]]
    assert second["pageInfo"]["hasPreviousPage"] is True
    assert second["pageInfo"]["hasNextPage"] is True

    back = (await gql(api, query, {"last": 10, "before": second["pageInfo"]["startCursor"]}))[
        "data"
    ]["posts"]
    assert [e["node"]["title"] for e in back["edges"]] == titles[:10]
    assert back["pageInfo"]["hasPreviousPage"] is False
    assert back["pageInfo"]["hasNextPage"] is True


async def test_nested_pages_are_per_parent(api):
    body = await gql(api, Q2)
    posts = body["data"]["posts"]["nodes"]
    assert len(posts) == 20
    assert all(len(p["comments"]["nodes"]) == 2 for p in posts)
    for p in posts:
        n = int(p["id"][-12:])
        assert [c["body"] for c in p["comments"]["nodes"]] == [
            f"Comment 3 on post {n}",
            f"Comment 2 on post {n}",
        ]


async def _statements_for_q2(seeded, **settings) -> list[str]:
    body, statements = await statements_for(seeded, Q2, **settings)
    assert len(body["data"]["posts"]["nodes"]) == 20
    return statements


async def test_a_q2_shaped_query_is_one_sql_statement_whatever_the_rows(seeded):
    # 20 posts, their authors, 2 comments each and their authors: one statement, and the
    # connection already holds the anonymous caller, so nothing else.
    statements = await _statements_for_q2(seeded)
    assert len(statements) == 1, statements


async def test_behind_a_transaction_pooler_the_caller_is_set_in_the_same_transaction(seeded):
    statements = await _statements_for_q2(seeded, database_pooler="pgbouncer")
    begin, *reads, commit = statements
    assert begin.startswith("BEGIN; SELECT set_config('role'")
    assert commit == "COMMIT"
    assert len(reads) == 1, reads


async def test_filters_combine_with_and_or_not(api):
    query = """
    { posts(filter: {
        or: [{title: {startsWith: "Post 1"}}, {title: {in: ["Post 21", "Post 22"]}}],
        not: {title: {eq: "Post 12"}},
        createdAt: {gte: "2026-02-01T03:00:00Z"}
      }, first: 50) { totalCount nodes { title } } }"""
    body = await gql(api, query)
    titles = sorted(n["title"] for n in body["data"]["posts"]["nodes"])
    expected = sorted(f"Post {i:02d}" for i in [*range(10, 20), 21, 22] if i // 2 >= 3 and i != 12)
    assert titles == expected
    assert body["data"]["posts"]["totalCount"] == len(expected)


async def test_is_null_and_string_operators(api):
    body = await gql(
        api,
        '{ a: posts(filter: {title: {ilike: "%post 0%"}}) { totalCount }'
        "  b: posts(filter: {title: {isNull: true}}) { totalCount }"
        "  c: users(filter: {email: {isNull: false}}) { totalCount } }",
        as_user=ALICE,
    )
    # Alice sees her own email only: others' read as null, in filters too.
    assert body["data"] == {"a": {"totalCount": 9}, "b": {"totalCount": 0}, "c": {"totalCount": 1}}


async def test_text_operators_match_the_text_as_given(api, seeded):
    # a search box's words: %, _ and the backslash are themselves, not pattern characters
    await execute_sql(
        seeded,
        "INSERT INTO posts (title, content, published, author_id) VALUES "
        f"('50% off_now', '', true, '{ALICE}'), ('off now', '', true, '{ALICE}'), "
        f"('C:\\temp', '', true, '{ALICE}')",
    )
    cases = {
        'includes: "ost 1"': 10,  # Post 10 to Post 19
        'includesInsensitive: "POST 2"': 6,
        'startsWithInsensitive: "post 0"': 9,
        'endsWith: "5"': 3,
        'endsWithInsensitive: "ST 25"': 1,
        'includes: "%"': 1,  # the sale, not every row
        'includes: "f_n"': 1,  # "off_now" only: as a pattern, _ would match "off now" too
        'endsWith: "\\\\temp"': 1,
        'like: "%"': 28,  # a pattern, for comparison
    }
    for operand, count in cases.items():
        body = await gql(api, f"{{ posts(filter: {{title: {{{operand}}}}}) {{ totalCount }} }}")
        assert body.get("data") == {"posts": {"totalCount": count}}, (operand, body)


async def test_lookup_by_id_node_id_and_typename_with_fragments(api):
    query = """
    query($id: UUID!) {
      post(id: $id) { __typename nodeId ...Basics author { email } }
    }
    fragment Basics on Post { title published }
    """
    body = await gql(api, query, {"id": post_id(3)})
    post = body["data"]["post"]
    assert post["__typename"] == "Post"
    assert post["title"] == "Post 03"
    node = await gql(
        api,
        "query($n: ID!) { node(nodeId: $n) { __typename ... on Post { title } "
        "... on Comment { body } } }",
        {"n": post["nodeId"]},
    )
    assert node["data"]["node"] == {"__typename": "Post", "title": "Post 03"}


async def test_aliases_skip_and_include(api):
    query = """
    query($yes: Boolean!) {
      first: post(id: "10000000-0000-0000-0000-000000000001") {
        t: title c: content @skip(if: $yes)
      }
      again: post(id: "10000000-0000-0000-0000-000000000002") { title @include(if: $yes) }
    }"""
    body = await gql(api, query, {"yes": True})
    assert body["data"] == {"first": {"t": "Post 01"}, "again": {"title": "Post 02"}}


async def test_missing_row_is_null(api):
    body = await gql(api, '{ post(id: "10000000-0000-0000-0000-999999999999") { id } }')
    assert body == {"data": {"post": None}}


async def test_timestamps_are_iso_8601_with_offset(api):
    body = await gql(api, f'{{ post(id: "{post_id(2)}") {{ createdAt }} }}')
    assert body["data"]["post"]["createdAt"] == "2026-02-01T01:00:00+00:00"


async def test_bad_input_is_bad_user_input(api):
    cases = [
        "{ posts(first: 101) { totalCount } }",
        "{ posts(first: -1) { totalCount } }",
        '{ posts(after: "not-a-cursor") { totalCount } }',
        "{ posts(first: 1, last: 1) { totalCount } }",
        '{ post(id: "not-a-uuid") { id } }',
        "{ posts(orderBy: [{createdAt: SIDEWAYS}]) { totalCount } }",
        '{ node(nodeId: "garbage") { nodeId } }',
        "{ posts { nope } }",
        "{ posts {",
    ]
    for query in cases:
        body = await gql(api, query)
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", (query, body)
        assert "SELECT" not in str(body)


async def test_a_cursor_from_another_order_is_refused(api):
    body = await gql(api, "{ posts(first: 1) { pageInfo { endCursor } } }")
    cursor = body["data"]["posts"]["pageInfo"]["endCursor"]
    refused = await gql(
        api,
        "query($c: String) { posts(after: $c, orderBy: [{title: ASC}]) { totalCount } }",
        {"c": cursor},
    )
    assert refused["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_a_direction_may_place_the_nulls(api):
    # emails are private: Alice sees hers, and Bob's as null
    query = """query($d: SortDirection!) { users(orderBy: [{email: $d}]) {
        nodes { id } pageInfo { endCursor } } }"""

    async def ids(direction: str) -> list[str]:
        body = await gql(api, query, {"d": direction}, as_user=ALICE)
        assert "errors" not in body, body
        return [n["id"] for n in body["data"]["users"]["nodes"]]

    alice_first, bob_first = [ALICE, BOB], [BOB, ALICE]
    assert await ids("ASC") == await ids("ASC_NULLS_LAST") == alice_first
    assert await ids("ASC_NULLS_FIRST") == bob_first
    assert await ids("DESC") == await ids("DESC_NULLS_FIRST") == bob_first
    assert await ids("DESC_NULLS_LAST") == alice_first
    # a cursor of one placement is refused by the other
    body = await gql(api, query, {"d": "ASC_NULLS_FIRST"}, as_user=ALICE)
    cursor = body["data"]["users"]["pageInfo"]["endCursor"]
    other = await gql(
        api,
        "query($c: String) { users(after: $c, orderBy: [{email: ASC}]) { totalCount } }",
        {"c": cursor},
        as_user=ALICE,
    )
    assert other["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_introspection_works_alongside_data(api):
    body = await gql(api, '{ __type(name: "Post") { name } posts(first: 1) { totalCount } }')
    assert body["data"] == {"__type": {"name": "Post"}, "posts": {"totalCount": 25}}


async def test_get_serves_queries_and_refuses_mutations(api):
    ok = await api.get("/graphql", params={"query": "{ posts(first: 1) { totalCount } }"})
    assert ok.json() == {"data": {"posts": {"totalCount": 25}}}
    refused = await api.get(
        "/graphql",
        params={
            "query": 'mutation { deletePost(id: "10000000-0000-0000-0000-000000000001") { id } }'
        },
    )
    assert refused.status_code == 405


async def test_graphql_response_media_type_gives_400_for_invalid_documents(api):
    response = await api.post(
        "/graphql",
        json={"query": "{ nope }"},
        headers={"accept": "application/graphql-response+json"},
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/graphql-response+json")


async def test_a_reference_asking_only_for_the_key_matches_the_referenced_row(api):
    # `author { id }` is answered from the foreign key (every user row is visible to everyone);
    # it must say exactly what reading the user would.
    body = await gql(
        api,
        "{ posts(first: 5) { nodes { authorId author { id nodeId __typename } "
        "full: author { id nodeId __typename createdAt } } } }",
    )
    for post in body["data"]["posts"]["nodes"]:
        author_id = post["authorId"]
        expected_node_id = base64.b64encode(f"User:{author_id}".encode()).decode()
        assert post["author"] == {"id": author_id, "nodeId": expected_node_id, "__typename": "User"}
        assert {k: v for k, v in post["full"].items() if k != "createdAt"} == post["author"]


async def test_variable_defaults_apply_when_the_variable_is_left_out(api):
    query = (
        "query($n: Int = 3, $after: String) { posts(first: $n, after: $after) { nodes { id } } }"
    )
    left_out = await gql(api, query)
    assert [n["id"] for n in left_out["data"]["posts"]["nodes"]] == [post_id(i) for i in (1, 2, 3)]
    given = await gql(api, query, {"n": 1, "after": None})
    assert [n["id"] for n in given["data"]["posts"]["nodes"]] == [post_id(1)]
    wrong = await gql(api, query, {"n": "three"})
    assert wrong["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "$n" in wrong["errors"][0]["message"]


async def test_each_page_size_variable_gets_its_own_page(api):
    # Page sizes are compiled into the statement: one cached plan must not serve another size.
    query = (
        "query($n: Int!) { posts(first: $n) { nodes { id } } comments(last: $n) { totalCount } }"
    )
    for n in (2, 3, 2, 0):
        body = await gql(api, query, {"n": n})
        assert len(body["data"]["posts"]["nodes"]) == n
    too_many = await gql(api, query, {"n": 101})
    assert too_many["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "`first` may be at most 100" in too_many["errors"][0]["message"]
