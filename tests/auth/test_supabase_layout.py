"""On Supabase's layout (auth objects exist, auth.users closed to the API roles) it all holds."""

from __future__ import annotations

import asyncpg

from service.db.migrate import migrate
from tests.auth.conftest import ALICE, BOB
from tests.support import RunningService, token_for

SUPABASE_LIKE = f"""
DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'anon') THEN
        CREATE ROLE anon NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'authenticated') THEN
        CREATE ROLE authenticated NOLOGIN;
    END IF;
END $$;
CREATE SCHEMA auth;
GRANT USAGE ON SCHEMA auth TO anon, authenticated;
CREATE TABLE auth.users (
    instance_id uuid, id uuid PRIMARY KEY, aud varchar(255), role varchar(255),
    email varchar(255), encrypted_password varchar(255), created_at timestamptz DEFAULT now(),
    raw_user_meta_data jsonb
);
REVOKE ALL ON auth.users FROM anon, authenticated, PUBLIC;
CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS $fn$
    SELECT coalesce(
        nullif(current_setting('request.jwt.claim.sub', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
    )::uuid
$fn$;
INSERT INTO auth.users (id, email, encrypted_password) VALUES
    ('{ALICE}', 'alice@example.com', 'secret-hash'), ('{BOB}', 'bob@example.com', 'secret-hash');
"""


async def test_migrations_leave_supabase_auth_alone_and_emails_stay_private(empty_database):
    connection = await asyncpg.connect(**empty_database.asyncpg_kwargs())
    await connection.execute(SUPABASE_LIKE)
    before = await connection.fetchval("SELECT pg_get_functiondef('auth.uid()'::regprocedure)")
    await migrate(empty_database)
    after = await connection.fetchval("SELECT pg_get_functiondef('auth.uid()'::regprocedure)")
    assert before == after
    columns = await connection.fetchval(
        "SELECT count(*) FROM information_schema.columns "
        "WHERE table_schema = 'auth' AND table_name = 'users'"
    )
    assert columns == 8
    readable = await connection.fetchval(
        "SELECT has_table_privilege('authenticated', 'auth.users', 'SELECT')"
    )
    assert readable is False
    await connection.close()

    async with RunningService(empty_database) as http:
        headers = {"authorization": f"Bearer {token_for(ALICE)}"}
        created = await http.post(
            "/graphql",
            json={
                "query": 'mutation { createPost(input: {title: "t", content: "c", '
                "published: true}) { author { id email } } }"
            },
            headers=headers,
        )
        assert created.json() == {
            "data": {"createPost": {"author": {"id": ALICE, "email": "alice@example.com"}}}
        }
        users = await http.post(
            "/graphql",
            json={"query": "{ viewer { email } users { nodes { id email } } }"},
            headers={"authorization": f"Bearer {token_for(BOB)}"},
        )
        body = users.json()["data"]
        assert body["viewer"] == {"email": "bob@example.com"}
        assert {u["id"]: u["email"] for u in body["users"]["nodes"]} == {
            ALICE: None,
            BOB: "bob@example.com",
        }
        assert "secret-hash" not in users.text
