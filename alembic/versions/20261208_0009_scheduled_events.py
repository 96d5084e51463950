"""Scheduled events: the event log also holds the events of cron schedules, not only row changes

An event of a schedule (EVENT_SCHEDULES, service/schedules.py) has no table, operation or row:
it is its schedule's name (`trigger_name`) and the time it is for (`scheduled_for`). Every
process of the service writes each time of each schedule; the unique index keeps one event a
time however many write it, so replicas need no leader.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE events.event_log ADD COLUMN scheduled_for timestamptz")
    for column in ("table_schema", "table_name", "operation"):
        op.execute(f"ALTER TABLE events.event_log ALTER COLUMN {column} DROP NOT NULL")
    op.execute(
        """
        ALTER TABLE events.event_log ADD CONSTRAINT event_log_row_change_or_scheduled CHECK (
            (scheduled_for IS NULL) = (table_schema IS NOT NULL AND table_name IS NOT NULL
                                       AND operation IS NOT NULL)
        )
        """
    )
    op.execute(
        """
        CREATE UNIQUE INDEX event_log_once_a_time ON events.event_log (trigger_name, scheduled_for)
        WHERE scheduled_for IS NOT NULL
        """
    )


def downgrade() -> None:
    # Scheduled events have no place in 0008's log: those still waiting are lost.
    op.execute("DELETE FROM events.event_log WHERE scheduled_for IS NOT NULL")
    op.execute("DROP INDEX events.event_log_once_a_time")
    op.execute("ALTER TABLE events.event_log DROP CONSTRAINT event_log_row_change_or_scheduled")
    for column in ("table_schema", "table_name", "operation"):
        op.execute(f"ALTER TABLE events.event_log ALTER COLUMN {column} SET NOT NULL")
    op.execute("ALTER TABLE events.event_log DROP COLUMN scheduled_for")
