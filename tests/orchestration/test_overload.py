"""When every database connection stays busy, requests are shed after DB_POOL_TIMEOUT with a 503
and `Retry-After`, instead of queueing for as long as clients hold on; the service recovers by
itself once a connection comes free."""

from __future__ import annotations

import asyncio
import logging
import time

import asyncpg

from service.db.url import DatabaseURL
from tests.support import RunningService

COUNT = {"query": "{ posts { totalCount } }"}


async def _until_waiting_on_a_lock(locker: asyncpg.Connection) -> None:
    for _ in range(200):
        # pg_locks, not pg_stat_activity: that is a snapshot for the rest of the transaction
        if await locker.fetchval("SELECT count(*) FROM pg_locks WHERE NOT granted"):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the request never reached the database")


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def test_requests_are_shed_with_a_503_while_every_connection_is_busy(
    database: DatabaseURL,
) -> None:
    locker = await asyncpg.connect(**database.asyncpg_kwargs())
    service = RunningService(database, db_pool_size=1, db_pool_timeout=0.5)
    # after the app is built: building it sets up the service's logging
    logs = _Records()
    logging.getLogger("service").addHandler(logs)
    try:
        async with service as http:
            # the only connection waits for a lock: the database has stalled for this service
            await locker.execute("BEGIN; LOCK TABLE posts IN ACCESS EXCLUSIVE MODE")
            stuck = asyncio.create_task(http.post("/graphql", json=COUNT))
            await _until_waiting_on_a_lock(locker)

            started = time.monotonic()
            shed = await http.post("/graphql", json=COUNT)
            waited = time.monotonic() - started
            assert shed.status_code == 503
            assert shed.headers["retry-after"] == "1"
            [error] = shed.json()["errors"]
            assert error["message"] == "every database connection is busy; try again shortly"
            assert error["extensions"]["code"] == "INTERNAL"
            assert 0.45 < waited < 3, waited
            warnings = [r.getMessage() for r in logs.records if r.levelno == logging.WARNING]
            assert "no database connection free within 0.5 s for operation anonymous" in warnings
            assert not any(r.exc_info for r in logs.records)

            await locker.execute("COMMIT")
            assert (await stuck).json() == {"data": {"posts": {"totalCount": 0}}}
            after = await http.post("/graphql", json=COUNT)
            assert after.json() == {"data": {"posts": {"totalCount": 0}}}
    finally:
        logging.getLogger("service").removeHandler(logs)
        await locker.close()
