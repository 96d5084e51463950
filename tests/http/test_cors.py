"""CORS: a frontend on another origin may call the API when its origin is configured."""

from __future__ import annotations

from service.db.url import DatabaseURL
from service.settings import Settings
from tests.support import RunningService, token_for

APP = "https://app.example"
USER = "00000000-0000-0000-0000-0000000000c0"
PREFLIGHT = {
    "origin": APP,
    "access-control-request-method": "POST",
    "access-control-request-headers": "authorization, content-type",
}


async def test_a_configured_origin_gets_its_preflight_and_reads_the_answer(database: DatabaseURL):
    async with RunningService(database, cors_origins=[APP, "https://admin.example"]) as http:
        preflight = await http.options("/graphql", headers=PREFLIGHT)
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == APP
        allowed = preflight.headers["access-control-allow-headers"].lower()
        assert "authorization" in allowed and "content-type" in allowed
        # in development a frontend's developer may ask for plans (X-Explain) from the page
        assert "x-explain" in allowed
        assert "POST" in preflight.headers["access-control-allow-methods"]
        assert "access-control-allow-credentials" not in preflight.headers  # tokens, no cookies

        answer = await http.post(
            "/graphql",
            json={"query": "{ viewer { id } }"},
            headers={"origin": APP, "authorization": f"Bearer {token_for(USER)}"},
        )
        assert answer.status_code == 200
        assert answer.headers["access-control-allow-origin"] == APP
        # the frontend may read the request id, to quote it in a bug report
        assert "x-request-id" in answer.headers["access-control-expose-headers"].lower()

        # a refusal is readable too: the browser shows the 401, not a CORS failure
        refused = await http.post(
            "/graphql",
            json={"query": "{ viewer { id } }"},
            headers={"origin": APP, "authorization": "Bearer not-a-token"},
        )
        assert refused.status_code == 401
        assert refused.headers["access-control-allow-origin"] == APP


async def test_an_origin_not_configured_gets_no_permission(database: DatabaseURL):
    async with RunningService(database, cors_origins=[APP]) as http:
        other = {**PREFLIGHT, "origin": "https://evil.example"}
        preflight = await http.options("/graphql", headers=other)
        assert preflight.status_code == 400
        assert "access-control-allow-origin" not in preflight.headers
        answer = await http.post(
            "/graphql", json={"query": "{ __typename }"}, headers={"origin": other["origin"]}
        )
        assert "access-control-allow-origin" not in answer.headers


async def test_without_configured_origins_there_are_no_cors_headers(database: DatabaseURL):
    async with RunningService(database) as http:
        preflight = await http.options("/graphql", headers=PREFLIGHT)
        assert preflight.status_code == 405  # no CORS: OPTIONS is just a method /graphql lacks
        answer = await http.post(
            "/graphql", json={"query": "{ __typename }"}, headers={"origin": APP}
        )
        assert answer.status_code == 200
        assert not [h for h in answer.headers if h.startswith("access-control-")]


async def test_any_origin_with_a_star(database: DatabaseURL):
    async with RunningService(database, cors_origins=["*"]) as http:
        answer = await http.post(
            "/graphql", json={"query": "{ __typename }"}, headers={"origin": "https://x.example"}
        )
        assert answer.headers["access-control-allow-origin"] == "*"


def test_origins_are_read_from_a_comma_separated_list_or_json(monkeypatch):
    expected = [APP, "https://admin.example"]
    for text in (f"{APP}, https://admin.example", f'["{APP}", "https://admin.example"]'):
        monkeypatch.setenv("CORS_ORIGINS", text)
        assert Settings(_env_file=None).cors_origins == expected  # type: ignore[call-arg]
    monkeypatch.setenv("CORS_ORIGINS", "")
    assert Settings(_env_file=None).cors_origins == []  # type: ignore[call-arg]


async def test_with_a_read_replica_a_frontend_may_send_the_read_after_cookie(
    database: DatabaseURL,
):
    # The read-your-writes cookie (README "Read replicas") reaches the service from another
    # origin only as a credentialed request, which the browser makes only when allowed.
    read_url = database.sqlalchemy  # the primary itself: what matters here is the setting
    async with RunningService(database, cors_origins=[APP], database_read_url=read_url) as http:
        preflight = await http.options("/graphql", headers=PREFLIGHT)
        assert preflight.headers["access-control-allow-origin"] == APP
        assert preflight.headers["access-control-allow-credentials"] == "true"
