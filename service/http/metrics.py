"""`GET /metrics` for Prometheus, and the metrics the service keeps.

With `--workers N` every worker is its own process: prometheus-client's multiprocess mode
(PROMETHEUS_MULTIPROC_DIR, set by `service serve` before any worker starts) keeps each
process's values in files there, and a scrape of any worker adds them up.
"""

from __future__ import annotations

import glob
import gzip
import os
import re

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from service.http.negotiate import accepts_coding

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

GRAPHQL_REQUESTS = Counter(
    "service_graphql_requests",
    "GraphQL requests by operation name and outcome",
    ["operation", "outcome"],
)
GRAPHQL_LATENCY = Histogram(
    "service_graphql_request_duration_seconds",
    "Time from request to the end of the response, by operation name and outcome",
    ["operation", "outcome"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
POOL_CONNECTIONS = Gauge(
    "service_db_pool_connections",
    "Connections of the request pool, by state (in_use, idle)",
    ["state"],
    multiprocess_mode="livesum",
)
POOL_MAX = Gauge(
    "service_db_pool_max_connections",
    "The request pool's maximum size (summed over worker processes)",
    multiprocess_mode="livesum",
)
READ_POOL_CONNECTIONS = Gauge(
    "service_db_read_pool_connections",
    "Connections of the read replica's pool (DATABASE_READ_URL), by state (in_use, idle)",
    ["state"],
    multiprocess_mode="livesum",
)
READ_REPLICA_USED = Gauge(
    "service_db_read_replica_used",
    "1 while reads go to the read replica, 0 while it cannot serve and they go to the primary",
    multiprocess_mode="livemin",
)
READ_REPLICA_LAG = Gauge(
    "service_db_read_replica_lag_seconds",
    "How far behind its primary the read replica is (measured every 2 s, to within 2 s)",
    multiprocess_mode="livemax",
)
READS_AFTER_WRITES = Counter(
    "service_db_reads_after_writes",
    "Reads of callers who wrote in the last READ_YOUR_WRITES_SECONDS, by the database that "
    "ran them: replica (it had replayed their write) or primary (it had not, or cannot serve)",
    ["database"],
)
SUBSCRIPTIONS = Gauge(
    "service_graphql_subscriptions",
    "Live subscriptions open, over WebSocket or as event streams (summed over worker processes)",
    multiprocess_mode="livesum",
)
LIVE_QUERIES = Gauge(
    "service_graphql_live_queries",
    "Distinct live queries being polled: subscriptions of the same operation, variables and "
    "caller share one (summed over worker processes)",
    multiprocess_mode="livesum",
)
RESPONSE_CACHE = Counter(
    "service_graphql_response_cache",
    "Queries marked @cached, by how they were answered: hit (a kept answer), shared (another "
    "request's run, asked at the same time) or miss (run, and kept unless it had errors)",
    ["result"],
)
LIVE_QUERY_RUNS = Counter(
    "service_graphql_live_query_runs",
    "Runs of live queries' statements, by what came of them: changed (an answer was sent), "
    "unchanged (nothing sent), failed (an error was sent)",
    ["result"],
)
RATE_LIMITED = Counter(
    "service_rate_limited",
    "Operations refused by RATE_LIMITS, by the caller's role",
    ["role"],
)
MIGRATION_STATE = Gauge(
    "service_migration_state",
    "1 for the start phase this service is in: waiting (for the database), migrating, done, failed",
    ["state"],
    multiprocess_mode="livemax",
)
SCHEMA_NEWER = Gauge(
    "service_schema_newer_than_code",
    "1 when the database was migrated past this code's head (a rolling deploy in progress)",
    multiprocess_mode="livemax",
)

MIGRATION_STATES = ("waiting", "migrating", "done", "failed")

# GraphQL names: what a well-behaved client sends. Anything else is counted as "other".
_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,63}")
_FIXED_LABELS = {"anonymous", "invalid", "none", "other"}


class OperationLabels:
    """Operation names as label values, at most `limit` distinct ones per process.

    Names are chosen by clients: without a cap, a client sending random names would create a
    time series per name.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.seen: set[str] = set()

    def __call__(self, name: str | None) -> str:
        if not name:
            return "none"
        if name in self.seen or name in _FIXED_LABELS:
            return name
        if len(self.seen) >= self.limit or not _NAME.fullmatch(name):
            return "other"
        self.seen.add(name)
        return name


def set_migration_state(state: str) -> None:
    for each in MIGRATION_STATES:
        MIGRATION_STATE.labels(each).set(1 if each == state else 0)


def multiprocess_dir() -> str | None:
    path = os.environ.get(MULTIPROC_ENV)
    return path if path and os.path.isdir(path) else None


def _forget_dead_processes(path: str) -> None:
    # A worker that died without cleaning up (killed, then replaced by uvicorn) would otherwise
    # keep counting in the "live" gauges.
    for file in glob.glob(os.path.join(path, "gauge_live*_*.db")):
        pid = os.path.basename(file).rsplit("_", 1)[-1].removesuffix(".db")
        if pid.isdigit() and not _alive(int(pid)):
            multiprocess.mark_process_dead(int(pid), path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def mark_this_process_dead() -> None:
    path = multiprocess_dir()
    if path is not None:
        multiprocess.mark_process_dead(os.getpid(), path)


def _exposition(gzipped: bool) -> bytes:
    path = multiprocess_dir()
    if path is None:
        text = generate_latest(REGISTRY)
    else:
        _forget_dead_processes(path)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path)
        text = generate_latest(registry)
    # Prometheus asks for gzip; a hundred operations' histograms are hundreds of kB of text.
    return gzip.compress(text, compresslevel=1, mtime=0) if gzipped else text


async def metrics(request: Request) -> Response:
    refresh = getattr(request.app.state, "refresh_metrics", None)
    if refresh is not None:
        refresh()
    gzipped = accepts_coding(request.headers.get("accept-encoding", ""), "gzip")
    # Reading the other processes' files is file I/O: off the event loop.
    body = await run_in_threadpool(_exposition, gzipped)
    headers = {"Vary": "Accept-Encoding"}
    if gzipped:
        headers["Content-Encoding"] = "gzip"
    return Response(body, media_type=CONTENT_TYPE_LATEST, headers=headers)
