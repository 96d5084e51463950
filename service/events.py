"""Event triggers' deliveries: each recorded change POSTed to its trigger's webhook.

A row change is recorded by PostgreSQL in the writing transaction (`events.capture`, migration
0008), so an event exists exactly when its change committed. Each process with EVENT_WEBHOOKS
runs one deliverer: it leases due events (`FOR UPDATE SKIP LOCKED`, so replicas and workers
share the work without sending one twice at once), POSTs each as JSON to its webhook, and
records the answer: a 2xx delivers it; anything else (another status, a timeout, a refused
connection) tries it again later, waiting twice as long each time, until EVENT_MAX_TRIES.
A lease outlives a request's timeout, so an event whose deliverer died is tried again by
another: delivery is at least once, and receivers tell repeats by the event's id.
PostgreSQL's NOTIFY at commit wakes the deliverers; a poll catches retries that come due.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import time
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import orjson
from prometheus_client import Counter

from service.db.background import keep_connected
from service.db.event_log import CHANNEL
from service.db.url import DatabaseURL

log = logging.getLogger("service.events")

SIGNATURE_HEADER = "X-Event-Signature"
APPLICATION_NAME = "service events"

EVENT_DELIVERIES = Counter(
    "service_event_deliveries",
    "Webhook deliveries of event triggers by trigger and outcome (delivered, failed: to be "
    "tried again, given_up)",
    ["trigger", "outcome"],
)

_LEASE = """
UPDATE events.event_log AS e
SET tries = e.tries + 1, next_try_at = now() + make_interval(secs => $3::float8)
FROM (
    SELECT id FROM events.event_log
    WHERE delivered_at IS NULL AND given_up_at IS NULL AND next_try_at <= now()
      AND trigger_name = ANY($1::text[])
    ORDER BY next_try_at, id
    LIMIT $2
    FOR UPDATE SKIP LOCKED
) AS due
WHERE e.id = due.id
RETURNING e.id, e.trigger_name, e.table_schema, e.table_name, e.operation,
    e.old::text, e.new::text, e.claims::text, e.created_at, e.tries, e.scheduled_for,
    e.one_off_at, e.payload::text
"""
# Delivered events go after EVENT_RETENTION_DAYS; those given up stay, to be looked at and
# sent again (`service events`, db/event_log.py).
_CLEANUP = """
DELETE FROM events.event_log WHERE delivered_at < now() - $1::float8 * interval '1 day'
"""
_CLEANUP_SECONDS = 600
_DELIVERED = """
UPDATE events.event_log SET delivered_at = now(), last_status = $2, last_error = NULL
WHERE id = $1
"""
_FAILED = """
UPDATE events.event_log
SET last_status = $2, last_error = $3,
    -- given up ($4): kept as it is; else due again in $5 seconds
    next_try_at = CASE WHEN $4::boolean THEN next_try_at
                       ELSE now() + make_interval(secs => $5::float8) END,
    given_up_at = CASE WHEN $4::boolean THEN now() END
WHERE id = $1
"""


@dataclass(frozen=True)
class Webhooks:
    """Where each trigger's events go, and how they are sent."""

    urls: dict[str, str]  # trigger name -> URL
    secret: str | None = None  # signs each body (HMAC-SHA256) when set
    max_tries: int = 8
    retry_seconds: float = 10.0  # the first retry's wait; each next waits twice as long
    timeout_seconds: float = 10.0
    poll_seconds: float = 1.0
    retention_days: float = 7.0  # delivered events are deleted after this long
    batch: int = 20  # events leased (and sent concurrently) at once


class EventDeliverer:
    def __init__(self, url: DatabaseURL, webhooks: Webhooks) -> None:
        self.url = url
        self.webhooks = webhooks
        self._wake = asyncio.Event()

    async def run(self) -> None:
        """Deliver until cancelled; a lost database connection is made again."""
        async with httpx.AsyncClient(timeout=self.webhooks.timeout_seconds) as client:
            await keep_connected(
                self.url,
                APPLICATION_NAME,
                lambda connection: self._serve(connection, client),
                what="event deliveries",
            )

    async def _serve(self, connection: asyncpg.Connection, client: httpx.AsyncClient) -> None:
        await connection.add_listener(CHANNEL, lambda *_: self._wake.set())
        log.info("delivering events of %s", ", ".join(sorted(self.webhooks.urls)))
        cleaned = 0.0
        while True:
            self._wake.clear()
            leased = await self._lease(connection)
            # sent at once; their answers recorded one by one (one connection)
            answers = await asyncio.gather(*(self._send(client, e) for e in leased))
            for event, (status, error) in zip(leased, answers, strict=True):
                await self._record(connection, event, status, error)
            now = time.monotonic()
            if now - cleaned > _CLEANUP_SECONDS:
                await connection.execute(_CLEANUP, self.webhooks.retention_days)
                cleaned = now
            if len(leased) < self.webhooks.batch:  # none left due: wait for news
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.webhooks.poll_seconds)

    async def _lease(self, connection: asyncpg.Connection) -> list[asyncpg.Record]:
        # leased for longer than a request may take: then another deliverer may try it
        lease = self.webhooks.timeout_seconds * 2 + 5
        return await connection.fetch(_LEASE, list(self.webhooks.urls), self.webhooks.batch, lease)

    async def _send(
        self, client: httpx.AsyncClient, event: asyncpg.Record
    ) -> tuple[int | None, str | None]:
        """The webhook's status, and what went wrong (None: delivered)."""
        body = _payload(event)
        headers = {"content-type": "application/json", "x-event-id": str(event["id"])}
        if self.webhooks.secret is not None:
            digest = hmac.new(self.webhooks.secret.encode(), body, hashlib.sha256).hexdigest()
            headers[SIGNATURE_HEADER.lower()] = f"sha256={digest}"
        url = self.webhooks.urls[event["trigger_name"]]
        try:
            response = await client.post(url, content=body, headers=headers)
        except httpx.HTTPError as failure:
            return None, f"{type(failure).__name__}: {failure}"[:500]
        status = response.status_code
        return status, None if response.is_success else f"HTTP {status}"

    async def _record(
        self,
        connection: asyncpg.Connection,
        event: asyncpg.Record,
        status: int | None,
        error: str | None,
    ) -> None:
        trigger = event["trigger_name"]
        if error is None:
            await connection.execute(_DELIVERED, event["id"], status)
            EVENT_DELIVERIES.labels(trigger, "delivered").inc()
            return
        tries = event["tries"]
        give_up = tries >= self.webhooks.max_tries
        wait = self.webhooks.retry_seconds * 2 ** (tries - 1)
        await connection.execute(_FAILED, event["id"], status, error, give_up, wait)
        EVENT_DELIVERIES.labels(trigger, "given_up" if give_up else "failed").inc()
        then = "given up" if give_up else f"again in {wait:.0f} s"
        log.warning(
            "event %s of %s not delivered (try %d): %s; %s",
            event["id"],
            trigger,
            tries,
            error,
            then,
        )


def _payload(event: asyncpg.Record) -> bytes:
    """What a webhook receives: the change, who made it, and which try this is; for an event
    of a time (a schedule's, schedules.py, or a one-off, migration 0010), that time and its
    payload instead of the change, and for a one-off who asked."""

    def json_or_none(text: str | None) -> Any:
        return None if text is None else orjson.Fragment(text)

    body: dict[str, Any] = {"id": event["id"], "trigger": event["trigger_name"]}
    scheduled_for = event["one_off_at"] or event["scheduled_for"]
    if scheduled_for is not None:
        body.update(scheduledFor=scheduled_for, payload=json_or_none(event["payload"]))
        if event["one_off_at"] is not None:
            body["claims"] = json_or_none(event["claims"])
    else:
        body.update(
            table={"schema": event["table_schema"], "name": event["table_name"]},
            operation=event["operation"],
            old=json_or_none(event["old"]),
            new=json_or_none(event["new"]),
            claims=json_or_none(event["claims"]),
        )
    body.update(createdAt=event["created_at"], **{"try": event["tries"]})
    return orjson.dumps(body)
