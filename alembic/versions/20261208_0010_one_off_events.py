"""One-off events: an application puts an event in the log for a time of its choosing

`events.schedule_event(trigger_name, at, payload)` asks for one event of a trigger (a webhook
of EVENT_WEBHOOKS) at `at`, carrying `payload`: a reminder an hour after a post is written, a
trial's end. It returns the event's id; `events.cancel_event(id)` takes it back while it is
not delivered. Called from the application's own SQL (a mutation function, a trigger), inside
the caller's transaction: a write rolled back schedules nothing. Only the owner may call them:
grant EXECUTE to an API role, or call them from a SECURITY DEFINER function that decides who
may ask for what.

One-off events keep their time in `one_off_at`, not in `scheduled_for`, whose unique index
keeps one event per time of a cron schedule; any number of one-off events may share a time.
0009's code (a rolling deploy) still writes and reads its events as before.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ROW_CHANGE = "(table_schema IS NOT NULL AND table_name IS NOT NULL AND operation IS NOT NULL)"


def upgrade() -> None:
    op.execute("ALTER TABLE events.event_log ADD COLUMN one_off_at timestamptz")
    op.execute("ALTER TABLE events.event_log ADD COLUMN payload jsonb")
    op.execute("ALTER TABLE events.event_log DROP CONSTRAINT event_log_row_change_or_scheduled")
    # each event is exactly one of: a row change, a cron schedule's time, a one-off event
    op.execute(
        f"""
        ALTER TABLE events.event_log ADD CONSTRAINT event_log_one_kind CHECK (
            num_nulls(table_schema, table_name, operation) IN (0, 3)
            AND {_ROW_CHANGE}::int + (scheduled_for IS NOT NULL)::int
                + (one_off_at IS NOT NULL)::int = 1
        )
        """
    )
    op.execute(
        """
        CREATE FUNCTION events.schedule_event(
            trigger_name text, at timestamptz, payload jsonb DEFAULT NULL
        ) RETURNS bigint
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
        DECLARE
            new_id bigint;
        BEGIN
            IF schedule_event.trigger_name IS NULL OR schedule_event.at IS NULL THEN
                RAISE EXCEPTION 'events.schedule_event needs a trigger name and a time'
                    USING ERRCODE = 'null_value_not_allowed';
            END IF;
            INSERT INTO events.event_log (trigger_name, one_off_at, next_try_at, payload, claims)
            VALUES (
                schedule_event.trigger_name, schedule_event.at, schedule_event.at,
                schedule_event.payload,
                -- who asked, when asked within a request (as events.capture() records)
                nullif(current_setting('request.jwt.claims', true), '')::jsonb
            )
            RETURNING id INTO new_id;
            -- wakes the deliverers at commit, for an event due now
            PERFORM pg_notify('events', schedule_event.trigger_name);
            RETURN new_id;
        END
        $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION events.cancel_event(event_id bigint) RETURNS boolean
        LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
            WITH cancelled AS (
                DELETE FROM events.event_log
                WHERE id = cancel_event.event_id AND one_off_at IS NOT NULL
                  AND delivered_at IS NULL
                RETURNING id
            )
            SELECT EXISTS (SELECT FROM cancelled)
        $$
        """
    )
    for function in ("schedule_event(text, timestamptz, jsonb)", "cancel_event(bigint)"):
        op.execute(f"REVOKE ALL ON FUNCTION events.{function} FROM PUBLIC")


def downgrade() -> None:
    # One-off events have no place in 0009's log: those still waiting are lost.
    op.execute("DROP FUNCTION events.cancel_event(bigint)")
    op.execute("DROP FUNCTION events.schedule_event(text, timestamptz, jsonb)")
    op.execute("DELETE FROM events.event_log WHERE one_off_at IS NOT NULL")
    op.execute("ALTER TABLE events.event_log DROP CONSTRAINT event_log_one_kind")
    op.execute(
        f"""
        ALTER TABLE events.event_log ADD CONSTRAINT event_log_row_change_or_scheduled CHECK (
            (scheduled_for IS NULL) = {_ROW_CHANGE}
        )
        """
    )
    op.execute("ALTER TABLE events.event_log DROP COLUMN payload")
    op.execute("ALTER TABLE events.event_log DROP COLUMN one_off_at")
