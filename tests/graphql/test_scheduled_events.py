"""Scheduled events (EVENT_SCHEDULES): an event at each time of a cron schedule, POSTed to the
schedule's webhook like a row change's, as Hasura's cron triggers. Schedules here have a
seconds field, so that the tests wait seconds rather than minutes.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from service.db.url import DatabaseURL
from tests.graphql.conftest import ALICE
from tests.graphql.test_event_triggers import SECRET, Webhook, event_log
from tests.support import RunningService, execute_sql, fetch_sql, run_service


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
        # every second, each event with the schedule's payload
        "event_schedules": {"tick": {"cron": "* * * * * *", "payload": {"digest": "hourly"}}},
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
    assert set(first) == {"id", "trigger", "scheduledFor", "payload", "createdAt", "try"}
    assert (first["trigger"], first["try"]) == ("tick", 1)
    assert all(event["payload"] == {"digest": "hourly"} for event in events)
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
    assert late["payload"] is None  # a schedule given as its cron alone
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
        ('{"nightly": {"cron": "0 61 * * *"}}', hook, "the schedule of 'nightly': '0 61 * * *'"),
        ('{"nightly": {"schedule": "@daily"}}', hook, "EVENT_SCHEDULES.NIGHTLY"),
    ):
        result = run_service("schema", EVENT_SCHEDULES=schedules, EVENT_WEBHOOKS=webhooks)
        assert result.returncode == 2, result
        assert problem in result.stderr, result.stderr
    shorthand = run_service("schema", EVENT_SCHEDULES='{"nightly": "@daily"}', EVENT_WEBHOOKS=hook)
    assert shorthand.returncode == 0, shorthand.stderr


# An application's function that lets a signed-in user ask for a reminder (migration-style SQL):
# SECURITY DEFINER, so it may call events.schedule_event, which no API role may call itself.
REMIND_ME = """
CREATE FUNCTION public.remind_me(at timestamptz, note text) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT events.schedule_event('reminder', at, jsonb_build_object('note', note))
$$;
REVOKE ALL ON FUNCTION public.remind_me(timestamptz, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.remind_me(timestamptz, text) TO authenticated;
"""


def as_alice(sql: str) -> str:
    """`sql` as a request of Alice's runs it: her role and claims, in one transaction."""
    claims = f'{{"sub": "{ALICE}", "role": "authenticated"}}'
    return (
        f"BEGIN; SELECT set_config('role', 'authenticated', true), "
        f"set_config('request.jwt.claims', '{claims}', true); {sql}; COMMIT"
    )


async def test_one_off_events_reach_the_webhook_at_their_time_with_their_payload(
    seeded: DatabaseURL, webhook: Webhook
) -> None:
    await execute_sql(seeded, REMIND_ME)
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=4)
    later = due + timedelta(hours=1)
    # two for the same time (any number may share one): Alice's, through the application's
    # function, and one the application's own SQL asks for, without a payload
    await execute_sql(seeded, as_alice(f"SELECT remind_me('{due.isoformat()}', 'Water')"))
    await execute_sql(seeded, f"SELECT events.schedule_event('reminder', '{due.isoformat()}')")
    # asked for in a transaction that rolled back: never sent
    await execute_sql(
        seeded,
        f"BEGIN; SELECT events.schedule_event('reminder', '{due.isoformat()}'); ROLLBACK",
    )
    # asked for, then taken back
    [taken_back] = await fetch_sql(
        seeded, f"SELECT events.schedule_event('reminder', '{later.isoformat()}') AS id"
    )
    [cancelled] = await fetch_sql(seeded, f"SELECT events.cancel_event({taken_back['id']}) AS c")
    assert cancelled["c"] is True
    # an API role may not ask for events itself: only through functions the owner grants
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await execute_sql(
            seeded, as_alice(f"SELECT events.schedule_event('reminder', '{due.isoformat()}')")
        )

    settings = {"event_webhooks": {"reminder": webhook.url}, "event_webhook_secret": SECRET}
    async with RunningService(seeded, **settings):
        assert datetime.now(UTC) < due  # (else the next check proves nothing)
        await webhook.wait_for(2)
        assert datetime.now(UTC) >= due  # not before their time
        await asyncio.sleep(1.5)  # anything more would have come by now
    assert len(webhook.received) == 2
    alices, plain = sorted(webhook.events(), key=lambda e: e["payload"] is None)
    assert set(alices) == {"id", "trigger", "scheduledFor", "payload", "claims", "createdAt", "try"}
    assert (alices["trigger"], parsed(alices["scheduledFor"]), alices["try"]) == (
        "reminder",
        due,
        1,
    )
    assert alices["payload"] == {"note": "Water"}
    assert alices["claims"] == {"sub": ALICE, "role": "authenticated"}  # who asked
    assert (plain["payload"], plain["claims"], parsed(plain["scheduledFor"])) == (None, None, due)
    headers, body = webhook.received[0]
    signed = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers["x-event-signature"] == f"sha256={signed}"
    logged = await event_log(seeded)
    assert [row["delivered_at"] is not None for row in logged] == [True, True]  # none other
    # delivered: not taken back any more
    [again] = await fetch_sql(seeded, f"SELECT events.cancel_event({alices['id']}) AS c")
    assert again["c"] is False


async def test_operators_schedule_and_cancel_one_off_events_from_the_command_line(
    seeded: DatabaseURL, webhook: Webhook
) -> None:
    env = {"DATABASE_URL": seeded.sqlalchemy, "EVENT_WEBHOOKS": f'{{"reminder": "{webhook.url}"}}'}

    def service(*args: str) -> subprocess.CompletedProcess[str]:
        return run_service("events", *args, **env)

    later = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    scheduled = await asyncio.to_thread(
        service, "schedule", "reminder", "--at", later.isoformat(), "--payload", '{"n": 1}'
    )
    assert scheduled.returncode == 0, scheduled.stderr
    [row] = await event_log(seeded)
    assert scheduled.stdout.strip() == (
        f"event {row['id']} of reminder scheduled for {later.isoformat()}"
    )
    listed = await asyncio.to_thread(service)
    assert listed.stdout.splitlines()[1].split() == ["reminder", "1", "0", "0"], listed.stdout
    cancelled = await asyncio.to_thread(service, "cancel", str(row["id"]))
    assert (cancelled.returncode, cancelled.stdout.strip()) == (0, f"event {row['id']} cancelled")
    assert await event_log(seeded) == []
    twice = await asyncio.to_thread(service, "cancel", str(row["id"]))
    assert twice.returncode == 1
    assert f"no one-off event {row['id']} waits to be sent" in twice.stderr

    # `--at now`: sent at once by a running service
    async with RunningService(seeded, event_webhooks={"reminder": webhook.url}):
        now = await asyncio.to_thread(service, "schedule", "reminder", "--at", "now")
        assert now.returncode == 0, now.stderr
        [sent] = await webhook.wait_for(1, timeout=10)
    assert (sent["trigger"], sent["payload"]) == ("reminder", None)

    for args, problem in (
        (("schedule", "nope", "--at", "now"), "EVENT_WEBHOOKS has no webhook named 'nope'"),
        (("schedule", "reminder", "--at", "2026-12-24T09:00"), "has no offset"),
        (("schedule", "reminder", "--at", "tomorrow"), "is not an ISO 8601 time"),
        (("schedule", "reminder", "--at", "now", "--payload", "{"), "not JSON"),
    ):
        refused = await asyncio.to_thread(service, *args)
        assert refused.returncode == 2, refused
        assert problem in refused.stderr, refused.stderr
