"""Many callers at once on few connections: each response shows only what its caller may see."""

from __future__ import annotations

import asyncio
import random

import asyncpg

from tests.auth.conftest import ALICE, BOB, SEED, USERS
from tests.auth.test_row_level_security import VISIBLE_POSTS
from tests.support import RunningService, token_for

QUERY = "{ viewer { id email } posts { nodes { title author { id email } } } }"
EMAILS = {ALICE: "alice@example.com", BOB: "bob@example.com"}


async def test_100_concurrent_mixed_callers_on_a_pool_of_2_see_only_their_own(database):
    connection = await asyncpg.connect(**database.asyncpg_kwargs())
    await connection.execute(SEED)
    await connection.close()
    callers = [["anon", "alice", "bob"][i % 3] for i in range(100)]
    random.Random(7).shuffle(callers)
    async with RunningService(database, db_pool_size=2) as http:

        async def ask(who: str) -> tuple[str, dict]:
            user = USERS[who]
            headers = {"authorization": f"Bearer {token_for(user)}"} if user else {}
            response = await http.post("/graphql", json={"query": QUERY}, headers=headers)
            return who, response.json()

        results = await asyncio.gather(*(ask(who) for who in callers))
    for who, body in results:
        user = USERS[who]
        data = body["data"]
        assert data["viewer"] == ({"id": user, "email": EMAILS[user]} if user else None)
        assert {p["title"] for p in data["posts"]["nodes"]} == VISIBLE_POSTS[who]
        for post in data["posts"]["nodes"]:
            author = post["author"]
            assert author["email"] == (EMAILS[user] if author["id"] == user else None)
