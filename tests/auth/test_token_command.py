"""`service token`: a development token for a user, and the refusals around it."""

from __future__ import annotations

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
