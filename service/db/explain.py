"""EXPLAIN for developers: each statement an operation sends, with PostgreSQL's plan for it.

A request asks with the header `X-Explain: on` (the plan) or `X-Explain: analyze` (the plan as
it ran, with timings; queries only, since it runs the statement a second time). The plans come
from the same connection, as the same caller, right after each statement: row-level security
shapes them as it shaped the statement. Turned on by ALLOW_EXPLAIN (by default in development).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
import orjson

T = TypeVar("T")

EXPLAIN_MODES = {"on": "EXPLAIN ", "analyze": "EXPLAIN (ANALYZE, BUFFERS) "}


def explain_mode(header: str | None) -> str | None:
    """The header's mode ("on" or "analyze"), None when absent or off; ValueError otherwise."""
    if header is None:
        return None
    value = header.strip().lower()
    if value in ("", "off", "false", "0"):
        return None
    if value in ("true", "1"):
        return "on"
    if value not in EXPLAIN_MODES:
        raise ValueError("X-Explain: send `on` (the plans) or `analyze` (the plans as they ran)")
    return value


class Explanations:
    """Collects the statements an operation's work sends, and their plans."""

    def __init__(self, mode: str) -> None:
        self.prefix = EXPLAIN_MODES[mode]
        self.found: list[dict[str, str]] = []

    def watching(
        self, work: Callable[[asyncpg.Connection], Awaitable[T]], database: str | None = None
    ) -> Callable[[asyncpg.Connection], Awaitable[T]]:
        """`work` as it is, on a connection that explains each statement after running it;
        `database`: which one that connection is ("primary", "replica"), said with each
        statement when the service has a read replica."""

        async def explained(connection: asyncpg.Connection) -> T:
            return await work(_Explaining(connection, self, database))  # type: ignore[arg-type]

        return explained

    def added_to(self, body: bytes) -> bytes:
        """A response body with the plans in its `extensions.explain`."""
        response = orjson.loads(body)
        response.setdefault("extensions", {})["explain"] = self.found
        return orjson.dumps(response)

    async def explain(
        self,
        connection: asyncpg.Connection,
        sql: str,
        args: tuple[Any, ...],
        database: str | None = None,
    ) -> None:
        rows = await connection.fetch(self.prefix + sql, *args)
        found = {"sql": sql, "plan": "\n".join(row[0] for row in rows)}
        if database is not None:
            found["database"] = database
        self.found.append(found)


class _Explaining:
    """The few asyncpg calls the executor makes, each followed by its EXPLAIN."""

    def __init__(
        self, connection: asyncpg.Connection, explanations: Explanations, database: str | None
    ) -> None:
        self._connection = connection
        self._explanations = explanations
        self._database = database

    def __getattr__(self, name: str) -> Any:
        # anything else the work may call runs as it is, unexplained
        return getattr(self._connection, name)

    async def fetch(self, sql: str, *args: Any) -> Any:
        return await self._explained(self._connection.fetch, sql, args)

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        return await self._explained(self._connection.fetchrow, sql, args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return await self._explained(self._connection.fetchval, sql, args)

    async def _explained(self, call: Any, sql: str, args: tuple[Any, ...]) -> Any:
        result = await call(sql, *args)
        await self._explanations.explain(self._connection, sql, args, self._database)
        return result
