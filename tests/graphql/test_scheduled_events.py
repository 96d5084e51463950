"""Scheduled events (EVENT_SCHEDULES): an event at each time of a cron schedule, POSTed to the
schedule's webhook like a row change's, as Hasura's cron triggers. Schedules here have a
seconds field, so that the tests wait seconds rather than minutes.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from service.db.url import DatabaseURL
from tests.graphql.test_event_triggers import SECRET, Webhook, event_log
from tests.support import RunningService, run_service


@pytest.fixture
async def webhook() -> AsyncIterator[Webhook]:
    async with Webhook() as hook:
        yield hook


def at(time: datetime) -> str:
    """A schedule (seconds first) with one time a day: `time`'s second, minute and hour."""
    return f"{time.second} {time.minute} {time.hour} * * *"


def parsed(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def test_each_time_reaches_the_webhook_once_however_many_replicas_write_it(
    seeded: DatabaseURL, webhook: Webhook
) -> None:
    settings = {
        "event_webhooks": {"tick": webhook.url},
        "event_webhook_secret": SECRET,
        "event_schedules": {"tick": "* * * * * *"},  # every second
        "event_schedule_grace_seconds": 0,  # none of the seconds before the start
    }
    async with RunningService(seeded, **settings), RunningService(seeded, **settings):
        await webhook.wait_for(4)
    await asyncio.sleep(1.1)  # an event of the last second, on its way
    events = webhook.events()
    times = [parsed(e["scheduledFor"]) for e in events]
    # one event a second, each second once though both replicas wrote it
    assert len(set(times)) == len(times), times
    assert sorted(times) == [times[0] + timedelta(seconds=i) for i in range(len(times))]
    assert {time.microsecond for time in times} == {0}
    first = events[0]
    assert set(first) == {"id", "trigger", "scheduledFor", "createdAt", "try"}
    assert (first["trigger"], first["try"]) == ("tick", 1)
    headers, body = webhook.received[0]
    signed = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers["x-event-signature"] == f"sha256={signed}"
    logged = await event_log(seeded)
    assert len(logged) == len(events)
    assert all(row["delivered_at"] is not None for row in logged)


async def test_a_time_missed_while_no_process_ran_is_sent_late_within_the_grace_only(
    seeded: DatabaseURL, webhook: Webhook
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    recent, old = now - timedelta(seconds=2), now - timedelta(seconds=120)
    settings = {
        "event_webhooks": {"recent": webhook.url, "old": webhook.url},
        "event_schedules": {"recent": at(recent), "old": at(old)},
        "event_schedule_grace_seconds": 60,
    }
    async with RunningService(seeded, **settings):
        [late] = await webhook.wait_for(1)
        await asyncio.sleep(1)
    assert (late["trigger"], parsed(late["scheduledFor"])) == ("recent", recent)
    # a restart (a deploy) within the grace writes the time again, and the log keeps it once
    async with RunningService(seeded, **settings):
        await asyncio.sleep(1.5)
    assert len(webhook.received) == 1
    assert len(await event_log(seeded)) == 1


async def test_a_given_up_scheduled_event_is_listed_by_the_time_it_was_for(
    seeded: DatabaseURL, webhook: Webhook
) -> None:
    webhook.statuses = [500]
    settings = {
        "event_webhooks": {"nightly": webhook.url},
        "event_schedules": {"nightly": "* * * * * *"},
        "event_schedule_grace_seconds": 0,
        "event_max_tries": 1,
    }
    async with RunningService(seeded, **settings):
        failed = (await webhook.wait_for(1))[0]  # (then one a second, delivered)
        while (await event_log(seeded))[0]["given_up_at"] is None:
            await asyncio.sleep(0.05)
    listed = await asyncio.to_thread(run_service, "events", DATABASE_URL=seeded.sqlalchemy)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    [shown] = [line for line in lines if line.strip().startswith(f"{failed['id']} ")]
    time = parsed(failed["scheduledFor"]).isoformat()
    assert f"nightly  scheduled for {time}  1 tries" in shown, listed.stdout


def test_a_schedule_that_is_not_cron_or_has_no_webhook_stops_the_service_at_start() -> None:
    hook = '{"nightly": "http://127.0.0.1:9/hook"}'
    for schedules, webhooks, problem in (
        ('{"nightly": "0 61 * * *"}', hook, "the schedule of 'nightly': '0 61 * * *' is not"),
        ('{"nightly": "every night"}', hook, "is not a cron schedule"),
        ('{"nightly": "@daily"}', "{}", "EVENT_SCHEDULES names nightly without a webhook"),
    ):
        result = run_service("schema", EVENT_SCHEDULES=schedules, EVENT_WEBHOOKS=webhooks)
        assert result.returncode == 2, result
        assert problem in result.stderr, result.stderr
    shorthand = run_service("schema", EVENT_SCHEDULES='{"nightly": "@daily"}', EVENT_WEBHOOKS=hook)
    assert shorthand.returncode == 0, shorthand.stderr
