"""Can a pool's database serve this code? Reachable, and migrated to a schema it knows.

`/readyz` asks it of the primary; the read replica's watcher (pool.py) of the replica.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import asyncpg

from service.db.migrate import schema_history

_QUERY_TIMEOUT = 2.0
# SQLSTATE classes of a server that is away: 08 connection exceptions, 57 shutting down or
# starting up
_UNREACHABLE_CLASSES = ("08", "57")


@dataclass(frozen=True, slots=True)
class Probe:
    problem: str | None  # why it cannot serve; None: it can
    schema: str | None = None  # "current", "newer" (a rolling deploy's overlap)
    revision: str | None = None


async def probe(pool: asyncpg.Pool, name: str) -> Probe:
    """`name` (which database) starts the problem's text."""
    try:
        async with asyncio.timeout(_QUERY_TIMEOUT):
            async with pool.acquire() as connection, connection.transaction(readonly=True):
                # One transaction: behind PgBouncer both statements reach the same server. As
                # the login role: the session may hold a caller's role (db/context.py).
                await connection.execute("SET LOCAL ROLE NONE")
                exists = await connection.fetchval("SELECT to_regclass('public.alembic_version')")
                rows = (
                    await connection.fetch("SELECT version_num FROM alembic_version")
                    if exists
                    else []
                )
    except asyncpg.PostgresError as error:
        if error.sqlstate[:2] in _UNREACHABLE_CLASSES:
            return Probe(f"{name} not reachable")
        # Reached, but refused: e.g. a replica that has not replayed the API roles yet
        return Probe(f"{name} not ready (PostgreSQL error {error.sqlstate})")
    except (OSError, asyncpg.InterfaceError, TimeoutError):
        return Probe(f"{name} not reachable")
    verdict = schema_history().judge(tuple(sorted(r[0] for r in rows)))
    if not verdict.servable:
        reason = verdict.describe()
        return Probe(reason if name == "database" else f"{name}: {reason}")
    return Probe(None, verdict.state, ",".join(verdict.current))
