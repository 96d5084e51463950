"""The asyncpg pool that serves requests: no ORM, JSON straight through as bytes."""

from __future__ import annotations

import asyncpg

from service.db.url import DatabaseURL
from service.settings import Settings


async def _init_connection(connection: asyncpg.Connection) -> None:
    # PostgreSQL builds each response's JSON; binary `json` is its text, passed on undecoded.
    await connection.set_type_codec(
        "json", schema="pg_catalog", encoder=lambda b: b, decoder=lambda b: b, format="binary"
    )


async def _no_reset(connection: asyncpg.Connection) -> None:
    # asyncpg's default reset costs a round trip per request. Requests keep no session state:
    # role and claims are transaction-local (set_config(..., true)), so there is nothing to reset.
    return None


async def create_pool(url: DatabaseURL, settings: Settings) -> asyncpg.Pool:
    kwargs = url.asyncpg_kwargs()
    server_settings = dict(kwargs.pop("server_settings", {}))
    server_settings.setdefault("statement_timeout", str(settings.statement_timeout_ms))
    server_settings.setdefault("application_name", "service")
    # db/context.py quotes the caller's claims as a literal; this makes that quoting complete.
    server_settings["standard_conforming_strings"] = "on"
    pool = await asyncpg.create_pool(
        **kwargs,
        min_size=1,
        max_size=settings.db_pool_size,
        init=_init_connection,
        reset=_no_reset,
        max_queries=1_000_000_000,
        timeout=settings.db_connect_timeout,
        command_timeout=None,
        server_settings=server_settings,
    )
    assert pool is not None
    return pool
