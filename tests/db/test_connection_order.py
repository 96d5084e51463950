"""Under load, requests get the pool's connections in the order they asked for them.

A request that is overtaken again and again by later ones waits far longer than the rest:
that is the tail latency a client sees (p99), not the median.
"""

from __future__ import annotations

import asyncio
import itertools
import random

from service.auth import ANONYMOUS
from service.db.context import CallerContext
from service.db.pool import close_pool, create_pool
from tests.support import settings_for

WORKERS = 8
ROUNDS = 25


async def test_connections_go_to_requests_in_the_order_they_asked(database) -> None:
    # One connection, eight callers that keep asking at moments of their own: releases
    # meet waiters and newcomers at once, as under a load test.
    pool = await create_pool(database, settings_for(database, db_pool_size=1))
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
