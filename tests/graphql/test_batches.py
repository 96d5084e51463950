"""Batches: a JSON array of GraphQL requests in one POST (Apollo's BatchHttpLink sends them; so do
PostGraphile's and Hasura's clients). Each request is answered in its place, in order, as if it
had been sent on its own: its own transaction, its own errors."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import httpx

from service.db.url import DatabaseURL
from tests.graphql.conftest import ALICE, post_id
from tests.support import RunningService, token_for

COUNT = {"query": "{ posts { totalCount } }"}


def create(title: str) -> dict[str, Any]:
    return {
        "query": 'mutation($t: String!) { createPost(input: {title: $t, content: "-"}) { title } }',
        "variables": {"t": title},
    }


async def post_batch(
    http: httpx.AsyncClient, batch: list[Any], *, as_user: str | None = ALICE
) -> httpx.Response:
    headers = {"authorization": f"Bearer {token_for(as_user)}"} if as_user else {}
    return await http.post("/graphql", json=batch, headers=headers)


async def posts_titled(database: DatabaseURL, title: str) -> int:
    connection = await asyncpg.connect(**database.asyncpg_kwargs())
    try:
        count: int = await connection.fetchval("SELECT count(*) FROM posts WHERE title = $1", title)
        return count
    finally:
        await connection.close()


async def batches_counted(http: httpx.AsyncClient, outcome: str) -> float:
    series = f'service_graphql_requests_total{{operation="batch",outcome="{outcome}"}} '
    for line in (await http.get("/metrics")).text.splitlines():
        if line.startswith(series):
            return float(line.removeprefix(series))
    return 0.0


async def test_a_batch_is_answered_in_order_and_each_request_sees_the_ones_before(api):
    response = await post_batch(api, [COUNT, create("First"), create("Second"), COUNT])
    assert response.status_code == 200
    assert response.json() == [
        {"data": {"posts": {"totalCount": 25}}},
        {"data": {"createPost": {"title": "First"}}},
        {"data": {"createPost": {"title": "Second"}}},
        {"data": {"posts": {"totalCount": 27}}},
    ]


async def test_a_bad_request_is_answered_in_its_place_and_the_others_run(api, seeded):
    counted = await batches_counted(api, "field_error")
    too_long = create("x" * 256)
    response = await post_batch(
        api,
        [
            {"query": "{ posts { nope } }"},  # invalid
            {"variables": {}},  # no query
            "not a request",
            too_long,  # fails when it runs
            {"query": "{ post(id: $id) { title } }"},  # undeclared variable
            {"query": "query($id: UUID!) { post(id: $id) { title } }", "variables": {}},
            create("Still made"),
            {
                "query": "query($id: UUID!) { post(id: $id) { title } }",
                "variables": {"id": post_id(3)},
            },
        ],
    )
    assert response.status_code == 200
    answers = response.json()
    codes = [[e["extensions"]["code"] for e in a.get("errors", [])] for a in answers]
    assert codes == [["BAD_USER_INPUT"]] * 6 + [[], []]
    assert "nope" in answers[0]["errors"][0]["message"]
    assert "$id" in answers[4]["errors"][0]["message"]
    assert "title" in answers[3]["errors"][0]["message"]
    # one request in the metrics, labelled by its worst answer
    assert await batches_counted(api, "field_error") == counted + 1
    assert answers[6] == {"data": {"createPost": {"title": "Still made"}}}
    assert answers[7] == {"data": {"post": {"title": "Post 03"}}}
    assert await posts_titled(seeded, "Still made") == 1


async def test_a_batch_over_the_limit_runs_nothing(api, seeded):
    response = await post_batch(api, [create("Eleven")] * 11)
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "LIMIT_EXCEEDED"
    assert "at most 10 requests" in error["message"]
    assert await posts_titled(seeded, "Eleven") == 0
    response = await post_batch(api, [])
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_batches_can_be_turned_off(seeded):
    async with RunningService(seeded, max_batch_operations=0) as http:
        response = await post_batch(http, [COUNT])
        assert response.status_code == 400
        [error] = response.json()["errors"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert "turned off" in error["message"]
        assert (await http.post("/graphql", json=COUNT)).json() == {
            "data": {"posts": {"totalCount": 25}}
        }


async def test_once_the_database_is_busy_the_rest_of_the_batch_is_not_tried(seeded):
    locker = await asyncpg.connect(**seeded.asyncpg_kwargs())
    try:
        async with RunningService(seeded, db_pool_size=1, db_pool_timeout=0.5) as http:
            await locker.execute("BEGIN; LOCK TABLE posts IN ACCESS EXCLUSIVE MODE")
            stuck = asyncio.create_task(http.post("/graphql", json=COUNT))
            for _ in range(200):  # until the only connection waits for the lock
                if await locker.fetchval("SELECT count(*) FROM pg_locks WHERE NOT granted"):
                    break
                await asyncio.sleep(0.05)
            response = await post_batch(http, [COUNT, create("Not tried"), COUNT])
            await locker.execute("COMMIT")
            assert (await stuck).status_code == 200
        assert response.status_code == 200
        busy = {
            "errors": [
                {
                    "message": "every database connection is busy; try again shortly",
                    "extensions": {"code": "INTERNAL"},
                }
            ]
        }
        assert response.json() == [busy, busy, busy]
        assert await posts_titled(seeded, "Not tried") == 0
    finally:
        await locker.close()
