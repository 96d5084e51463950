"""Tokens: what verifies, what is a 401, and keys from a JWKS file or URL (with rotation)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from service.settings import DEFAULT_JWT_SECRET
from tests.support import RunningService

VIEWER = {"query": "{ viewer { id } }"}
USER = "a0000000-0000-0000-0000-000000000001"


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"sub": USER, "role": "authenticated", "aud": "authenticated", "exp": now + 300}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


async def viewer(http, token: str | None, scheme: str = "Bearer"):
    headers = {"authorization": f"{scheme} {token}".strip()} if token is not None else {}
    return await http.post("/graphql", json=VIEWER, headers=headers)


@pytest.fixture
async def user_db(database):
    import asyncpg

    connection = await asyncpg.connect(**database.asyncpg_kwargs())
    await connection.execute(f"INSERT INTO auth.users (id, email) VALUES ('{USER}', 'a@x')")
    await connection.close()
    return database


async def test_a_valid_hs256_token_is_the_user_and_no_token_is_anonymous(user_db):
    async with RunningService(user_db) as http:
        signed = jwt.encode(claims(), DEFAULT_JWT_SECRET, algorithm="HS256")
        assert (await viewer(http, signed)).json() == {"data": {"viewer": {"id": USER}}}
        assert (await viewer(http, None)).json() == {"data": {"viewer": None}}


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(
            jwt.encode(claims(), "another-secret-of-enough-length-123", "HS256"), id="forged"
        ),
        pytest.param(
            jwt.encode(claims(exp=int(time.time()) - 3600), DEFAULT_JWT_SECRET, "HS256"),
            id="expired",
        ),
        pytest.param(
            jwt.encode(claims(nbf=int(time.time()) + 3600), DEFAULT_JWT_SECRET, "HS256"),
            id="not-yet-valid",
        ),
        pytest.param(jwt.encode(claims(aud="someone-else"), DEFAULT_JWT_SECRET, "HS256"), id="aud"),
        pytest.param(jwt.encode(claims(exp=None), DEFAULT_JWT_SECRET, "HS256"), id="no-exp"),
        pytest.param(
            jwt.encode(claims(sub="alice"), DEFAULT_JWT_SECRET, "HS256"), id="sub-not-uuid"
        ),
        pytest.param(
            jwt.encode(claims(role="service_role"), DEFAULT_JWT_SECRET, "HS256"), id="role"
        ),
        pytest.param(jwt.encode(claims(), None, algorithm="none"), id="alg-none"),
        pytest.param("garbage", id="garbage"),
        pytest.param("", id="empty"),
    ],
)
async def test_bad_tokens_are_401_with_no_data(user_db, token):
    async with RunningService(user_db) as http:
        response = await viewer(http, token)
        assert response.status_code == 401
        body = response.json()
        assert "data" not in body
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert response.headers["www-authenticate"].startswith("Bearer")


async def test_a_wrong_scheme_is_401(user_db):
    async with RunningService(user_db) as http:
        signed = jwt.encode(claims(), DEFAULT_JWT_SECRET, algorithm="HS256")
        assert (await viewer(http, signed, scheme="Basic")).status_code == 401


async def test_supabase_anon_key_without_subject_is_anonymous(user_db):
    anon_key = jwt.encode(claims(sub=None, role="anon", aud=None), DEFAULT_JWT_SECRET, "HS256")
    async with RunningService(user_db, jwt_audience=None) as http:
        assert (await viewer(http, anon_key)).json() == {"data": {"viewer": None}}


def _jwk(key: Any, kid: str, alg: str) -> dict[str, Any]:
    algorithm = jwt.algorithms.RSAAlgorithm if alg.startswith("RS") else jwt.algorithms.ECAlgorithm
    jwk = json.loads(algorithm.to_jwk(key.public_key()))
    jwk.update(kid=kid, alg=alg, use="sig")
    return jwk


def _sign(key: Any, kid: str, alg: str, **overrides: Any) -> str:
    return jwt.encode(claims(**overrides), key, algorithm=alg, headers={"kid": kid})


@pytest.fixture(scope="module")
def rsa_key() -> Any:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


async def test_rs256_and_es256_tokens_verify_with_a_jwks_file(user_db, rsa_key, tmp_path: Path):
    ec_key = ec.generate_private_key(ec.SECP256R1())
    jwks = tmp_path / "jwks.json"
    jwks.write_text(
        json.dumps({"keys": [_jwk(rsa_key, "r1", "RS256"), _jwk(ec_key, "e1", "ES256")]})
    )
    async with RunningService(user_db, jwt_jwks_file=jwks) as http:
        for token in (_sign(rsa_key, "r1", "RS256"), _sign(ec_key, "e1", "ES256")):
            assert (await viewer(http, token)).json() == {"data": {"viewer": {"id": USER}}}
        # the development secret no longer opens the door once keys are configured
        hs = jwt.encode(claims(), DEFAULT_JWT_SECRET, algorithm="HS256")
        assert (await viewer(http, hs)).status_code == 401
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        assert (await viewer(http, _sign(other, "r1", "RS256"))).status_code == 401


class _JwksServer:
    """A JWKS endpoint on 127.0.0.1 whose key set the test can change (key rotation)."""

    def __init__(self) -> None:
        self.document = b'{"keys": []}'
        self.fetches = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.fetches += 1
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(outer.document)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/.well-known/jwks.json"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def set_keys(self, *jwks: dict[str, Any]) -> None:
        self.document = json.dumps({"keys": list(jwks)}).encode()


@pytest.fixture
def jwks_server() -> Iterator[_JwksServer]:
    server = _JwksServer()
    server.thread.start()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()


async def test_keys_from_a_jwks_url_are_cached_and_a_new_kid_is_picked_up(
    user_db, rsa_key, jwks_server
):
    jwks_server.set_keys(_jwk(rsa_key, "old", "RS256"))
    async with RunningService(user_db, jwt_jwks_url=jwks_server.url) as http:
        for _ in range(3):
            response = await viewer(http, _sign(rsa_key, "old", "RS256"))
            assert response.json() == {"data": {"viewer": {"id": USER}}}
        assert jwks_server.fetches == 1

        new_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwks_server.set_keys(_jwk(rsa_key, "old", "RS256"), _jwk(new_key, "new", "RS256"))
        time.sleep(1.1)  # refetches are rate-limited to one a second
        rotated = await viewer(http, _sign(new_key, "new", "RS256"))
        assert rotated.json() == {"data": {"viewer": {"id": USER}}}
        assert jwks_server.fetches == 2
        unknown = await viewer(http, _sign(new_key, "never-published", "RS256"))
        assert unknown.status_code == 401


async def test_a_token_that_verified_before_is_refused_once_it_expires(user_db):
    async with RunningService(user_db, jwt_leeway_seconds=0) as http:
        short = jwt.encode(claims(exp=int(time.time()) + 2), DEFAULT_JWT_SECRET, "HS256")
        assert (await viewer(http, short)).json() == {"data": {"viewer": {"id": USER}}}
        time.sleep(2.5)
        assert (await viewer(http, short)).status_code == 401


ISSUER = "https://id.example.com/"


async def test_with_jwt_issuer_only_tokens_naming_that_issuer_verify(user_db):
    async with RunningService(user_db, jwt_issuer=ISSUER) as http:
        named = jwt.encode(claims(iss=ISSUER), DEFAULT_JWT_SECRET, "HS256")
        assert (await viewer(http, named)).json() == {"data": {"viewer": {"id": USER}}}
        for overrides, problem in (
            ({"iss": "https://other.example.com/"}, "token issuer not accepted"),
            ({}, "token has no `iss` claim"),
        ):
            token = jwt.encode(claims(**overrides), DEFAULT_JWT_SECRET, "HS256")
            response = await viewer(http, token)
            assert response.status_code == 401
            assert response.json()["errors"][0]["message"] == problem


def namespaced(role: Any) -> dict[str, Any]:
    """Claims naming the role as Auth0 does: under a namespaced key (whose name has dots)."""
    return claims(role=None, **{"https://app.example.com/claims": {"role": role}})


async def test_the_role_is_read_where_jwt_role_claim_points(user_db, monkeypatch):
    # A JSON list of keys, as a key with dots needs; read from the environment as deployed.
    monkeypatch.setenv("JWT_ROLE_CLAIM", '["https://app.example.com/claims", "role"]')
    async with RunningService(user_db) as http:

        async def status_and_viewer(token_claims: dict[str, Any]) -> tuple[int, Any]:
            response = await viewer(http, jwt.encode(token_claims, DEFAULT_JWT_SECRET, "HS256"))
            return response.status_code, response.json().get("data")

        assert await status_and_viewer(namespaced("authenticated")) == (
            200,
            {"viewer": {"id": USER}},
        )
        # the role read there must be allowed; the top-level `role` is not read any more
        assert (await status_and_viewer(namespaced("service_role")))[0] == 401
        top_level = {**namespaced("authenticated"), "role": "service_role"}
        assert await status_and_viewer(top_level) == (200, {"viewer": {"id": USER}})
        assert (await status_and_viewer(namespaced(["authenticated"])))[0] == 401


async def test_a_dotted_role_claim_names_nested_claims(user_db):
    nested = jwt.encode(
        claims(role=None, app_metadata={"role": "service_role"}), DEFAULT_JWT_SECRET, "HS256"
    )
    async with RunningService(user_db, jwt_role_claim="app_metadata.role") as http:
        assert (await viewer(http, nested)).status_code == 401  # a role not allowed
    async with RunningService(user_db) as http:  # by default `role`: absent, so authenticated
        response = await viewer(http, nested)
        assert response.json() == {"data": {"viewer": {"id": USER}}}
