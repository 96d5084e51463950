"""The event log as an operator sees it (`service events`): what waits and what was given up,
sending given-up events again, asking for a one-off event and taking it back
(service/events.py delivers them)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from service.db.url import DatabaseURL

CHANNEL = "events"  # what events.capture() notifies at commit (migration 0008)

_SUMMARY = """
SELECT trigger_name,
    count(*) FILTER (WHERE delivered_at IS NULL AND given_up_at IS NULL) AS waiting,
    count(*) FILTER (WHERE given_up_at IS NOT NULL) AS given_up,
    count(*) FILTER (WHERE delivered_at IS NOT NULL) AS delivered
FROM events.event_log
GROUP BY trigger_name
ORDER BY trigger_name
"""
_GIVEN_UP = """
SELECT id, trigger_name, operation, table_schema, table_name, scheduled_for, one_off_at,
    tries, last_error, given_up_at
FROM events.event_log
WHERE given_up_at IS NOT NULL AND ($1::text IS NULL OR trigger_name = $1)
ORDER BY given_up_at DESC, id DESC
LIMIT $2
"""
# Due now, with every try ahead of it again; the deliverers are woken at commit.
_SEND_AGAIN = """
UPDATE events.event_log
SET given_up_at = NULL, tries = 0, next_try_at = now()
WHERE given_up_at IS NOT NULL
  AND ($1::bigint[] IS NULL OR id = ANY($1))
  AND ($2::text IS NULL OR trigger_name = $2)
RETURNING id
"""


@dataclass(frozen=True)
class TriggerCounts:
    trigger: str
    waiting: int
    given_up: int
    delivered: int  # kept for EVENT_RETENTION_DAYS


@dataclass(frozen=True)
class GivenUp:
    id: int
    trigger: str
    # "INSERT public.comments", "scheduled for 2026-12-08T03:00:00+00:00" (a cron schedule's)
    # or "one-off for 2026-12-08T03:00:00+00:00"
    change: str
    tries: int
    last_error: str | None
    given_up_at: str


async def _connect(url: DatabaseURL, timeout: float) -> asyncpg.Connection:
    return await asyncpg.connect(**url.asyncpg_kwargs(), timeout=timeout)


async def read_log(
    url: DatabaseURL, *, trigger: str | None, limit: int, timeout: float
) -> tuple[list[TriggerCounts], list[GivenUp]]:
    """Each trigger's events by state, and the latest given-up events (of `trigger`)."""
    connection = await _connect(url, timeout)
    try:
        counts = [TriggerCounts(*row) for row in await connection.fetch(_SUMMARY)]
        given_up = [
            GivenUp(
                r["id"],
                r["trigger_name"],
                _change(r),
                r["tries"],
                r["last_error"],
                r["given_up_at"].isoformat(timespec="seconds"),
            )
            for r in await connection.fetch(_GIVEN_UP, trigger, limit)
        ]
    finally:
        await connection.close()
    return counts, given_up


def _change(event: asyncpg.Record) -> str:
    if event["one_off_at"] is not None:
        return f"one-off for {event['one_off_at'].isoformat()}"
    if event["scheduled_for"] is not None:
        return f"scheduled for {event['scheduled_for'].isoformat()}"
    return f"{event['operation']} {event['table_schema']}.{event['table_name']}"


async def send_again(
    url: DatabaseURL, *, ids: list[int] | None, trigger: str | None, timeout: float
) -> list[int]:
    """Given-up events (those of `ids`, of `trigger`, or all) made due again; their ids."""
    connection = await _connect(url, timeout)
    try:
        async with connection.transaction():
            again = [r["id"] for r in await connection.fetch(_SEND_AGAIN, ids, trigger)]
            if again:
                await connection.execute(f"NOTIFY {CHANNEL}")
    finally:
        await connection.close()
    return sorted(again)


async def schedule(
    url: DatabaseURL, *, trigger: str, at: datetime, payload: str | None, timeout: float
) -> int:
    """A one-off event of `trigger` at `at` carrying `payload` (JSON text); its id."""
    connection = await _connect(url, timeout)
    try:
        event_id: int = await connection.fetchval(
            "SELECT events.schedule_event($1, $2, $3::jsonb)", trigger, at, payload
        )
    finally:
        await connection.close()
    return event_id


async def cancel(url: DatabaseURL, *, event_id: int, timeout: float) -> bool:
    """Whether the one-off event `event_id` was waiting, and now is no more."""
    connection = await _connect(url, timeout)
    try:
        cancelled: bool = await connection.fetchval("SELECT events.cancel_event($1)", event_id)
    finally:
        await connection.close()
    return cancelled
