"""auth schema, auth.users, auth.uid() and the API roles, each only when missing

On Supabase all of these exist already and are left alone. The schema and function this revision
creates carry a comment (the table does not: autogenerate would see it), so the downgrade removes
exactly what it made and nothing the platform owns. Roles are
cluster-wide (other databases may use them), so the downgrade keeps them.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MARK = "created by service migration 0001"


def upgrade() -> None:
    op.execute(
        f"""
        DO $$
        BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'anon') THEN
                CREATE ROLE anon NOLOGIN NOINHERIT;
            END IF;
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'authenticated') THEN
                CREATE ROLE authenticated NOLOGIN NOINHERIT;
            END IF;
            IF NOT EXISTS (SELECT FROM pg_namespace WHERE nspname = 'auth') THEN
                CREATE SCHEMA auth;
                COMMENT ON SCHEMA auth IS '{MARK}';
            END IF;
            IF to_regclass('auth.users') IS NULL THEN
                CREATE TABLE auth.users (
                    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
                    email varchar(255),
                    created_at timestamptz NOT NULL DEFAULT now()
                );
            END IF;
            IF to_regprocedure('auth.uid()') IS NULL THEN
                -- The caller's id: `sub` of the verified token, set per transaction by the
                -- service. An unset setting reads as '' on a pooled connection, hence nullif.
                CREATE FUNCTION auth.uid() RETURNS uuid
                LANGUAGE sql STABLE
                AS $fn$
                    SELECT nullif(
                        nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub',
                        ''
                    )::uuid
                $fn$;
                COMMENT ON FUNCTION auth.uid() IS '{MARK}';
            END IF;
        END
        $$;
        """
    )


def downgrade() -> None:
    op.execute(
        f"""
        DO $$
        BEGIN
            IF obj_description(to_regprocedure('auth.uid()'), 'pg_proc') = '{MARK}' THEN
                DROP FUNCTION auth.uid();
            END IF;
            -- A schema we created holds nothing but what we put there.
            IF obj_description(
                (SELECT oid FROM pg_namespace WHERE nspname = 'auth'), 'pg_namespace'
            ) = '{MARK}' THEN
                DROP TABLE IF EXISTS auth.users;
                DROP SCHEMA auth;
            END IF;
        END
        $$;
        """
    )
