"""Run a piece of work on a pooled connection as the caller: role and claims per transaction.

`SET LOCAL ROLE` and `set_config(..., true)` end with the transaction, so nothing carries over
to the next user of the connection (or, behind PgBouncer in transaction mode, of the server
connection). BEGIN and the settings travel in one round trip.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg

from service.auth import Principal

T = TypeVar("T")


def _literal(text: str) -> str:
    # standard_conforming_strings is on (forced for our connections in pool.py): only the
    # quote needs doubling. NUL cannot be in a PostgreSQL string at all.
    if "\x00" in text:
        raise ValueError("NUL in a setting")
    return "'" + text.replace("'", "''") + "'"


def begin_as(principal: Principal) -> str:
    return (
        "BEGIN; SELECT set_config('role', "
        + _literal(principal.role)
        + ", true), set_config('request.jwt.claims', "
        + _literal(principal.claims_json)
        + ", true)"
    )


async def run_as(
    pool: asyncpg.Pool,
    principal: Principal,
    work: Callable[[asyncpg.Connection], Awaitable[T]],
) -> T:
    async with pool.acquire() as connection:
        await connection.execute(begin_as(principal))
        try:
            result = await work(connection)
        except BaseException:
            try:
                await connection.execute("ROLLBACK")
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                # A connection that cannot roll back must not serve anyone else.
                connection.terminate()
            raise
        await connection.execute("COMMIT")
        return result
