"""`service token`: a development token for a user, and the refusals around it."""

from __future__ import annotations

import jwt

from tests.support import RunningService, run_service


async def test_token_creates_the_user_once_and_the_token_signs_them_in(database):
    first = run_service("token", "--email", "new@example.com", DATABASE_URL=database.sqlalchemy)
    assert first.returncode == 0, first.stderr
    second = run_service("token", "--email", "new@example.com", DATABASE_URL=database.sqlalchemy)
    token = second.stdout.strip()
    async with RunningService(database) as http:
        body = (
            await http.post(
                "/graphql",
                json={"query": "{ viewer { email } users { totalCount } }"},
                headers={"authorization": f"Bearer {token}"},
            )
        ).json()
    assert body["data"] == {"viewer": {"email": "new@example.com"}, "users": {"totalCount": 1}}


def test_token_refuses_the_default_secret_outside_development(database):
    result = run_service(
        "token", "--email", "x@example.com", DATABASE_URL=database.sqlalchemy, ENVIRONMENT="test"
    )
    assert result.returncode != 0
    assert "JWT_SECRET" in result.stderr
    assert result.stdout == ""


def test_production_refuses_to_start_with_the_default_secret(database):
    result = run_service("serve", DATABASE_URL=database.sqlalchemy, ENVIRONMENT="production")
    assert result.returncode != 0
    assert "JWT_SECRET" in result.stderr
    assert "Traceback" not in result.stderr


async def test_tokens_it_signs_carry_the_issuer_and_the_role_where_the_service_reads_them(
    database,
):
    env = {
        "JWT_ISSUER": "https://id.example.com/",
        "JWT_ROLE_CLAIM": '["https://app.example.com/claims", "role"]',
    }
    made = run_service(
        "token", "--email", "who@example.com", DATABASE_URL=database.sqlalchemy, **env
    )
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["iss"] == "https://id.example.com/"
    assert claims["https://app.example.com/claims"] == {"role": "authenticated"}
    assert "role" not in claims
    overrides = {"jwt_issuer": env["JWT_ISSUER"], "jwt_role_claim": env["JWT_ROLE_CLAIM"]}
    async with RunningService(database, **overrides) as http:
        body = (
            await http.post(
                "/graphql",
                json={"query": "{ viewer { email } }"},
                headers={"authorization": f"Bearer {token}"},
            )
        ).json()
    assert body == {"data": {"viewer": {"email": "who@example.com"}}}


def test_a_role_claim_that_names_no_claim_is_a_settings_error():
    for value in ("[]", "app_metadata..role", '["app_metadata", 1]'):
        result = run_service("schema", JWT_ROLE_CLAIM=value)
        assert result.returncode == 2, (value, result.stderr)
        assert "must name a claim" in result.stderr, result.stderr
