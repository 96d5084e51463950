"""Scheduled events (EVENT_SCHEDULES): an event at each time of a cron schedule, delivered to the
schedule's webhook like a row change's (events.py), as Hasura's cron triggers.

Every process with schedules writes each time into the event log as it comes; the log keeps one
event a time per schedule however many processes write it (a unique index, migration 0009), so
replicas and workers need no leader, and the deliverers share the sending as for row changes.
Times are UTC. A time that passed while no process ran (a deploy, an outage) is still written
when it is at most EVENT_SCHEDULE_GRACE_SECONDS old; older ones are skipped, not caught up.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import asyncpg
from cronsim import CronSim, CronSimError

from service.db.background import keep_connected
from service.db.event_log import CHANNEL
from service.db.url import DatabaseURL
from service.settings import CronSchedule

log = logging.getLogger("service.events")

APPLICATION_NAME = "service schedules"
# cron's shorthands, which cronsim does not read itself
_NICKNAMES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
# However far off the next time is, look again this often (a clock set forward, say).
_MAX_SLEEP = 30.0

# Written by whichever process comes first; the others' rows conflict and are dropped.
_WRITE = """
INSERT INTO events.event_log (trigger_name, scheduled_for, payload)
SELECT $1, unnest($2::timestamptz[]), $3::jsonb
ON CONFLICT (trigger_name, scheduled_for) WHERE scheduled_for IS NOT NULL DO NOTHING
RETURNING id
"""


def cron_expression(text: str) -> str:
    """A schedule as cronsim reads it: five fields (minute hour day month weekday), six with
    seconds in front, or a shorthand (`@daily`). ValueError says what is wrong."""
    expression = _NICKNAMES.get(text.strip().lower(), text.strip())
    try:
        CronSim(expression, datetime.now(UTC))
    except CronSimError as error:
        raise ValueError(f"{text!r} is not a cron schedule: {error}") from None
    return expression


def times_between(expression: str, after: datetime, until: datetime) -> Iterator[datetime]:
    """The schedule's times in (after, until]."""
    for time in CronSim(expression, after):
        if time > until:
            return
        yield time


class EventScheduler:
    def __init__(
        self, url: DatabaseURL, schedules: dict[str, str | CronSchedule], grace_seconds: float
    ) -> None:
        self.url = url
        self.schedules: dict[str, str] = {}  # name -> cron expression
        self.payloads: dict[str, str | None] = {}  # name -> JSON its events carry
        for name, schedule in schedules.items():
            if isinstance(schedule, str):
                schedule = CronSchedule(cron=schedule)
            self.schedules[name] = cron_expression(schedule.cron)
            payload = schedule.payload
            self.payloads[name] = None if payload is None else json.dumps(payload)
        self.grace = timedelta(seconds=grace_seconds)
        # times up to this one are written (by this process or another), or skipped
        self.written_until = datetime.now(UTC) - self.grace

    async def run(self) -> None:
        """Write the schedules' events until cancelled; a lost connection is made again."""
        await keep_connected(self.url, APPLICATION_NAME, self._serve, what="scheduled events")

    async def _serve(self, connection: asyncpg.Connection) -> None:
        log.info("writing the events of schedules %s", ", ".join(sorted(self.schedules)))
        # Times that passed while the database was out of reach count as missed: only the
        # grace's are written late (at the start: those before the process ran).
        self.written_until = max(self.written_until, datetime.now(UTC) - self.grace)
        while True:
            now = datetime.now(UTC)
            since = self.written_until
            for name, expression in self.schedules.items():
                times = list(times_between(expression, since, now))
                payload = self.payloads[name]
                if times and await connection.fetch(_WRITE, name, times, payload):
                    await connection.execute("SELECT pg_notify($1, $2)", CHANNEL, name)
            self.written_until = now
            await asyncio.sleep(self._until_next(now))

    def _until_next(self, now: datetime) -> float:
        upcoming = min(next(CronSim(e, now)) for e in self.schedules.values())
        # a moment past the time, so that it is in (since, now] when the loop wakes
        return min(max((upcoming - now).total_seconds(), 0.0) + 0.005, _MAX_SLEEP)
