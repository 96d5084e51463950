"""Run a piece of work on a pooled connection as the caller: the role and claims RLS sees.

Two ways, by where the connection goes:
- Straight to PostgreSQL (or PgBouncer in session mode): each connection remembers which
  caller it was last set up for and keeps that as session state; the settings are sent again
  only when the caller differs. A request by the same kind of caller then costs one round trip:
  its statement. A fresh connection starts as `anon`, never as the login role.
- Through PgBouncer in transaction mode, where session state would reach other clients: every
  operation is `BEGIN; set_config(..., true)` (one round trip), the work, then `COMMIT`, and the
  settings end with the transaction.
Either way the role and claims are set before any statement of the caller runs, and a
connection whose state is in doubt (an error while setting it) is closed, not reused.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg

from service.auth import ANONYMOUS, Principal
from service.db.line import ConnectionLine

T = TypeVar("T")


def _literal(text: str) -> str:
    # standard_conforming_strings is on (forced for our connections in pool.py): only the
    # quote needs doubling. NUL cannot be in a PostgreSQL string at all.
    if "\x00" in text:
        raise ValueError("NUL in a setting")
    return "'" + text.replace("'", "''") + "'"


def _set_caller(principal: Principal, *, local: bool) -> str:
    scope = "true" if local else "false"
    # `claim.sub` beside the claims, as Supabase does: auth.uid() reads it without parsing
    # JSON (migration 0005). Always all three, so nothing of a previous caller remains.
    return (
        f"SELECT set_config('role', {_literal(principal.role)}, {scope}), "
        f"set_config('request.jwt.claims', {_literal(principal.claims_json)}, {scope}), "
        f"set_config('request.jwt.claim.sub', {_literal(principal.user_id or '')}, {scope})"
    )


class ServiceConnection(asyncpg.Connection):  # type: ignore[misc]
    """A pooled connection that knows which caller its session is set up for (and, to a
    standby, how far that standby has replayed).

    Methods, not attributes: the pool hands out proxies that pass method calls through.
    """

    _caller: str | None = None  # role + claims, or None when unknown
    _replayed = 0  # on a standby: the furthest WAL replay seen (db/wal.py)

    def caller(self) -> str | None:
        return self._caller

    def remember_caller(self, key: str | None) -> None:
        self._caller = key

    def replayed(self) -> int:
        return self._replayed

    def saw_replay(self, position: int) -> None:
        self._replayed = max(self._replayed, position)


async def start_as_anonymous(connection: asyncpg.Connection) -> None:
    """For the pool's `init`: a new session starts as anonymous, never as the login role."""
    await connection.execute(_set_caller(ANONYMOUS, local=False))
    connection.remember_caller(_key(ANONYMOUS))


def _key(principal: Principal) -> str:
    return principal.role + "\x00" + principal.claims_json


class CallerContext:
    def __init__(self, *, session_state: bool, wait_timeout: float = 30.0) -> None:
        self.session_state = session_state
        self.wait_timeout = wait_timeout  # for a turn on a connection (see line.py)
        # One line per pool (the primary's; a read replica's)
        self._lines: dict[asyncpg.Pool, ConnectionLine] = {}

    def _line_for(self, pool: asyncpg.Pool) -> ConnectionLine:
        line = self._lines.get(pool)
        if line is None:
            line = self._lines[pool] = ConnectionLine(pool, wait_timeout=self.wait_timeout)
        return line

    async def run(
        self,
        pool: asyncpg.Pool,
        principal: Principal,
        work: Callable[[asyncpg.Connection], Awaitable[T]],
        *,
        atomic: bool,
    ) -> T:
        """Run `work` as `principal`; `atomic` work (several statements) gets a transaction."""
        line = self._line_for(pool)
        connection = await line.take()
        done = False
        try:
            result = await self._as_caller(connection, principal, work, atomic=atomic)
            done = True
            return result
        finally:
            await line.give_back(connection, reusable=done)

    async def _as_caller(
        self,
        connection: Any,
        principal: Principal,
        work: Callable[[asyncpg.Connection], Awaitable[T]],
        *,
        atomic: bool,
    ) -> T:
        if not self.session_state:
            return await self._in_transaction(connection, _set_caller(principal, local=True), work)
        key = _key(principal)
        if connection.caller() != key:
            connection.remember_caller(None)  # unknown until the settings are confirmed
            try:
                await connection.execute(_set_caller(principal, local=False))
            except BaseException:
                connection.terminate()
                raise
            connection.remember_caller(key)
        if atomic:
            return await self._in_transaction(connection, "", work)
        return await work(connection)

    @staticmethod
    async def _in_transaction(
        connection: Any, setup: str, work: Callable[[asyncpg.Connection], Awaitable[T]]
    ) -> T:
        await connection.execute("BEGIN; " + setup if setup else "BEGIN")
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
