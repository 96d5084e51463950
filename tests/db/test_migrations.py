"""Alembic from the project root, as the docs describe: up, down, check, with data kept."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import asyncpg
import pytest

from service.db.url import DatabaseURL
from tests.support import ROOT, execute_sql, fetch_sql, service_env


def alembic(url: DatabaseURL, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "alembic", *args],
        cwd=ROOT,
        env=service_env(DATABASE_URL=url.sqlalchemy),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result


def tables(url: DatabaseURL) -> set[str]:
    rows = asyncio.run(
        fetch_sql(
            url,
            "SELECT schemaname || '.' || tablename AS name FROM pg_tables "
            "WHERE schemaname IN ('public', 'auth')",
        )
    )
    return {r["name"] for r in rows}


def test_upgrade_head_creates_the_schema_and_downgrade_base_removes_it(empty_database):
    alembic(empty_database, "upgrade", "head")
    assert {"auth.users", "public.posts", "public.comments"} <= tables(empty_database)
    alembic(empty_database, "downgrade", "base")
    assert tables(empty_database) == {"public.alembic_version"}
    alembic(empty_database, "upgrade", "head")
    assert {"auth.users", "public.posts", "public.comments"} <= tables(empty_database)


def test_stepping_down_and_up_keeps_rows(empty_database):
    alembic(empty_database, "upgrade", "head")
    asyncio.run(
        execute_sql(
            empty_database,
            "INSERT INTO auth.users (id, email) VALUES "
            "('00000000-0000-0000-0000-00000000000a', 'kept@example.com');"
            "INSERT INTO posts (title, content, published, author_id) VALUES "
            "('Kept', '', true, '00000000-0000-0000-0000-00000000000a')",
        )
    )
    alembic(empty_database, "downgrade", "-1")
    alembic(empty_database, "upgrade", "+1")
    rows = asyncio.run(fetch_sql(empty_database, "SELECT title FROM posts"))
    assert [r["title"] for r in rows] == ["Kept"]
    alembic(empty_database, "downgrade", "0001")
    assert "public.posts" not in tables(empty_database)
    rows = asyncio.run(fetch_sql(empty_database, "SELECT email FROM auth.users"))
    assert [r["email"] for r in rows] == ["kept@example.com"]
    alembic(empty_database, "upgrade", "head")
    assert "public.posts" in tables(empty_database)


def test_models_and_migrations_agree(database):
    # `alembic check` fails when autogenerate would write a revision.
    result = alembic(database, "check")
    assert "No new upgrade operations detected" in result.stdout + result.stderr


def test_rls_is_on_with_policies_for_posts_and_comments(database):
    rows = asyncio.run(
        fetch_sql(
            database,
            "SELECT relname, relrowsecurity FROM pg_class WHERE relname IN ('posts', 'comments')",
        )
    )
    assert {r["relname"]: r["relrowsecurity"] for r in rows} == {"posts": True, "comments": True}
    policies = asyncio.run(fetch_sql(database, "SELECT tablename, cmd FROM pg_policies"))
    assert {(p["tablename"], p["cmd"]) for p in policies} >= {
        ("posts", "SELECT"),
        ("posts", "INSERT"),
        ("comments", "SELECT"),
        ("comments", "INSERT"),
    }


def test_auth_uid_reads_claim_sub_first_then_the_claims(database):
    a, b = "a0000000-0000-0000-0000-00000000000a", "b0000000-0000-0000-0000-00000000000b"

    async def uid(claims: str, sub: str) -> str | None:
        connection = await asyncpg.connect(**database.asyncpg_kwargs())
        try:
            await connection.execute(
                "SELECT set_config('request.jwt.claims', $1, false), "
                "set_config('request.jwt.claim.sub', $2, false)",
                claims,
                sub,
            )
            value = await connection.fetchval("SELECT auth.uid()")
            return None if value is None else str(value)
        finally:
            await connection.close()

    claims_a = f'{{"sub": "{a}"}}'
    assert asyncio.run(uid(claims_a, b)) == b  # the service sets both: the plain one wins
    assert asyncio.run(uid(claims_a, "")) == a  # a client that sets only the claims
    assert asyncio.run(uid("", "")) is None  # anonymous: both empty on a pooled connection
    assert asyncio.run(uid('{"role": "anon"}', "")) is None


def test_existing_auth_objects_are_left_alone(empty_database):
    # Supabase's layout: auth.users with more columns, auth.uid() and the roles exist already.
    asyncio.run(
        execute_sql(
            empty_database,
            """
            CREATE SCHEMA auth;
            CREATE TABLE auth.users (
                id uuid PRIMARY KEY, email varchar(255), created_at timestamptz DEFAULT now(),
                phone text
            );
            CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE
                AS $$ SELECT '00000000-0000-0000-0000-000000000001'::uuid $$;
            """,
        )
    )
    alembic(empty_database, "upgrade", "head")
    alembic(empty_database, "downgrade", "base")
    rows = asyncio.run(
        fetch_sql(
            empty_database,
            "SELECT auth.uid() AS uid, (SELECT count(*) FROM information_schema.columns "
            "WHERE table_schema = 'auth' AND table_name = 'users') AS columns",
        )
    )
    assert str(rows[0]["uid"]) == "00000000-0000-0000-0000-000000000001"
    assert rows[0]["columns"] == 4


def test_the_functions_the_models_name_are_checked_by_name_in_their_schema(database):
    from service.db.startup import check_functions
    from service.errors import StartupError
    from service.graphql.catalog import SqlFunction

    present = [
        SqlFunction(None, "search_posts", "Post.__query_functions__"),  # on the search path
        SqlFunction("auth", "uid", "a test"),
    ]
    asyncio.run(check_functions(database, present, connect_timeout=5))
    missing = [
        SqlFunction("public", "posts_word_count", "Post.__computed_columns__"),
        SqlFunction("auth", "search_posts", "User.__query_functions__"),  # another schema's
    ]
    with pytest.raises(StartupError) as raised:
        asyncio.run(check_functions(database, present + missing, connect_timeout=5))
    assert str(raised.value) == (
        "the database has no function posts_word_count (Post.__computed_columns__), "
        "search_posts (User.__query_functions__): the models name it, so a migration must "
        "create it"
    )
