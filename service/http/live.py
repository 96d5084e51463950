"""Live queries shared between subscribers: one poll for everyone who asked the same thing as
the same caller.

A thousand browsers watching the same feed anonymously would otherwise cost a thousand
statements a second for one answer. Subscriptions are shared when their document, operation,
variables, role and claims are all equal, so Row Level Security sees exactly the caller it
would have seen for each of them: two users never share (their claims differ), and neither do
two tokens of one user (their `exp` differ), since a policy may read any claim.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from service.graphql.errors import LimitExceeded
from service.http.metrics import LIVE_QUERIES, LIVE_QUERY_RUNS

_CHANGED, _UNCHANGED, _FAILED = (
    LIVE_QUERY_RUNS.labels(r) for r in ("changed", "unchanged", "failed")
)

log = logging.getLogger("service.websocket")

# What one run gave: ("next", the answer's JSON), ("failed", an answer with errors that may
# pass: the database busy or away, a statement timed out; tried again next tick) or ("error",
# the errors that end the operation: it could never run); a stream subscription's: ("batch",
# a Batch).
Outcome = tuple[str, Any]


@dataclass(frozen=True)
class Batch:
    """A stream subscription's run: its answer when rows came (None when none did), the
    cursor of the last of them, and whether more follow already."""

    body: bytes | None
    end: str | None
    more: bool


@dataclass(eq=False)
class Listener:
    """One subscription of one socket: where a shared poll delivers."""

    send_next: Callable[[bytes], Awaitable[None]]
    send_errors: Callable[[list[dict[str, Any]]], Awaitable[None]]
    ended: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    async def deliver(self, outcome: Outcome) -> None:
        kind, value = outcome
        try:
            if kind != "error":
                await self.send_next(value)
            else:
                await self.send_errors(value)
                self.end()
        except Exception:  # the socket went away under us: the socket itself cleans up
            self.end()

    def end(self) -> None:
        if not self.ended.done():
            self.ended.set_result(None)


class _Poll:
    """One query run every period for its listeners; the latest answer kept for newcomers."""

    def __init__(self, run: Callable[[], Awaitable[Outcome]], period: float) -> None:
        self.run = run
        self.period = period
        self.listeners: set[Listener] = set()
        self.latest: bytes | None = None
        self.task: asyncio.Task[None] | None = None

    async def loop(self, on_stop: Callable[[], None]) -> None:
        try:
            while self.listeners:
                outcome = await self.run()
                kind, body = outcome
                if kind == "error":
                    _FAILED.inc()
                    await self._deliver(outcome)  # the same error for all: they all end
                    return
                changed = body != self.latest  # an outage is said once, and so is the answer
                (_FAILED if kind == "failed" else _CHANGED if changed else _UNCHANGED).inc()
                if changed:
                    self.latest = body
                    await self._deliver(outcome)
                await asyncio.sleep(self.period)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("a live query's poll failed")
            for listener in list(self.listeners):
                listener.end()
        finally:
            on_stop()

    async def _deliver(self, outcome: Outcome) -> None:
        await asyncio.gather(*(listener.deliver(outcome) for listener in list(self.listeners)))


def answer_key(
    source: tuple[Any, ...], variables: dict[str, Any] | None, caller: Any
) -> tuple[Any, ...]:
    """What makes two runs of an operation give the same answer, so that subscriptions share
    one poll and `@cached` queries one kept answer (response_cache.py): the same document and
    operation (`source`), variables and caller (role and claims)."""
    return (
        *source,
        orjson.dumps(variables or {}, option=orjson.OPT_SORT_KEYS),
        caller.role,
        caller.claims_json,
    )


class LiveQueries:
    """The polls of one process, by what they run and as whom."""

    def __init__(self, period: float, max_polls: int = 1000) -> None:
        self.period = period
        self.max_polls = max_polls  # each one a statement a period: the database's load
        self.polls: dict[tuple[Any, ...], _Poll] = {}
        self.streams = 0  # stream subscriptions: a statement a period each, never shared

    async def _refused(self, listener: Listener) -> bool:
        """Is this server polling as much as it may? Then the listener is told so."""
        if len(self.polls) + self.streams < self.max_polls:
            return False
        full = LimitExceeded(
            f"this server polls {self.max_polls} distinct live queries already: try again "
            "later, or subscribe to one that is running"
        )
        await listener.deliver(("error", [full.to_dict()]))
        return True

    async def listen(
        self,
        key: tuple[Any, ...],
        run: Callable[..., Awaitable[Outcome]],
        listener: Listener,
        *,
        stream: bool = False,
    ) -> None:
        """Delivers to `listener` until the query ends or the caller cancels: joins the poll
        of `key` (the latest answer at once), or starts it with `run`. A `stream`
        subscription polls alone instead: see _follow."""
        if stream:
            await self._follow(run, listener)
            return
        poll = self.polls.get(key)
        if poll is None and await self._refused(listener):
            return
        if poll is None:
            poll = self.polls[key] = _Poll(run, self.period)
            poll.listeners.add(listener)
            poll.task = asyncio.create_task(poll.loop(lambda: self._stopped(key, poll)))
            LIVE_QUERIES.inc()
        else:
            poll.listeners.add(listener)
            if poll.latest is not None:
                await listener.deliver(("next", poll.latest))
        try:
            await listener.ended
        finally:
            poll.listeners.discard(listener)
            if not poll.listeners and poll.task is not None and not poll.task.done():
                # Nobody listens any more. Out of the registry now, not once the cancelled
                # task has unwound: a newcomer with the same key must start a poll of its own.
                if self.polls.get(key) is poll:
                    del self.polls[key]
                poll.task.cancel()

    def _stopped(self, key: tuple[Any, ...], poll: _Poll) -> None:
        if self.polls.get(key) is poll:
            del self.polls[key]
        LIVE_QUERIES.dec()
        for listener in list(poll.listeners):
            listener.end()

    async def _follow(self, run: Callable[..., Awaitable[Outcome]], listener: Listener) -> None:
        """A stream subscription's new rows, for `listener` alone (where it has read to is
        its own), until it ends: `run(after=...)` reads the rows after that cursor (None:
        where the subscription said to start)."""
        if await self._refused(listener):
            return
        self.streams += 1
        LIVE_QUERIES.inc()
        task = asyncio.create_task(self._read_on(run, listener))
        try:
            await listener.ended
        finally:
            task.cancel()
            self.streams -= 1
            LIVE_QUERIES.dec()

    async def _read_on(self, run: Callable[..., Awaitable[Outcome]], listener: Listener) -> None:
        after: str | None = None
        failure = None  # an outage is said once
        try:
            while True:
                kind, value = await run(after=after)
                if kind == "error":
                    _FAILED.inc()
                    await listener.deliver((kind, value))
                    return
                more = False
                if kind == "failed":
                    _FAILED.inc()
                    if value != failure:
                        failure = value
                        await listener.deliver((kind, value))
                elif value.body is None:  # no rows after the cursor yet
                    _UNCHANGED.inc()
                else:
                    _CHANGED.inc()
                    failure = None
                    after, more = value.end, value.more
                    await listener.deliver(("next", value.body))
                # a full page: the next one at once (after letting others run)
                await asyncio.sleep(0 if more else self.period)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("a stream subscription's run failed")
            listener.end()
