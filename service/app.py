"""Builds the Starlette app: routes, middleware, and the lifespan that owns the database pool."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount, Route

from service.auth import Authenticator
from service.db.pool import create_pool
from service.db.url import DatabaseURL
from service.graphql.catalog import Catalog
from service.graphql.execute import Executor, Limits
from service.graphql.schema import build_schema
from service.http.graphiql import ASSETS_PATH, graphiql_assets_app
from service.http.graphql import GraphQLEndpoint
from service.http.health import livez, readyz
from service.logs import setup_logging
from service.settings import Settings, get_settings

log = logging.getLogger("service")


def create_executor(settings: Settings, catalog: Catalog | None = None) -> Executor:
    generated = build_schema(catalog or Catalog.from_registry())
    return Executor(
        generated,
        Limits(
            default_page_size=settings.default_page_size,
            max_page_size=settings.max_page_size,
            max_depth=settings.max_query_depth,
            max_aliases=settings.max_aliases,
            max_tokens=settings.max_tokens,
            introspection=not settings.is_production,
        ),
    )


def create_app(settings: Settings | None = None, executor: Executor | None = None) -> Starlette:
    settings = settings or get_settings()
    setup_logging(settings)  # again: uvicorn's worker processes start from scratch
    executor = executor or create_executor(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.shutting_down = False
        app.state.readiness_cache = None
        app.state.pool = None
        app.state.startup_reason = "connecting to the database"
        if not settings.database_url:
            raise RuntimeError("DATABASE_URL must be set for the app (`service serve` sets it)")
        url = DatabaseURL.parse(settings.database_url)
        app.state.pool = await create_pool(url, settings)
        try:
            yield
        finally:
            app.state.shutting_down = True
            await app.state.pool.close()

    graphiql = not settings.is_production
    endpoint = GraphQLEndpoint(
        executor,
        Authenticator(settings),
        max_body_bytes=settings.max_body_bytes,
        graphiql=graphiql,
    )
    routes: list[BaseRoute] = [
        Route("/graphql", endpoint.handle, methods=["GET", "POST"]),
        Route("/livez", livez, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
    ]
    if graphiql:
        routes.append(Mount(ASSETS_PATH, app=graphiql_assets_app()))
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.executor = executor
    app.state.settings = settings
    return app
