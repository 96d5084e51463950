"""X-Explain: a developer sees the SQL behind an operation and PostgreSQL's plan for it, as the
caller ran it (row-level security in the plan), in the response's `extensions.explain`."""

from __future__ import annotations

import json
import re
from typing import Any

import asyncpg
import httpx

from service.db.url import DatabaseURL
from tests.graphql.conftest import ALICE
from tests.support import RunningService, token_for

Q2 = """{ posts(first: 5) { nodes { title author { email }
          comments(first: 2) { nodes { body author { email } } } } } }"""


async def explained(
    http: httpx.AsyncClient, payload: Any, explain: str | None, *, as_user: str | None = ALICE
) -> httpx.Response:
    headers = {"authorization": f"Bearer {token_for(as_user)}"} if as_user else {}
    if explain is not None:
        headers["x-explain"] = explain
    return await http.post("/graphql", json=payload, headers=headers)


async def test_a_query_shows_its_one_statement_and_the_plan_row_level_security_shaped(api):
    plain = await explained(api, {"query": Q2}, None)
    assert "extensions" not in plain.json()

    response = await explained(api, {"query": Q2}, "on")
    assert response.status_code == 200
    body = response.json()
    assert body["data"] == plain.json()["data"]  # the answer is the same
    [statement] = body["extensions"]["explain"]  # one statement for the whole operation
    assert statement["sql"].startswith("SELECT")
    assert "FROM posts" in statement["sql"] or '"posts"' in statement["sql"]
    plan = statement["plan"]
    assert "Scan" in plan and "cost=" in plan
    # The query asks for no `published` filter: the posts_read policy put it there, which it
    # does only for the caller's role, not for the table's owner.
    assert "published" in plan
    assert "actual time" not in plan  # `on` plans; it does not run the statement again


async def test_analyze_shows_the_plan_as_it_ran(api):
    response = await explained(api, {"query": "{ posts { totalCount } }"}, "analyze")
    assert response.json()["data"] == {"posts": {"totalCount": 25}}
    [statement] = response.json()["extensions"]["explain"]
    assert "actual time" in statement["plan"]
    assert "Execution Time" in statement["plan"]


async def test_a_mutation_shows_its_statements_and_writes_once(api, seeded: DatabaseURL):
    create = {"query": 'mutation { createPost(input: {title: "Explained", content: "-"}) { id } }'}
    response = await explained(api, create, "analyze")  # ANALYZE would write again: not for writes
    body = response.json()
    assert body["data"]["createPost"]["id"]
    [statement] = body["extensions"]["explain"]
    assert "INSERT INTO" in statement["sql"]
    assert "Insert on posts" in statement["plan"]
    assert "actual time" not in statement["plan"]
    connection = await asyncpg.connect(**seeded.asyncpg_kwargs())
    try:
        count = await connection.fetchval("SELECT count(*) FROM posts WHERE title = 'Explained'")
    finally:
        await connection.close()
    assert count == 1


async def test_a_nested_create_shows_each_of_its_statements(api):
    create = {
        "query": """mutation { createPost(input: {title: "With comments", content: "-",
                      comments: [{body: "one"}, {body: "two"}]}) { comments { totalCount } } }"""
    }
    body = (await explained(api, create, "on")).json()
    assert body["data"] == {"createPost": {"comments": {"totalCount": 2}}}
    statements = body["extensions"]["explain"]
    # the post, its comments, then the answer read back: each with its plan
    assert [s["sql"].split()[0] for s in statements].count("SELECT") >= 1
    assert any("Insert on posts" in s["plan"] for s in statements)
    assert any("Insert on comments" in s["plan"] for s in statements)


async def test_each_request_of_a_batch_has_its_own_plans(api):
    batch = [{"query": "{ posts(first: 1) { nodes { id } } }"}, {"query": "{ __typename }"}]
    first, second = (await explained(api, batch, "on")).json()
    assert len(first["extensions"]["explain"]) == 1
    assert second == {"data": {"__typename": "Query"}, "extensions": {"explain": []}}


async def test_an_unknown_mode_is_a_bad_request(api):
    response = await explained(api, {"query": Q2}, "verbose")
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "X-Explain" in error["message"]


async def test_production_ignores_the_header_unless_allowed(seeded: DatabaseURL):
    production = {
        "environment": "production",
        "jwt_secret": "a-production-secret-of-at-least-32-bytes!",
    }
    async with RunningService(seeded, **production) as http:
        response = await explained(http, {"query": Q2}, "on", as_user=None)
        assert response.status_code == 200
        assert "extensions" not in response.json()
        assert len(response.json()["data"]["posts"]["nodes"]) == 5
    async with RunningService(seeded, **production, allow_explain=True) as http:
        response = await explained(http, {"query": Q2}, "on", as_user=None)
        assert len(response.json()["extensions"]["explain"]) == 1


async def test_graphiql_has_its_sql_panel_only_where_explain_is_allowed(seeded: DatabaseURL):
    # The panel itself is driven in a browser by tests/http/test_graphiql_browser.py.
    for allowed in (True, False):
        async with RunningService(seeded, allow_explain=allowed) as http:
            page = await http.get("/graphql", headers={"accept": "text/html"})
            block = re.search(
                r'<script type="application/json" id="graphiql-config">(.*?)<', page.text
            )
            assert block is not None, page.text[:300]
            assert json.loads(block.group(1))["explain"] is allowed
