"""A/B: response JSON built by PostgreSQL (what the service does) against flat rows assembled
in Python with orjson, for Q1's and Q2's shapes, on the same database and caller.

    .venv/bin/python bench/json_ab.py postgres://USER:PASSWORD@HOST:PORT/DB [--seconds 8]

The database needs our schema and data (the rig's `bench_ours` after a run). Both modes run
as the first user, role `authenticated`, under Row Level Security, on a pool of 10 with 32
requests in flight, like the rig. The "pg" mode runs the statement the service compiles for
bench/queries/Q1.graphql and Q2.graphql; the "py" mode runs a flat query for the same rows
and builds the same response in Python. Prints req/s and this process's CPU per request.
Run it on a quiet machine: PostgreSQL and this script share the cores, as in the rig.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import uvloop

from service.app import create_executor
from service.settings import Settings

QUERIES = Path(__file__).parent / "queries"

FLAT_Q1 = """
SELECT id, title, content, created_at, author_id FROM posts
ORDER BY created_at DESC, id DESC LIMIT 20
"""
FLAT_Q2 = """
SELECT p.id, p.title, p.content, p.created_at, p.author_id, c.id, c.body, c.created_at, c.author_id
FROM (SELECT * FROM posts ORDER BY created_at DESC, id DESC LIMIT 20) p
LEFT JOIN LATERAL (
    SELECT * FROM comments c WHERE c.post_id = p.id ORDER BY created_at, id LIMIT 5
) c ON true
ORDER BY p.created_at DESC, p.id DESC, c.created_at, c.id
"""


def compiled_sql(name: str) -> str:
    executor = create_executor(Settings())
    prepared = executor.prepare((QUERIES / f"{name}.graphql").read_text(), None)
    statement = executor._compile(prepared, {}).read
    assert statement is not None and not statement.params, "Q1 and Q2 bind nothing"
    return statement.sql


def post(row: Any) -> dict[str, Any]:
    return {
        "id": row[0],
        "title": row[1],
        "content": row[2],
        "createdAt": row[3],
        "author": {"id": row[4]},
    }


def q1_rows(rows: list[Any]) -> bytes:
    return orjson.dumps({"data": {"posts": {"nodes": [post(r) for r in rows]}}})


def q2_rows(rows: list[Any]) -> bytes:
    posts: list[dict[str, Any]] = []
    for r in rows:
        if not posts or posts[-1]["id"] != r[0]:
            posts.append({**post(r), "comments": {"nodes": []}})
        if r[5] is not None:
            posts[-1]["comments"]["nodes"].append(
                {"id": r[5], "body": r[6], "createdAt": r[7], "author": {"id": r[8]}}
            )
    return orjson.dumps({"data": {"posts": {"nodes": posts}}})


async def measure(pool: asyncpg.Pool, run: Any, seconds: float) -> tuple[float, float]:
    done = 0
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < stop:
            await run(pool)
            done += 1

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(32)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return done / wall, cpu / done * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dsn")
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()

    async def as_first_user(connection: asyncpg.Connection) -> None:
        await connection.set_type_codec(
            "json", schema="pg_catalog", encoder=lambda b: b, decoder=lambda b: b, format="binary"
        )
        # as raw's rig does: orjson writes str, not asyncpg's own UUID class
        await connection.set_type_codec(
            "uuid", schema="pg_catalog", encoder=str, decoder=str, format="text"
        )
        user = await connection.fetchval("SELECT id FROM auth.users ORDER BY email LIMIT 1")
        claims = orjson.dumps({"sub": str(user), "role": "authenticated"}).decode()
        await connection.execute(
            "SELECT set_config('role', 'authenticated', false), "
            "set_config('request.jwt.claims', $1, false)",
            claims,
        )

    pool = await asyncpg.create_pool(args.dsn, min_size=10, max_size=10, init=as_first_user)
    assert pool is not None
    modes: dict[str, Any] = {}
    for name, flat, assemble in (("Q1", FLAT_Q1, q1_rows), ("Q2", FLAT_Q2, q2_rows)):
        sql = compiled_sql(name)

        async def pg(pool: asyncpg.Pool, sql: str = sql) -> bytes:
            return b'{"data":' + await pool.fetchval(sql) + b"}"

        async def py(pool: asyncpg.Pool, flat: str = flat, assemble: Any = assemble) -> bytes:
            return assemble(await pool.fetch(flat))  # type: ignore[no-any-return]

        same = orjson.loads(await pg(pool)) == orjson.loads(await py(pool))
        print(f"{name}: the two modes return the same data: {same}")
        modes[f"{name} pg"], modes[f"{name} py"] = pg, py
    for label, run in modes.items():
        await measure(pool, run, 2.0)  # warm-up
        rate, cpu = await measure(pool, run, args.seconds)
        print(f"{label}: {rate:7.0f} req/s, {cpu:5.0f} µs CPU of this process per request")
    await pool.close()


if __name__ == "__main__":
    uvloop.run(main())  # the service's event loop
