"""Get the database ready to serve: wait for it (with backoff), then migrate under the lock.

`service serve` runs this while it already answers probes, so an orchestrator sees a live
process that is not ready yet (`/readyz` says why) instead of a crash loop.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING

import asyncpg

from service.db.migrate import SchemaHistory, SchemaVerdict, migrate
from service.db.url import DatabaseURL
from service.errors import StartupError
from service.settings import Settings

if TYPE_CHECKING:
    from service.graphql.catalog import SqlFunction

log = logging.getLogger("service.startup")

_FIRST_DELAY = 0.1
_MAX_DELAY = 2.0

# A wrong password or user will not fix itself: say so at once instead of retrying.
_FATAL = (asyncpg.InvalidAuthorizationSpecificationError, asyncpg.InvalidPasswordError)


class Phase(StrEnum):
    """Where the start is; the values are /readyz's reasons and the metric's labels."""

    waiting = "waiting for the database"
    migrating = "migrating"
    done = "done"
    failed = "failed"


async def wait_for_database(url: DatabaseURL, *, timeout: float, connect_timeout: float) -> None:
    """Return once PostgreSQL accepts a connection; StartupError after `timeout` seconds."""
    started = time.monotonic()
    deadline = started + timeout
    delay = _FIRST_DELAY
    attempts = 0
    while True:
        attempts += 1
        remaining = deadline - time.monotonic()
        try:
            connection = await asyncpg.connect(
                **url.asyncpg_kwargs(), timeout=max(0.1, min(connect_timeout, remaining))
            )
        except _FATAL as error:
            raise StartupError(f"cannot connect to {url.safe()}: {_first_line(error)}") from None
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            reason = _first_line(error)
        else:
            await connection.close()
            if attempts > 1:
                log.info("database reachable after %.1f s", time.monotonic() - started)
            return
        if attempts == 1:
            log.warning(
                "database %s not reachable yet (%s); retrying for up to %g s",
                url.safe(),
                reason,
                timeout,
            )
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise StartupError(
                f"cannot reach the database {url.safe()} within {timeout:g} s "
                f"(DB_STARTUP_TIMEOUT): {reason}"
            )
        # Jitter: many replicas restarted together should not knock in step. The last try is
        # at the deadline.
        await asyncio.sleep(min(delay * random.uniform(0.8, 1.2), remaining))
        delay = min(delay * 2, _MAX_DELAY)


class Startup:
    """Wait for the database, then migrate; `phase` says where it is, for probes and metrics."""

    def __init__(
        self,
        url: DatabaseURL,
        settings: Settings,
        *,
        history: SchemaHistory | None = None,
        on_phase: Callable[[Phase], None] | None = None,
        functions: Sequence[SqlFunction] = (),
    ) -> None:
        self.url = url
        self.settings = settings
        self.history = history
        self.functions = functions  # the models name them: present once migrated?
        self.on_phase = on_phase
        self.phase = Phase.waiting
        self.error: str | None = None
        self.verdict: SchemaVerdict | None = None

    def _enter(self, phase: Phase) -> None:
        self.phase = phase
        if self.on_phase is not None:
            self.on_phase(phase)

    async def run(self) -> SchemaVerdict:
        settings = self.settings
        try:
            self._enter(Phase.waiting)
            await wait_for_database(
                self.url,
                timeout=settings.db_startup_timeout,
                connect_timeout=settings.db_connect_timeout,
            )
            self._enter(Phase.migrating)
            self.verdict = await migrate(
                self.url,
                lock_timeout=settings.migration_lock_timeout,
                refuse_newer=settings.refuse_newer_schema,
                connect_timeout=settings.db_connect_timeout,
                history=self.history,
            )
            await check_functions(
                self.url, self.functions, connect_timeout=settings.db_connect_timeout
            )
        except StartupError as error:
            self.error = str(error)
            self._enter(Phase.failed)
            raise
        self._enter(Phase.done)
        return self.verdict


# Each function's name (no arguments: an `integer` one takes the API's bigint too) in its
# schema, or in the search path's.
_MISSING = """
SELECT i FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS f(schema, name, i)
WHERE NOT EXISTS (
    SELECT FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE p.proname = f.name
      AND n.nspname = ANY(
          CASE WHEN f.schema IS NULL THEN current_schemas(false) ELSE ARRAY[f.schema] END
      )
)
"""


async def check_functions(
    url: DatabaseURL, functions: Sequence[SqlFunction], *, connect_timeout: float
) -> None:
    """StartupError unless the database has every SQL function the models name (computed
    columns, query functions): without one, each request using it would fail, so it is a
    deploy's mistake to stop at, as a missing migration is."""
    if not functions:
        return
    connection = await asyncpg.connect(**url.asyncpg_kwargs(), timeout=connect_timeout)
    try:
        missing = await connection.fetch(
            _MISSING, [f.schema for f in functions], [f.name for f in functions]
        )
    finally:
        await connection.close()
    if missing:
        named = ", ".join(
            f"{functions[row['i'] - 1].name} ({functions[row['i'] - 1].declared_by})"
            for row in missing
        )
        raise StartupError(
            f"the database has no function {named}: the models name it, so a migration must "
            "create it"
        )


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
