"""Probes for orchestrators: `/livez` (the process runs) and `/readyz` (it can serve)."""

from __future__ import annotations

import time

import orjson
from starlette.requests import Request
from starlette.responses import Response

from service.db.probe import probe

# A probe every second from several orchestrator nodes should not each cost a query.
_CACHE_SECONDS = 1.0


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
    found = await probe(pools.primary, "database")
    if found.problem is not None:
        response = _json(503, status="unavailable", reason=found.problem)
    else:
        # Ready without the replica too: its reads then go to the primary (pool.py)
        replica: dict[str, object] = {}
        if pools.replica is not None:
            replica["readReplica"] = pools.replica_problem or "ok"
            if pools.replica_lag is not None:
                replica["readReplicaLagSeconds"] = round(pools.replica_lag, 1)
        response = _json(200, status="ok", schema=found.schema, revision=found.revision, **replica)
    state.readiness_cache = (now, response)
    return response
