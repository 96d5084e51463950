"""Requests take turns on the pool's connections (service/db/line.py).

Under load they are served in the order they asked: a request overtaken again and again by later
ones waits far longer than the rest, and that is the tail latency a client sees (p99). A request
that is cancelled or fails must neither keep a turn nor pass a broken connection on: either
would leave later requests waiting for ever, or failing. Nor may a request wait without end.
"""

from __future__ import annotations

import asyncio
import itertools
import random

import asyncpg
import pytest

from service.auth import ANONYMOUS
from service.db.context import CallerContext
from service.db.line import NoConnectionInTime
from service.db.pool import close_pool, create_pool, pool_usage
from tests.support import settings_for

WORKERS = 8
ROUNDS = 25
PATIENCE = 10  # seconds: a request not served by then never will be


async def _pool(database, size: int) -> asyncpg.Pool:
    return await create_pool(database, settings_for(database, db_pool_size=size))


async def _backend_pid(context: CallerContext, pool: asyncpg.Pool) -> int:
    async def work(connection) -> int:
        return await connection.fetchval("SELECT pg_backend_pid()")

    return await asyncio.wait_for(context.run(pool, ANONYMOUS, work, atomic=False), PATIENCE)


async def _until_waiting(count: int) -> None:
    """Let the event loop run until `count` more tasks are parked (they all queue at once)."""
    for _ in range(count + 5):
        await asyncio.sleep(0)


async def test_connections_go_to_requests_in_the_order_they_asked(database) -> None:
    # One connection, eight callers that keep asking at moments of their own: releases
    # meet waiters and newcomers at once, as under a load test.
    pool = await _pool(database, 1)
    context = CallerContext(session_state=True)
    tickets = itertools.count()
    served: list[int] = []
    jitter = random.Random(5)

    async def caller() -> None:
        for _ in range(ROUNDS):
            await asyncio.sleep(jitter.uniform(0, 0.001))
            ticket = next(tickets)  # taken just before asking: the order of asking

            async def work(connection, ticket: int = ticket) -> None:
                served.append(ticket)
                await connection.fetchval("SELECT 1")

            await context.run(pool, ANONYMOUS, work, atomic=False)

    try:
        await asyncio.gather(*(caller() for _ in range(WORKERS)))
    finally:
        await close_pool(pool)
    assert len(served) == WORKERS * ROUNDS
    overtaken = [(a, b) for a, b in itertools.pairwise(served) if b < a]
    assert served == sorted(served), f"served out of order, e.g. {overtaken[:5]}"


@pytest.mark.parametrize("when", ["while waiting", "as its turn came"])
async def test_a_cancelled_request_passes_its_turn_on(database, when: str) -> None:
    # A client that hangs up cancels its request: before its turn, or in the instant between
    # being handed a connection and running again.
    pool = await _pool(database, 1)
    context = CallerContext(session_state=True)
    holding, finish = asyncio.Event(), asyncio.Event()
    served: list[str] = []
    cancel_on_return: list[asyncio.Task] = []

    async def request(name: str) -> None:
        async def work(connection) -> None:
            served.append(name)
            await connection.fetchval("SELECT 1")
            if name == "first":
                holding.set()
                await finish.wait()

        await context.run(pool, ANONYMOUS, work, atomic=False)
        for task in cancel_on_return:  # the connection is handed on; cancel its new holder
            task.cancel()

    try:
        first = asyncio.create_task(request("first"))
        await holding.wait()
        cancelled = asyncio.create_task(request("cancelled"))
        last = asyncio.create_task(request("last"))
        await _until_waiting(2)
        if when == "while waiting":
            cancelled.cancel()
        else:
            cancel_on_return.append(cancelled)
        finish.set()
        await asyncio.wait_for(asyncio.gather(first, last), PATIENCE)
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        assert served == ["first", "last"]
        await _backend_pid(context, pool)  # and the line still serves
        assert pool_usage(pool)[0] == 0, "a connection stayed taken"
    finally:
        await close_pool(pool)


async def test_a_broken_connection_is_not_handed_on(database) -> None:
    # The server ended the session while a request used it (a restart, an administrator):
    # the request waiting next gets a new connection from the pool, not the dead one.
    pool = await _pool(database, 1)
    context = CallerContext(session_state=True)
    holding, finish = asyncio.Event(), asyncio.Event()

    async def broken(connection) -> int:
        pid = await connection.fetchval("SELECT pg_backend_pid()")
        holding.set()
        await finish.wait()
        connection.terminate()
        return pid

    try:
        first = asyncio.create_task(context.run(pool, ANONYMOUS, broken, atomic=False))
        await holding.wait()
        waiting = asyncio.create_task(_backend_pid(context, pool))
        await _until_waiting(1)
        finish.set()
        dead_pid = await first
        assert await waiting != dead_pid
    finally:
        await close_pool(pool)


@pytest.mark.parametrize("session_state", [True, False], ids=["session", "per-transaction"])
async def test_failing_and_cancelled_requests_leave_the_pool_whole(
    database, session_state: bool
) -> None:
    # Many requests on two connections, some failing in the database, some cancelled midway:
    # never more than two hold a connection at once, every other one is served, and at the
    # end no connection is left taken. Both ways of setting the caller (db/context.py).
    pool = await _pool(database, 2)
    context = CallerContext(session_state=session_state)
    holders = peak = 0
    outcomes: list[str] = []

    async def request(n: int) -> None:
        async def work(connection) -> None:
            nonlocal holders, peak
            holders += 1
            peak = max(peak, holders)
            try:
                if n % 3 == 1:
                    await connection.fetchval("SELECT 1 / 0")
                await connection.fetchval("SELECT pg_sleep(0.002)")
            finally:
                holders -= 1

        try:
            await context.run(pool, ANONYMOUS, work, atomic=n % 2 == 0)
            outcomes.append("served")
        except asyncpg.DivisionByZeroError:
            outcomes.append("failed")

    try:
        tasks = [asyncio.create_task(request(n)) for n in range(60)]
        await asyncio.sleep(0.02)
        cancelled = [t for n, t in enumerate(tasks) if n % 7 == 3 and not t.done()]
        for task in cancelled:
            task.cancel()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), PATIENCE)
        assert peak == 2
        assert outcomes.count("failed") + outcomes.count("served") == 60 - len(cancelled)
        assert outcomes.count("failed") == sum(
            1 for n in range(60) if n % 3 == 1 and tasks[n] not in cancelled
        )
        await _backend_pid(context, pool)
        assert pool_usage(pool)[0] == 0, "a connection stayed taken"
    finally:
        await close_pool(pool)


async def test_a_request_that_waits_too_long_gives_up_and_the_line_goes_on(database) -> None:
    # The only connection is held for 1.2 s; requests may wait 1 s for it. The one that asked
    # at once gives up at 1 s; the one that asked at 0.6 s is served when it comes free.
    pool = await _pool(database, 1)
    context = CallerContext(session_state=True, wait_timeout=1.0)
    holding, finish = asyncio.Event(), asyncio.Event()

    async def hold(connection) -> None:
        holding.set()
        await finish.wait()

    loop = asyncio.get_running_loop()
    try:
        first = asyncio.create_task(context.run(pool, ANONYMOUS, hold, atomic=False))
        await holding.wait()
        started = loop.time()
        early = asyncio.create_task(_backend_pid(context, pool))
        await asyncio.sleep(0.6)
        late = asyncio.create_task(_backend_pid(context, pool))
        with pytest.raises(NoConnectionInTime):
            await asyncio.wait_for(early, PATIENCE)
        gave_up_after = loop.time() - started
        assert 0.95 < gave_up_after < 1.15, gave_up_after
        assert not late.done()
        await asyncio.sleep(max(0.0, started + 1.2 - loop.time()))
        finish.set()
        await first
        await late  # served, although it asked behind one that gave up
        await _backend_pid(context, pool)  # and the line still serves
        assert pool_usage(pool)[0] == 0, "a connection stayed taken"
    finally:
        await close_pool(pool)
