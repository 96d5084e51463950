"""API roles may be taken by the service; users are read through a view that hides others' emails

The service connects as the migrating role and, per transaction, switches to `anon` or
`authenticated` (SET LOCAL ROLE), so that role must be a member of both. Users are read through
`public.visible_users`: a security-barrier view owned by the migrating role, so it works also
where the API roles may not read `auth.users` at all (Supabase), without changing auth's objects.
A user's email shows only to that user; ids and creation times show to everyone.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        DO $$
        BEGIN
            IF NOT pg_has_role(current_user, 'anon', 'MEMBER') THEN
                EXECUTE format('GRANT anon TO %I', current_user);
            END IF;
            IF NOT pg_has_role(current_user, 'authenticated', 'MEMBER') THEN
                EXECUTE format('GRANT authenticated TO %I', current_user);
            END IF;
            -- auth.uid() is called by policies and column defaults as the API roles.
            IF NOT has_schema_privilege('anon', 'auth', 'USAGE') THEN
                GRANT USAGE ON SCHEMA auth TO anon;
            END IF;
            IF NOT has_schema_privilege('authenticated', 'auth', 'USAGE') THEN
                GRANT USAGE ON SCHEMA auth TO authenticated;
            END IF;
        END
        $$
        """
    )
    op.execute(
        """
        CREATE VIEW public.visible_users WITH (security_barrier) AS
        SELECT
            id,
            CASE WHEN id = (SELECT auth.uid()) THEN email END AS email,
            created_at
        FROM auth.users
        """
    )
    op.execute("REVOKE ALL ON public.visible_users FROM PUBLIC")
    op.execute("GRANT SELECT ON public.visible_users TO anon, authenticated")


def downgrade() -> None:
    op.execute("DROP VIEW public.visible_users")
    # Role memberships and schema usage stay: other databases of the cluster may rely on them.
