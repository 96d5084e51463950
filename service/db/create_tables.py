"""`service create-tables`: a throwaway database from the models, without running migrations.

The development shortcut of SQLModel's docs, `SQLModel.metadata.create_all`, plus what the API
needs around the tables and what autogenerate never sees: the API roles, schema `auth` and
`auth.uid()` (column defaults call it), Row Level Security with its policies, the grants, and the
view users are read through. These mirror alembic/versions; tests/db/test_create_tables.py fails
when the two make different databases.

Then it stamps the migrations' head, as Alembic's cookbook does after `create_all`, so that
`service serve` (which migrates first) and `/readyz` accept the database. With models ahead of
the migrations the tables are the models' (the point of the shortcut) and the stamp is not the
truth: such a database is for throwing away, never for `service migrate`. It refuses a database
that Alembic already manages, and one that already has the tables.
"""

from __future__ import annotations

import logging

from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlmodel import SQLModel

import service.models  # noqa: F401  (registers every table model on SQLModel.metadata)
from service.db.engine import create_engine
from service.db.migrate import schema_history
from service.db.url import DatabaseURL
from service.errors import StartupError

log = logging.getLogger("service.create_tables")

# Before the tables: what their defaults and the policies call. Each part only when missing, so
# a platform that has them (Supabase: roles, `auth`, `auth.users`, `auth.uid()`) keeps its own.
BEFORE_TABLES = """
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'anon') THEN
        CREATE ROLE anon NOLOGIN NOINHERIT;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'authenticated') THEN
        CREATE ROLE authenticated NOLOGIN NOINHERIT;
    END IF;
    -- The service switches to these roles per transaction (SET LOCAL ROLE).
    IF NOT pg_has_role(current_user, 'anon', 'MEMBER') THEN
        EXECUTE format('GRANT anon TO %I', current_user);
    END IF;
    IF NOT pg_has_role(current_user, 'authenticated', 'MEMBER') THEN
        EXECUTE format('GRANT authenticated TO %I', current_user);
    END IF;
    CREATE SCHEMA IF NOT EXISTS auth;
    IF NOT has_schema_privilege('anon', 'auth', 'USAGE') THEN
        GRANT USAGE ON SCHEMA auth TO anon;
    END IF;
    IF NOT has_schema_privilege('authenticated', 'auth', 'USAGE') THEN
        GRANT USAGE ON SCHEMA auth TO authenticated;
    END IF;
    IF to_regprocedure('auth.uid()') IS NULL THEN
        -- `sub` of the caller's verified token, set for each caller by the service (as
        -- migration 0005 leaves it: the `claim.sub` setting first, else the claims).
        CREATE FUNCTION auth.uid() RETURNS uuid
        LANGUAGE sql STABLE
        AS $fn$
            SELECT nullif(
                coalesce(
                    nullif(current_setting('request.jwt.claim.sub', true), ''),
                    nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'
                ),
                ''
            )::uuid
        $fn$;
    END IF;
END
$$
"""

# After the tables: who may see and change which row (API.md), and the grants. One statement
# each: asyncpg runs one per execute.
AFTER_TABLES = [
    "ALTER TABLE posts ENABLE ROW LEVEL SECURITY",
    "ALTER TABLE comments ENABLE ROW LEVEL SECURITY",
    """CREATE POLICY posts_read ON posts FOR SELECT
        USING (published OR (SELECT auth.uid()) = author_id)""",
    """CREATE POLICY posts_insert_own ON posts FOR INSERT TO authenticated
        WITH CHECK ((SELECT auth.uid()) = author_id)""",
    """CREATE POLICY posts_update_own ON posts FOR UPDATE TO authenticated
        USING ((SELECT auth.uid()) = author_id) WITH CHECK ((SELECT auth.uid()) = author_id)""",
    """CREATE POLICY posts_delete_own ON posts FOR DELETE TO authenticated
        USING ((SELECT auth.uid()) = author_id)""",
    """CREATE POLICY comments_read ON comments FOR SELECT
        USING (
            (SELECT auth.uid()) = author_id
            OR EXISTS (SELECT FROM posts WHERE posts.id = comments.post_id)
        )""",
    """CREATE POLICY comments_insert_own ON comments FOR INSERT TO authenticated
        WITH CHECK (
            (SELECT auth.uid()) = author_id
            AND EXISTS (SELECT FROM posts WHERE posts.id = comments.post_id)
        )""",
    """CREATE POLICY comments_update_own ON comments FOR UPDATE TO authenticated
        USING ((SELECT auth.uid()) = author_id) WITH CHECK ((SELECT auth.uid()) = author_id)""",
    """CREATE POLICY comments_delete_own ON comments FOR DELETE TO authenticated
        USING ((SELECT auth.uid()) = author_id)""",
    "GRANT USAGE ON SCHEMA public TO anon, authenticated",
    "GRANT SELECT ON posts, comments TO anon",
    "GRANT SELECT, INSERT, UPDATE, DELETE ON posts, comments TO authenticated",
    # Users are read through this view: a user's email shows only to that user.
    """CREATE VIEW public.visible_users WITH (security_barrier) AS
        SELECT
            id,
            CASE WHEN id = (SELECT auth.uid()) THEN email END AS email,
            created_at
        FROM auth.users""",
    "REVOKE ALL ON public.visible_users FROM PUBLIC",
    "GRANT SELECT ON public.visible_users TO anon, authenticated",
    # searchPosts(query:) (Post.__query_functions__), over the words create_all keeps per post
    """CREATE FUNCTION public.search_posts(query text) RETURNS SETOF public.posts
        LANGUAGE sql STABLE AS $$
            SELECT * FROM public.posts
            WHERE search_vector @@ websearch_to_tsquery('english'::regconfig, query)
        $$""",
    """CREATE FUNCTION public.posts_search_rank(post public.posts, query text) RETURNS real
        LANGUAGE sql STABLE AS $$
            SELECT ts_rank(post.search_vector, websearch_to_tsquery('english'::regconfig, query))
        $$""",
]

_ALEMBIC_TABLES = "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
_ALEMBIC_TABLES += "WHERE c.relname = 'alembic_version' AND c.relkind IN ('r', 'p')"


def _refuse_unless_fresh(connection: Connection, database: str) -> None:
    managed = connection.execute(text(_ALEMBIC_TABLES)).scalars().first()
    if managed is not None:
        raise StartupError(
            f"refusing to create tables in {database}: Alembic manages it "
            f"({managed}.alembic_version exists); use `service migrate`, or a new database "
            "for create-tables"
        )
    # auth.users may belong to the platform (Supabase); the service's own tables may not exist.
    ours = [t for t in SQLModel.metadata.sorted_tables if t.schema != "auth"]
    existing = [
        t.fullname
        for t in ours
        if connection.execute(text("SELECT to_regclass(:name)"), {"name": t.fullname}).scalar()
    ]
    if existing:
        raise StartupError(
            f"refusing to create tables in {database}: it already has {', '.join(existing)}; "
            "create-tables needs a database without them (create a new one or drop them)"
        )


def _create(connection: Connection, database: str) -> list[str]:
    _refuse_unless_fresh(connection, database)
    connection.exec_driver_sql(BEFORE_TABLES)
    SQLModel.metadata.create_all(connection)
    for statement in AFTER_TABLES:
        connection.exec_driver_sql(statement)
    MigrationContext.configure(connection).stamp(schema_history().script, "head")
    return [t.fullname for t in SQLModel.metadata.sorted_tables]


async def create_tables(url: DatabaseURL, *, connect_timeout: float = 5.0) -> list[str]:
    """Create the models' tables and what the API needs, in one transaction; the table names."""
    engine = create_engine(url, timeout=connect_timeout)
    try:
        async with engine.begin() as connection:
            tables = await connection.run_sync(_create, url.safe())
    except (OperationalError, DBAPIError, OSError) as error:
        original = getattr(error, "orig", None) or error
        first = (str(original).strip().splitlines() or [type(original).__name__])[0]
        raise StartupError(f"cannot create tables in {url.safe()}: {first}") from None
    finally:
        await engine.dispose()
    log.info(
        "created %s and their policies in %s, stamped at the migrations' head",
        ", ".join(tables),
        url.safe(),
    )
    return tables
