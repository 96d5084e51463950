"""Builds the Starlette app: routes, middleware, and the lifespan that owns the database pool.

Under `service serve` the app listens before the database is ready: the lifespan starts a
background task that waits for the database and migrates (db/startup.py) while `/livez`
answers 200 and `/readyz` 503 with the reason; GraphQL requests get a 503 until the pool exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from types import FrameType

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from service.auth import Authenticator
from service.db.context import CallerContext
from service.db.pool import create_pools, pool_usage
from service.db.startup import Phase, Startup
from service.db.url import DatabaseURL
from service.errors import StartupError
from service.events import EventDeliverer, Webhooks
from service.graphql.catalog import Catalog
from service.graphql.execute import Executor, Limits
from service.graphql.schema import build_schema
from service.http.compress import ResponseCompression
from service.http.graphiql import ASSETS_PATH, graphiql_assets_app
from service.http.graphql import GraphQLEndpoint
from service.http.health import livez, readyz
from service.http.live import LiveQueries
from service.http.metrics import (
    POOL_CONNECTIONS,
    POOL_MAX,
    READ_POOL_CONNECTIONS,
    READ_REPLICA_LAG,
    READ_REPLICA_USED,
    SCHEMA_NEWER,
    mark_this_process_dead,
    metrics,
    multiprocess_dir,
    set_migration_state,
)
from service.http.observe import RequestObserver
from service.http.persisted import PersistedQueries, load_trusted_documents
from service.http.rate_limit import RateLimiter
from service.http.response_cache import ResponseCache
from service.http.rest import METHODS, RestEndpoints, load_rest_routes
from service.http.rest import ROUTE as REST_ROUTE
from service.http.sse import EventStreams
from service.http.websocket import GraphQLWebSocket
from service.logs import setup_logging
from service.schedules import EventScheduler
from service.settings import Settings, get_settings
from service.tracing import Tracing

log = logging.getLogger("service")


def create_executor(settings: Settings, catalog: Catalog | None = None) -> Executor:
    generated = build_schema(catalog or Catalog.from_registry(), federation=settings.federation)
    return Executor(
        generated,
        Limits(
            default_page_size=settings.default_page_size,
            max_page_size=settings.max_page_size,
            max_depth=settings.max_query_depth,
            max_rows=settings.max_query_rows,
            max_aliases=settings.max_aliases,
            max_tokens=settings.max_tokens,
            introspection=not settings.is_production,
        ),
    )


def persisted_queries(settings: Settings, executor: Executor) -> PersistedQueries:
    """Automatic persisted queries, and the trusted documents of TRUSTED_DOCUMENTS_FILE."""
    path = settings.trusted_documents_file
    if path is None:
        return PersistedQueries()
    trusted = load_trusted_documents(path)
    # Said at start rather than at the first request: a manifest built for another schema.
    invalid = [i for i, d in trusted.items() if executor.prepare(d, None).errors]
    if invalid:
        log.warning(
            "%d of the %d trusted documents in %s are not valid against this schema "
            "(ids %s): requests for them will fail",
            len(invalid),
            len(trusted),
            path,
            ", ".join(invalid[:5]) + (", ..." if len(invalid) > 5 else ""),
        )
    only = "; no other query text runs" if settings.trusted_documents_only else ""
    log.info("%d trusted documents from %s%s", len(trusted), path, only)
    return PersistedQueries(trusted=trusted, trusted_only=settings.trusted_documents_only)


@dataclass
class Launch:
    """How `service serve` starts the app: prepare the database first, in the background."""

    # None: the database is ready already (the workers of `--workers N`: their parent did it).
    startup: Startup | None
    # False for the parent of `--workers N`: it only prepares the database, then hands the
    # socket to the workers.
    serve: bool = True
    # Ends the server: called when the start failed, or when it is done and `serve` is False.
    stop_server: Callable[[], None] = lambda: None
    # Finish in-flight requests on SIGTERM after /readyz turned 503 (see _drain_on_sigterm).
    drain_on_sigterm: bool = True


def create_app(
    settings: Settings | None = None,
    executor: Executor | None = None,
    *,
    launch: Launch | None = None,
) -> Starlette:
    """The app. Without `launch` (tests, tools) the pool exists from the start."""
    settings = settings or get_settings()
    setup_logging(settings)  # again: uvicorn's worker processes start from scratch
    executor = executor or create_executor(settings)
    database = (
        DatabaseURL.parse(settings.database_url).url.database if settings.database_url else None
    )
    tracing = Tracing.from_settings(settings, database)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state = app.state
        state.shutting_down = False
        state.stopping = asyncio.Event()  # set as the server stops: event streams end
        state.readiness_cache = None
        state.pools = None  # db/pool.py's Pools, once the database is ready to serve
        state.startup_reason = "starting"
        state.refresh_metrics = lambda: _refresh_pool_metrics(app)
        if not settings.database_url:
            raise RuntimeError("DATABASE_URL must be set for the app (`service serve` sets it)")
        url = DatabaseURL.parse(settings.database_url)
        tasks: list[asyncio.Task[None]] = []
        state.event_deliveries = None
        state.event_schedules = None
        state.replica_watch = None
        if launch is None:
            await _serve_database(app, url, settings)
        else:
            tasks.append(asyncio.create_task(_launch(app, launch, url, settings)))
            if launch.drain_on_sigterm:
                _drain_on_sigterm(app, settings)
        if multiprocess_dir() is not None:
            # Each worker writes its own pool gauges; a scrape reads them all.
            tasks.append(asyncio.create_task(_refresh_periodically(app)))
        # The schema, caches and modules built so far live as long as the process: keep them
        # out of the garbage collector's scans (a few µs off every request).
        gc.freeze()
        try:
            yield
        finally:
            state.shutting_down = True
            if state.event_deliveries is not None:
                tasks.append(state.event_deliveries)
            if state.event_schedules is not None:
                tasks.append(state.event_schedules)
            if state.replica_watch is not None:
                tasks.append(state.replica_watch)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if state.pools is not None:
                await state.pools.close()
                log.info("database pool closed")
            if launch is None or launch.serve:
                # (The parent of --workers keeps its migration gauges for the workers' scrapes.)
                mark_this_process_dead()
            if tracing is not None:
                await asyncio.to_thread(tracing.shutdown)  # the last spans, sent

    graphiql = not settings.is_production
    endpoint = GraphQLEndpoint(
        executor,
        Authenticator(settings),
        max_body_bytes=settings.max_body_bytes,
        max_batch=settings.max_batch_operations,
        graphiql=graphiql,
        caller_context=CallerContext(
            session_state=settings.database_pooler != "pgbouncer",
            wait_timeout=settings.db_pool_timeout,
        ),
        tracing=tracing,
        allow_explain=settings.explain_allowed,
        persisted=persisted_queries(settings, executor),
        response_cache=ResponseCache(
            executor.schema.get_directive("cached"),  # type: ignore[arg-type]
            max_bytes=settings.response_cache_max_bytes,
            max_ttl=settings.response_cache_max_ttl,
        ),
        compression=ResponseCompression(
            level=settings.gzip_level, min_bytes=settings.gzip_min_bytes
        ),
        rate_limiter=RateLimiter(settings.rate_limits) if settings.rate_limits else None,
        read_your_writes_seconds=settings.read_your_writes_seconds,
    )

    # Subscriptions over WebSocket and event streams share their polls (live.py).
    live_queries = LiveQueries(settings.subscription_poll_seconds, settings.max_live_queries)
    endpoint.events = EventStreams(
        endpoint, live_queries, keepalive_seconds=settings.sse_keepalive_seconds
    )
    routes: list[BaseRoute] = [
        Route("/graphql", endpoint.handle, methods=["GET", "POST"]),
        WebSocketRoute(
            "/graphql",
            GraphQLWebSocket(
                endpoint,
                live_queries,
                max_subscriptions=settings.max_subscriptions_per_connection,
                max_message_bytes=settings.max_body_bytes,
            ).handle,
        ),
        Route("/livez", livez, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    if settings.rest_endpoints_file is not None:
        rest_routes = load_rest_routes(settings.rest_endpoints_file, executor)
        log.info("%d REST endpoints from %s", len(rest_routes), settings.rest_endpoints_file)
        rest = RestEndpoints(endpoint, rest_routes)
        routes.append(Route(REST_ROUTE, rest.handle, methods=list(METHODS)))
    if graphiql:
        routes.append(Mount(ASSETS_PATH, app=graphiql_assets_app()))
    observer = Middleware(
        RequestObserver,
        max_operations=settings.metrics_max_operations,
        quiet_prefixes=(ASSETS_PATH,),
        tracing=tracing,
    )
    shortcut = Middleware(GraphQLShortcut, endpoint=endpoint.post)
    middleware = [observer, shortcut]
    if settings.cors_origins:
        # Outermost: a browser's preflight is answered here, not logged or counted as an
        # operation. Tokens travel in the Authorization header, never in cookies: the one
        # cookie, with a read replica, is read_after (http/graphql.py), which grants nothing.
        cors = Middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=bool(
                settings.database_read_url and settings.read_your_writes_seconds
            ),
            allow_methods=list(METHODS) if settings.rest_endpoints_file else ["GET", "POST"],
            allow_headers=[
                "authorization",
                "content-type",
                "accept",
                "x-request-id",
                *(["x-explain"] if settings.explain_allowed else []),  # a frontend's developer
            ],
            expose_headers=["x-request-id"],
            max_age=600,
        )
        middleware.insert(0, cors)
    app = Starlette(routes=routes, lifespan=lifespan, middleware=middleware)
    app.state.executor = executor
    app.state.settings = settings
    return app


class GraphQLShortcut:
    """POST /graphql straight to its endpoint as plain ASGI, past the router.

    The same endpoint and answers as through the route (`GraphQLEndpoint.handle`), without the
    router, the route's request/response wrapper and Starlette's Request and Response objects:
    together about 10 µs of a ~100 µs request (measured in-process). Everything else, and
    /graphql under a root path, takes the usual way. Inside the request observer and
    Starlette's outermost error handler, like every route.
    """

    def __init__(self, app: ASGIApp, endpoint: ASGIApp) -> None:
        self.app = app
        self.endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == "/graphql":
            await self.endpoint(scope, receive, send)
            return
        await self.app(scope, receive, send)


def worker_app() -> Starlette:
    """The app of each `--workers N` process (uvicorn's factory): the parent has already
    waited for the database and migrated it."""
    settings = get_settings()
    return create_app(settings, launch=Launch(startup=None))


async def _launch(app: Starlette, launch: Launch, url: DatabaseURL, settings: Settings) -> None:
    state = app.state
    startup = launch.startup

    def on_phase(phase: Phase) -> None:
        state.startup_reason = phase.value
        set_migration_state(phase.name)

    if startup is not None:
        startup.on_phase = on_phase
        try:
            verdict = await startup.run()
        except StartupError as error:
            log.error("%s", error)
            launch.stop_server()
            return
        except Exception:
            startup.error = "unexpected error"
            log.exception("start failed")
            launch.stop_server()
            return
        SCHEMA_NEWER.set(1 if verdict.state == "newer" else 0)
    if not launch.serve:
        launch.stop_server()
        return
    await _serve_database(app, url, settings)
    log.info("ready to serve")


async def _serve_database(app: Starlette, url: DatabaseURL, settings: Settings) -> None:
    """The request pools, and the background work beside them: the read replica's watch
    (with DATABASE_READ_URL, db/pool.py), event deliveries (with EVENT_WEBHOOKS) and
    scheduled events (with EVENT_SCHEDULES)."""
    pools = app.state.pools = await create_pools(url, settings)
    if pools.replica is not None:
        app.state.replica_watch = asyncio.create_task(pools.watch_replica())
    _start_event_workers(app, settings)


def _start_event_workers(app: Starlette, settings: Settings) -> None:
    """With EVENT_WEBHOOKS, this process delivers the event log's events (events.py), and
    with EVENT_SCHEDULES writes the schedules' events into it (schedules.py), each over its
    own connection straight to PostgreSQL (LISTEN): MIGRATION_DATABASE_URL's, else
    DATABASE_URL's."""
    if not settings.event_webhooks:
        return
    url = settings.migration_database_url or settings.database_url
    assert url is not None
    secret = settings.event_webhook_secret
    webhooks = Webhooks(
        urls=settings.event_webhooks,
        secret=None if secret is None else secret.get_secret_value(),
        max_tries=settings.event_max_tries,
        retry_seconds=settings.event_retry_seconds,
        timeout_seconds=settings.event_timeout_seconds,
        retention_days=settings.event_retention_days,
    )
    deliverer = EventDeliverer(DatabaseURL.parse(url), webhooks)
    app.state.event_deliveries = asyncio.create_task(deliverer.run())
    if settings.event_schedules:
        scheduler = EventScheduler(
            DatabaseURL.parse(url),
            settings.event_schedules,
            grace_seconds=settings.event_schedule_grace_seconds,
        )
        app.state.event_schedules = asyncio.create_task(scheduler.run())


def _refresh_pool_metrics(app: Starlette) -> None:
    pools = app.state.pools
    if pools is None:
        return
    in_use, idle = pool_usage(pools.primary)
    POOL_CONNECTIONS.labels("in_use").set(in_use)
    POOL_CONNECTIONS.labels("idle").set(idle)
    POOL_MAX.set(pools.primary.get_max_size())
    if pools.replica is not None:
        in_use, idle = pool_usage(pools.replica)
        READ_POOL_CONNECTIONS.labels("in_use").set(in_use)
        READ_POOL_CONNECTIONS.labels("idle").set(idle)
        READ_REPLICA_USED.set(0 if pools.replica_problem else 1)
        if pools.replica_lag is not None:
            READ_REPLICA_LAG.set(pools.replica_lag)


async def _refresh_periodically(app: Starlette) -> None:
    while True:
        _refresh_pool_metrics(app)
        await asyncio.sleep(2)


def _drain_on_sigterm(app: Starlette, settings: Settings) -> None:
    """On SIGTERM: /readyz turns 503 at once; uvicorn's own graceful shutdown (stop accepting,
    finish in-flight requests within the grace period) starts `shutdown_drain_seconds` later.

    The delay gives load balancers that poll /readyz time to stop sending new requests; on
    Kubernetes a preStop sleep does the same. A second SIGTERM stops without waiting, and so
    does SIGINT (Ctrl-C). When uvicorn's shutdown starts, open event streams end (sse.py):
    they would otherwise hold the exit for the whole grace period.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    server_handler = signal.getsignal(signal.SIGTERM)
    interrupt_handler = signal.getsignal(signal.SIGINT)
    if not callable(server_handler) or not callable(interrupt_handler):
        return  # not under uvicorn's signal handling (e.g. embedded in a test's server)
    loop = asyncio.get_running_loop()
    delay = settings.shutdown_drain_seconds

    def end_streams() -> None:
        app.state.shutting_down = True
        loop.call_soon_threadsafe(app.state.stopping.set)

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        if app.state.shutting_down:
            end_streams()
            server_handler(signum, frame)
            return
        app.state.shutting_down = True
        log.info(
            "SIGTERM: not ready any more; closing the listener in %g s, then in-flight "
            "requests get up to %g s",
            delay,
            settings.shutdown_grace_seconds,
        )

        def stop() -> None:
            end_streams()
            server_handler(signum, frame)

        loop.call_soon_threadsafe(lambda: loop.call_later(delay, stop))

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        end_streams()
        interrupt_handler(signum, frame)

    signal.signal(signal.SIGTERM, on_sigterm)
    signal.signal(signal.SIGINT, on_sigint)
