"""The asyncpg pool that serves requests: no ORM, JSON straight through as bytes."""

from __future__ import annotations

import asyncio
import logging
import math
import time

import asyncpg

from service.db.context import ServiceConnection, start_as_anonymous
from service.db.probe import probe
from service.db.url import DatabaseURL
from service.db.wal import ReplayAge
from service.settings import Settings

log = logging.getLogger("service.db")

# How often the read replica is checked, and how long reads stay on the primary after it
# failed (longer than a check's interval: a replica that keeps failing stays out)
_REPLICA_CHECK_SECONDS = 2.0
_REPLICA_PAUSE_SECONDS = 5.0


async def _init_connection(connection: asyncpg.Connection) -> None:
    # PostgreSQL builds each response's JSON; binary `json` is its text, passed on undecoded.
    # In a transaction: behind PgBouncer (transaction mode) the type lookup this runs must stay
    # on one server connection.
    async with connection.transaction():
        await connection.set_type_codec(
            "json", schema="pg_catalog", encoder=lambda b: b, decoder=lambda b: b, format="binary"
        )


async def _init_session(connection: asyncpg.Connection) -> None:
    await _init_connection(connection)
    await start_as_anonymous(connection)


async def _no_reset(connection: asyncpg.Connection) -> None:
    # asyncpg's default reset costs a round trip per request, and would drop the caller that
    # db/context.py keeps as session state; that state is reset by whoever uses it next.
    return None


async def create_pool(url: DatabaseURL, settings: Settings) -> asyncpg.Pool:
    """The request pool. It connects on demand: creating it never waits for the database, and
    a connection the server dropped (a restart) is replaced at its next use."""
    kwargs = url.asyncpg_kwargs()
    server_settings = dict(kwargs.pop("server_settings", {}))
    behind_pgbouncer = settings.database_pooler == "pgbouncer"
    if not behind_pgbouncer:
        # PgBouncer refuses startup parameters it does not know; there, set it on the role.
        server_settings.setdefault("statement_timeout", str(settings.statement_timeout_ms))
    server_settings.setdefault("application_name", "service")
    # db/context.py quotes the caller's claims as a literal; this makes that quoting complete.
    server_settings["standard_conforming_strings"] = "on"
    pool = await asyncpg.create_pool(
        **kwargs,
        # No floor: asyncpg would reconnect it in the background during an outage, logging a
        # traceback a second; requests and /readyz find out soon enough by themselves.
        init_size=0,
        min_size=0,
        max_size=settings.db_pool_size,
        init=_init_connection if behind_pgbouncer else _init_session,
        # Straight to PostgreSQL, a connection keeps its last caller as session state.
        connection_class=asyncpg.Connection if behind_pgbouncer else ServiceConnection,
        reset=_no_reset,
        max_queries=1_000_000_000,
        timeout=settings.db_connect_timeout,
        command_timeout=None,
        # PgBouncer before 1.21 (Debian 12 has 1.18) cannot keep named prepared statements
        # across transactions; every request runs inside one transaction, so unnamed ones work.
        statement_cache_size=0 if behind_pgbouncer else 100,
        server_settings=server_settings,
    )
    assert pool is not None
    return pool


async def close_pool(pool: asyncpg.Pool, timeout: float = 5.0) -> None:
    """Close gracefully (connections in use are waited for), then forcefully after `timeout`."""
    try:
        await asyncio.wait_for(pool.close(), timeout)
    except TimeoutError:
        log.warning("pool did not close within %g s; terminating its connections", timeout)
        pool.terminate()


class Pools:
    """Where operations run: writes on the primary; reads (queries, subscriptions) on the read
    replica of DATABASE_READ_URL when there is one and it can serve. A replica that cannot
    (unreachable, refusing connections, behind this code's migrations) sends reads to the
    primary until it can again: a replica's outage slows reads down, it does not stop them."""

    def __init__(
        self,
        primary: asyncpg.Pool,
        replica: asyncpg.Pool | None = None,
        *,
        max_lag_seconds: float = 0.0,
    ) -> None:
        self.primary = primary
        self.replica = replica
        # READ_REPLICA_MAX_LAG_SECONDS (0: none): further behind, reads go to the primary
        self.max_lag_seconds = max_lag_seconds
        self.replica_lag: float | None = None  # seconds behind the primary, when known
        self._replay_age = ReplayAge()
        # Why reads go to the primary now; until the watcher's first check, they do.
        self.replica_problem = "read replica not checked yet" if replica is not None else None
        self._replica_back_at = math.inf  # monotonic time from which the replica is tried again

    def for_operation(self, *, writes: bool) -> asyncpg.Pool:
        if writes or self.replica is None or time.monotonic() < self._replica_back_at:
            return self.primary
        return self.replica

    def primary_only(self) -> Pools:
        """For reads that must see this caller's writes just made (later requests of a batch)."""
        return Pools(self.primary)

    def replica_failed(self, problem: str) -> None:
        """Reads go to the primary for a while (the watcher looks again meanwhile)."""
        if problem != self.replica_problem:
            log.warning("%s: reads go to the primary until it can serve", problem)
        self.replica_problem = problem
        self._replica_back_at = time.monotonic() + _REPLICA_PAUSE_SECONDS

    def replica_works(self) -> None:
        if self.replica_problem is not None:
            log.info("read replica in use: reads go to it")
        self.replica_problem = None
        self._replica_back_at = 0.0

    async def watch_replica(self) -> None:
        """Until cancelled, check every few seconds that the replica can serve and how far
        behind the primary it is."""
        assert self.replica is not None
        while True:
            problem = (await probe(self.replica, "read replica")).problem
            if problem is None:
                problem = await self._check_lag()
            if problem is None:
                self.replica_works()
            else:
                self.replica_failed(problem)
            await asyncio.sleep(_REPLICA_CHECK_SECONDS)

    async def _check_lag(self) -> str | None:
        """The problem when the replica is further behind than allowed; notes its lag."""
        assert self.replica is not None
        try:
            async with asyncio.timeout(_REPLICA_CHECK_SECONDS):
                # the primary's position first: a replica caught up has replayed it
                position = await self.primary.fetchval("SELECT pg_current_wal_insert_lsn()")
                self._replay_age.note(time.monotonic(), position)
                replayed = await self.replica.fetchval("SELECT pg_last_wal_replay_lsn()")
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError):
            return None  # not known now (the replica's own trouble shows in its probe)
        if replayed is None:  # not a standby: nothing to measure
            self.replica_lag = None
            return None
        self.replica_lag = lag = self._replay_age.behind(time.monotonic(), replayed)
        if self.max_lag_seconds and lag > self.max_lag_seconds:
            return f"read replica {lag:.0f} s behind the primary"
        return None

    async def close(self) -> None:
        await close_pool(self.primary)
        if self.replica is not None:
            await close_pool(self.replica)


async def create_pools(url: DatabaseURL, settings: Settings) -> Pools:
    """The primary's pool (`url`: DATABASE_URL's), and the read replica's with
    DATABASE_READ_URL. Neither waits for its database."""
    primary = await create_pool(url, settings)
    if not settings.database_read_url:
        return Pools(primary)
    replica = await create_pool(DatabaseURL.parse(settings.database_read_url), settings)
    return Pools(primary, replica, max_lag_seconds=settings.read_replica_max_lag_seconds)


def pool_usage(pool: asyncpg.Pool) -> tuple[int, int]:
    """(in use, idle) connections."""
    size, idle = pool.get_size(), pool.get_idle_size()
    return size - idle, idle
