"""ENVIRONMENT=production: no GraphiQL, no introspection; the API itself still answers."""

from __future__ import annotations

import pytest

from service.db.url import DatabaseURL
from tests.support import RunningService

BROWSER = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
INTROSPECTION = "{ __schema { queryType { name } } }"


@pytest.fixture
def production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    # Production refuses the built-in development secret.
    monkeypatch.setenv("JWT_SECRET", "a-production-secret-of-at-least-32-bytes!")


async def test_production_serves_no_graphiql_and_refuses_introspection(
    production: None, database: DatabaseURL
) -> None:
    async with RunningService(database) as http:
        page = await http.get("/graphql", headers=BROWSER)
        assert page.status_code == 400
        assert "text/html" not in page.headers["content-type"]
        assert "<html" not in page.text.lower()
        assets = await http.get("/graphiql/assets/manifest.json")
        assert assets.status_code == 404

        for query in (INTROSPECTION, '{ __type(name: "Post") { name } }'):
            response = await http.post("/graphql", json={"query": query})
            assert response.status_code == 200
            body = response.json()
            assert "data" not in body
            assert body["errors"], body
            for error in body["errors"]:
                assert error["extensions"]["code"] == "BAD_USER_INPUT"
                assert "introspection has been disabled" in error["message"]

        # The API itself (and __typename, which clients add to every selection) still works.
        response = await http.post(
            "/graphql", json={"query": "{ __typename posts(first: 1) { totalCount } }"}
        )
        assert response.json() == {"data": {"__typename": "Query", "posts": {"totalCount": 0}}}


async def test_development_serves_graphiql_and_introspection(database: DatabaseURL) -> None:
    async with RunningService(database) as http:
        page = await http.get("/graphql", headers=BROWSER)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        response = await http.post("/graphql", json={"query": INTROSPECTION})
        assert response.json() == {"data": {"__schema": {"queryType": {"name": "Query"}}}}
