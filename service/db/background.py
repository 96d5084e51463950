"""Background work on a connection of its own, straight to PostgreSQL (event deliveries, which
LISTEN; scheduled events): named for pg_stat_activity, made again when it is lost, waiting
twice as long after each failure in a row (at most 30 s)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import asyncpg

from service.db.url import DatabaseURL

log = logging.getLogger("service.events")

_FIRST_PAUSE = 0.5
_LONGEST_PAUSE = 30.0


async def keep_connected(
    url: DatabaseURL,
    application_name: str,
    serve: Callable[[asyncpg.Connection], Awaitable[None]],
    *,
    what: str,
) -> None:
    """Run `serve` on a connection until cancelled; `what` names the work in the log."""
    pause = _FIRST_PAUSE
    while True:
        try:
            kwargs = url.asyncpg_kwargs()
            kwargs["server_settings"] = {
                **kwargs.get("server_settings", {}),
                "application_name": application_name,
            }
            connection = await asyncpg.connect(**kwargs)
            pause = _FIRST_PAUSE  # connected: a later failure starts the waits afresh
            try:
                await serve(connection)
            finally:
                await connection.close()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            log.warning("%s paused: %r; again in %.1f s", what, error, pause)
        except Exception:
            log.exception("%s failed; again in %.1f s", what, pause)
        await asyncio.sleep(pause)
        pause = min(pause * 2, _LONGEST_PAUSE)
