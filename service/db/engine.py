"""SQLAlchemy's async engine, for migrations and command-line tools (not the request path)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from service.db.url import DatabaseURL


def create_engine(url: DatabaseURL, *, timeout: float = 5.0) -> AsyncEngine:
    return create_async_engine(
        url.sqlalchemy,
        pool_pre_ping=True,
        connect_args={"timeout": timeout},
    )
