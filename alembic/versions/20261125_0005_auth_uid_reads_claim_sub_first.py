"""auth.uid() reads the `request.jwt.claim.sub` setting first, as Supabase's does

The service sets `request.jwt.claim.sub` beside `request.jwt.claims` for each caller. Reading
it is a plain text setting; reading `sub` out of the claims parses JSON on every call, and Row
Level Security calls auth.uid() several times a statement (an insert's default, its check, the
policy of the post it references, the check of the returned row): 8% of a comment insert's
throughput in a pgbench A/B. Without the setting (another client of the database sets only the
claims) it reads the claims as before. Only the function migration 0001 created is changed: on
Supabase the platform's own auth.uid(), which already reads both, is left alone.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OURS = "created by service migration 0001"  # 0001's comment on the function it creates

CLAIM_SUB_FIRST = """
    SELECT nullif(
        coalesce(
            nullif(current_setting('request.jwt.claim.sub', true), ''),
            nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'
        ),
        ''
    )::uuid
"""

CLAIMS_ONLY = """
    SELECT nullif(
        nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub',
        ''
    )::uuid
"""


def _replace_ours(body: str) -> None:
    # CREATE OR REPLACE keeps the function's oid, so its comment (and 0001's downgrade) stay.
    op.execute(
        f"""
        DO $$
        BEGIN
            IF obj_description(to_regprocedure('auth.uid()'), 'pg_proc') = '{OURS}' THEN
                CREATE OR REPLACE FUNCTION auth.uid() RETURNS uuid
                LANGUAGE sql STABLE
                AS $fn${body}$fn$;
            END IF;
        END
        $$;
        """
    )


def upgrade() -> None:
    _replace_ours(CLAIM_SUB_FIRST)


def downgrade() -> None:
    _replace_ours(CLAIMS_ONLY)
