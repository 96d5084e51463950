"""Probes for orchestrators: `/livez` (the process runs) and `/readyz` (it can serve)."""

from __future__ import annotations

import asyncio
import time

import orjson
from starlette.requests import Request
from starlette.responses import Response

from service.db.migrate import schema_history

# A probe every second from several orchestrator nodes should not each cost a query.
_CACHE_SECONDS = 1.0
_QUERY_TIMEOUT = 2.0
# SQLSTATE classes of a server that is away: 08 connection exceptions, 57 shutting down or
# starting up
_UNREACHABLE_CLASSES = ("08", "57")


def _json(http_status: int, **body: object) -> Response:
    return Response(orjson.dumps(body), status_code=http_status, media_type="application/json")


async def livez(request: Request) -> Response:
    # Never touches the database: a database outage must not make orchestrators restart us.
    return _json(200, status="ok")


async def readyz(request: Request) -> Response:
    state = request.app.state
    if state.shutting_down:
        return _json(503, status="unavailable", reason="shutting down")
    pools = state.pools
    if pools is None:
        return _json(503, status="unavailable", reason=state.startup_reason)
    now = time.monotonic()
    cached = state.readiness_cache
    if cached is not None and now - cached[0] < _CACHE_SECONDS:
        return cached[1]
    response = await _check(pools.primary, "database")
    if response.status_code == 200 and pools.replica is not None:
        # Queries need the replica, with this code's schema replayed
        replica = await _check(pools.replica, "read replica")
        if replica.status_code != 200:
            response = replica
    state.readiness_cache = (now, response)
    return response


async def _check(pool: object, name: str) -> Response:
    """Is the database of `pool` (`name`: which one, in the reason) reachable, with a schema
    this code can serve?"""
    import asyncpg

    assert isinstance(pool, asyncpg.Pool)
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
            return _json(503, status="unavailable", reason=f"{name} not reachable")
        # Reached, but refused: e.g. a replica that has not replayed the API roles yet
        why = f"{name} not ready (PostgreSQL error {error.sqlstate})"
        return _json(503, status="unavailable", reason=why)
    except (OSError, asyncpg.InterfaceError, TimeoutError):
        return _json(503, status="unavailable", reason=f"{name} not reachable")
    verdict = schema_history().judge(tuple(sorted(r[0] for r in rows)))
    if not verdict.servable:
        reason = verdict.describe()
        return _json(
            503, status="unavailable", reason=reason if name == "database" else f"{name}: {reason}"
        )
    return _json(200, status="ok", schema=verdict.state, revision=",".join(verdict.current))
