"""`service create-tables`: a throwaway database the API works on, the same as a migrated one."""

from __future__ import annotations

import subprocess

import asyncpg
import httpx
import pytest

from service.db.create_tables import create_tables
from service.db.url import DatabaseURL
from service.errors import StartupError
from tests.served import served
from tests.support import execute_sql, run_service, token_for

ALICE = "00000000-0000-0000-0000-0000000000a1"


def run_create_tables(url: DatabaseURL) -> subprocess.CompletedProcess[str]:
    return run_service("create-tables", DATABASE_URL=url.sqlalchemy)


async def test_on_an_empty_database_then_service_serve_answers_with_its_policies(
    empty_database: DatabaseURL,
) -> None:
    result = run_create_tables(empty_database)
    assert result.returncode == 0, result.stderr
    assert "created auth.users, posts, comments" in result.stderr
    await execute_sql(
        empty_database,
        f"INSERT INTO auth.users (id, email) VALUES ('{ALICE}', 'alice@example.com');"
        "INSERT INTO posts (title, content, published, author_id) VALUES "
        f"('Public', 'x', true, '{ALICE}'), ('Draft', 'x', false, '{ALICE}')",
    )
    query = (
        "{ posts(orderBy: [{title: ASC}]) { nodes { title author { id email } } } "
        "viewer { email } }"
    )
    create = 'mutation { createPost(input: {title: "New", content: "y"}) { authorId published } }'
    alice = {"authorization": f"Bearer {token_for(ALICE)}"}
    # `service serve` migrates first: the stamp tells it there is nothing to do.
    with served(empty_database) as base:
        async with httpx.AsyncClient(base_url=base) as http:
            anonymous = (await http.post("/graphql", json={"query": query})).json()
            as_alice = (await http.post("/graphql", json={"query": query}, headers=alice)).json()
            created = (await http.post("/graphql", json={"query": create}, headers=alice)).json()
    # Row Level Security and the users view: anonymous callers see published posts, no emails.
    assert anonymous == {
        "data": {
            "posts": {"nodes": [{"title": "Public", "author": {"id": ALICE, "email": None}}]},
            "viewer": None,
        }
    }
    titles = [node["title"] for node in as_alice["data"]["posts"]["nodes"]]
    assert titles == ["Draft", "Public"]
    assert as_alice["data"]["viewer"] == {"email": "alice@example.com"}
    # The author comes from the token (auth.uid() as the column default), the rest from the model.
    assert created == {"data": {"createPost": {"authorId": ALICE, "published": False}}}


def test_refuses_a_database_that_alembic_manages_in_one_line(database: DatabaseURL) -> None:
    result = run_create_tables(database)
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Alembic manages it" in lines[0] and "service migrate" in lines[0]


async def test_refuses_a_database_that_already_has_the_tables(empty_database: DatabaseURL) -> None:
    await create_tables(empty_database)
    await execute_sql(empty_database, "DROP TABLE alembic_version")
    with pytest.raises(StartupError, match="already has posts, comments"):
        await create_tables(empty_database)


# What a database is made of, as lines of text: columns, constraints, indexes, Row Level
# Security and policies, privileges, views and functions of schemas public and auth.
DESCRIBE = r"""
WITH rel AS (
    SELECT n.nspname || '.' || c.relname AS name, c.*
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname IN ('public', 'auth') AND c.relname NOT LIKE 'alembic_version%'
)
SELECT 'column ' || table_schema || '.' || table_name || '.' || column_name || ' '
    || data_type || coalesce('(' || character_maximum_length || ')', '') || ' '
    || is_nullable || ' default ' || coalesce(column_default, '-')
FROM information_schema.columns
WHERE table_schema IN ('public', 'auth') AND table_name <> 'alembic_version'
UNION ALL
SELECT 'constraint ' || rel.name || ' ' || pg_get_constraintdef(con.oid)
FROM pg_constraint con JOIN rel ON rel.oid = con.conrelid
UNION ALL
SELECT 'index ' || indexdef FROM pg_indexes
WHERE schemaname IN ('public', 'auth') AND tablename <> 'alembic_version'
UNION ALL
SELECT 'relation ' || name || ' kind=' || relkind::text || ' rls=' || relrowsecurity
    || ' force=' || relforcerowsecurity || ' options=' || coalesce(reloptions::text, '-')
    || ' acl=' || coalesce(relacl::text, '-')
FROM rel WHERE relkind IN ('r', 'v', 'p')
UNION ALL
SELECT 'policy ' || schemaname || '.' || tablename || '.' || policyname || ' ' || permissive
    || ' ' || roles::text || ' ' || cmd || ' using ' || coalesce(qual, '-')
    || ' check ' || coalesce(with_check, '-')
FROM pg_policies WHERE schemaname IN ('public', 'auth')
UNION ALL
SELECT 'view ' || schemaname || '.' || viewname || ' ' || definition
FROM pg_views WHERE schemaname IN ('public', 'auth')
UNION ALL
SELECT 'function ' || n.nspname || '.' || p.proname || '(' || pg_get_function_arguments(p.oid)
    || ') ' || pg_get_function_result(p.oid) || ' ' || p.provolatile::text || ' '
    || regexp_replace(trim(p.prosrc), '\s+', ' ', 'g') || ' acl=' || coalesce(p.proacl::text, '-')
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname IN ('public', 'auth')
UNION ALL
SELECT 'schema ' || nspname || ' acl=' || coalesce(nspacl::text, '-')
FROM pg_namespace WHERE nspname IN ('public', 'auth')
"""


async def describe(url: DatabaseURL) -> set[str]:
    connection = await asyncpg.connect(**url.asyncpg_kwargs())
    try:
        return {row[0] for row in await connection.fetch(DESCRIBE)}
    finally:
        await connection.close()


async def test_makes_the_same_database_as_the_migrations(
    database: DatabaseURL, empty_database: DatabaseURL
) -> None:
    await create_tables(empty_database)
    migrated, created = await describe(database), await describe(empty_database)
    assert any(line.startswith("policy public.posts.posts_read") for line in migrated)
    if migrated != created:
        missing = "\n".join(f"  - {line}" for line in sorted(migrated - created))
        extra = "\n".join(f"  + {line}" for line in sorted(created - migrated))
        pytest.fail(
            "`service create-tables` and the migrations make different databases: bring "
            "service/db/create_tables.py in line with alembic/versions.\n"
            f"only migrated:\n{missing}\nonly created:\n{extra}",
            pytrace=False,
        )
