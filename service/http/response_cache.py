"""Answers kept for a while: queries marked `@cached(ttl: 60)`, as Hasura's response cache.

A query the client marks `@cached` is answered from this process's memory while an earlier
answer to the same query is fresh: the same document and operation, the same variables and
the same caller (role and claims, so the same token's: anonymous callers share answers, and no
user is ever given another's). Row Level Security decided what that answer holds, for that
caller; it lacks only the changes made since, which a client asking for `@cached(ttl: 60)`
accepts for up to a minute.

Callers asking the same at the same time share one run: a popular feed whose answer expires
under load sends the database one statement, not one per waiting request. Only answers
without errors are kept, at most `max_bytes` of them, least recently used out first; one
larger than a tenth of that is not kept. Each process keeps its own (workers and replicas do
not share).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from graphql import GraphQLDirective, IntValueNode, VariableNode

from service.auth import Principal
from service.graphql.errors import BadUserInput
from service.graphql.execute import Document, Result
from service.http.live import answer_key
from service.http.metrics import RESPONSE_CACHE

# What an entry costs besides its answer (its key, whose query text the document cache
# shares, and bookkeeping), roughly.
_ENTRY_OVERHEAD = 512

Key = tuple[Any, ...]  # live.answer_key


@dataclass(frozen=True, slots=True)
class _Kept:
    result: Result
    stored: float  # time.monotonic()
    ttl: int
    size: int

    @property
    def expires(self) -> float:
        return self.stored + self.ttl


@dataclass(frozen=True, slots=True)
class Cached:
    """An answer from the cache or kept in it: its age and how much longer it stays fresh,
    in whole seconds (a response's `Age` and `Cache-Control: max-age`)."""

    result: Result
    age: int
    max_age: int


class ResponseCache:
    def __init__(self, directive: GraphQLDirective, *, max_bytes: int, max_ttl: int) -> None:
        self.directive = directive  # the schema's @cached (service/graphql/schema.py)
        self.max_bytes = max_bytes  # 0: nothing is kept (@cached is accepted, and ignored)
        self.max_ttl = max_ttl
        self.size = 0  # bytes kept
        self._kept: OrderedDict[Key, _Kept] = OrderedDict()  # least recently used first
        self._running: dict[Key, asyncio.Future[_Kept | None]] = {}

    def ttl(self, prepared: Document, variables: dict[str, Any] | None) -> int | None:
        """The operation's `@cached(ttl:)`, or None when it has no such directive (or the
        variable it names is missing or not a number: the run reports that)."""
        operation = prepared.operation
        if operation is None or not operation.directives:
            return None
        directive = next((d for d in operation.directives if d.name.value == "cached"), None)
        if directive is None:
            return None
        node = next((a.value for a in directive.arguments or () if a.name.value == "ttl"), None)
        if node is None:
            default: int = self.directive.args["ttl"].default_value
            return default
        if isinstance(node, VariableNode):
            name = node.name.value
            if variables is not None and name in variables:
                value = variables[name]  # not coerced yet
                return value if type(value) is int else None
            # not given: the variable's default, if it has one
            node = next(
                (
                    definition.default_value
                    for definition in operation.variable_definitions or ()
                    if definition.variable.name.value == name
                ),
                None,
            )
        return int(node.value) if isinstance(node, IntValueNode) else None

    async def answer(
        self,
        prepared: Document,
        variables: dict[str, Any] | None,
        principal: Principal,
        ttl: int,
        run: Callable[[], Awaitable[Result]],
    ) -> Cached | Result:
        """The kept answer while fresh, else `run()`'s, kept for `ttl` seconds when it has no
        errors (a plain Result when it is not kept). A `ttl` out of range is BadUserInput."""
        if not 1 <= ttl <= self.max_ttl:
            raise BadUserInput(f"@cached: `ttl` must be from 1 to {self.max_ttl} seconds")
        if self.max_bytes == 0:
            return await run()
        key = answer_key(prepared.source, variables, principal)
        kept = self._kept.get(key)
        if kept is not None and kept.expires > time.monotonic():
            self._kept.move_to_end(key)
            RESPONSE_CACHE.labels("hit").inc()
            return _cached(kept)
        running = self._running.get(key)
        if running is not None:
            shared = await asyncio.shield(running)
            if shared is not None:
                RESPONSE_CACHE.labels("shared").inc()
                return _cached(shared)
            # that run failed, or its answer had errors: this caller's own run
        return await self._run(key, ttl, run)

    async def _run(
        self, key: Key, ttl: int, run: Callable[[], Awaitable[Result]]
    ) -> Cached | Result:
        RESPONSE_CACHE.labels("miss").inc()
        future: asyncio.Future[_Kept | None] = asyncio.get_running_loop().create_future()
        self._running[key] = future
        kept = None
        try:
            result = await run()
            if result.outcome == "ok" and len(result.body) <= self.max_bytes // 10:
                now = time.monotonic()
                kept = _Kept(result, now, ttl, len(result.body) + _ENTRY_OVERHEAD)
                self._keep(key, kept)
        finally:
            if self._running.get(key) is future:
                del self._running[key]
            future.set_result(kept)  # to those who waited for it (None: run your own)
        return result if kept is None else _cached(kept)

    def _keep(self, key: Key, kept: _Kept) -> None:
        old = self._kept.pop(key, None)
        if old is not None:
            self.size -= old.size
        self._kept[key] = kept
        self.size += kept.size
        while self.size > self.max_bytes:
            _, evicted = self._kept.popitem(last=False)
            self.size -= evicted.size


def _cached(kept: _Kept) -> Cached:
    age = min(int(time.monotonic() - kept.stored), kept.ttl)
    return Cached(kept.result, age, kept.ttl - age)  # Age + max-age: the ttl asked for
