"""SQLAlchemy's async engine, for migrations and command-line tools (not the request path)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from service.db.url import DatabaseURL


def create_engine(url: DatabaseURL, *, timeout: float = 5.0) -> AsyncEngine:
    # The same connection arguments as the request pool: query parameters of DATABASE_URL other
    # than `ssl` are server settings (e.g. `?application_name=...`), which SQLAlchemy's asyncpg
    # dialect would otherwise pass to asyncpg.connect() as unknown keywords.
    kwargs = url.asyncpg_kwargs()
    connect_args: dict[str, Any] = {"timeout": timeout}
    for key in ("ssl", "server_settings"):
        if key in kwargs:
            connect_args[key] = kwargs[key]
    return create_async_engine(
        url.url.set(query={}),
        pool_pre_ping=True,
        connect_args=connect_args,
    )
