"""Event triggers: changes of rows recorded in the writing transaction, for webhooks

A trigger `AFTER INSERT OR UPDATE OR DELETE ON <table> FOR EACH ROW EXECUTE FUNCTION
events.capture('<name>')` (added by a later migration, per table and operation) writes each
change to `events.event_log` inside the write's own transaction: committed with it, or not at
all. The service delivers them to the webhook configured for `<name>` (EVENT_WEBHOOKS),
retrying until it answers 2xx (service/events.py). The schema is the migrating role's only:
the API roles cannot read or change the log, and `capture` runs as its owner (SECURITY
DEFINER) so that any caller's write is recorded, with the caller's claims.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("CREATE SCHEMA events")
    op.execute("REVOKE ALL ON SCHEMA events FROM PUBLIC")
    op.execute(
        """
        CREATE TABLE events.event_log (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            trigger_name text NOT NULL,
            table_schema text NOT NULL,
            table_name text NOT NULL,
            operation text NOT NULL,
            old jsonb,
            new jsonb,
            claims jsonb,
            created_at timestamptz NOT NULL DEFAULT now(),
            -- delivery: tried `tries` times; due (or leased until) next_try_at
            tries integer NOT NULL DEFAULT 0,
            next_try_at timestamptz NOT NULL DEFAULT now(),
            delivered_at timestamptz,
            given_up_at timestamptz,
            last_status integer,
            last_error text
        )
        """
    )
    op.execute(
        """
        CREATE INDEX event_log_due ON events.event_log (next_try_at, id)
        WHERE delivered_at IS NULL AND given_up_at IS NULL
        """
    )
    op.execute(
        """
        CREATE FUNCTION events.capture() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
        BEGIN
            INSERT INTO events.event_log
                (trigger_name, table_schema, table_name, operation, old, new, claims)
            VALUES (
                TG_ARGV[0], TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP,
                CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END,
                CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END,
                -- a pooled connection's reset claims read '' (not NULL)
                nullif(current_setting('request.jwt.claims', true), '')::jsonb
            );
            -- wakes the deliverers at commit (a rolled-back write notifies nobody)
            PERFORM pg_notify('events', TG_ARGV[0]);
            RETURN NULL;
        END
        $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION events.capture() FROM PUBLIC")


def downgrade() -> None:
    op.execute("DROP SCHEMA events CASCADE")
