"""CPU per request of the app itself: the rig's operations sent through the ASGI app in-process,
with no socket and no HTTP server, against a real database.

    DATABASE_URL=postgres://... JWT_SECRET=... .venv/bin/python bench/asgi_cpu.py M1 [Q1 ...]

The database needs our schema and data (the rig's `bench_ours` after a run). Requests carry a
token for the first user (as `bench/ours.json` does); M1 comments on the newest post, Q3 reads
the post with the most comments up to 10. 32 requests are in flight, like the rig; five rounds
of `--requests` each, after a warm-up. Prints this process's CPU µs per request (min and median
of the rounds): the number to compare before and after a change to the request path, steadier
than req/s on a shared machine. The comments M1 writes are deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import uvloop

from service.app import create_app
from service.auth import issue_token
from service.settings import get_settings

QUERIES = Path(__file__).parent / "queries"
IN_FLIGHT = 32
MARK = "written by bench/asgi_cpu.py"  # M1's comments, deleted at the end


async def fixtures(dsn: str) -> dict[str, Any]:
    """The first user, the newest post (M1's) and a post with comments (Q3's)."""
    connection = await asyncpg.connect(dsn)
    try:
        user = await connection.fetchval("SELECT id FROM auth.users ORDER BY email LIMIT 1")
        newest = await connection.fetchval("SELECT id FROM posts ORDER BY created_at DESC LIMIT 1")
        commented = await connection.fetchval(
            "SELECT post_id FROM comments GROUP BY post_id ORDER BY least(count(*), 10) DESC, "
            "post_id LIMIT 1"
        )
    finally:
        await connection.close()
    return {
        "user": str(user),
        "M1": {"postId": str(newest), "body": MARK},
        "Q3": {"id": str(commented)},
    }


def request_for(op: str, variables: dict[str, Any] | None, token: str) -> tuple[dict, bytes]:
    body = orjson.dumps({"query": (QUERIES / f"{op}.graphql").read_text(), "variables": variables})
    return post_graphql(body, token), body


def post_graphql(body: bytes, token: str | None = None) -> dict[str, Any]:
    """The ASGI scope of `POST /graphql` with this JSON body (and a bearer token)."""
    headers = [
        (b"host", b"bench"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if token is not None:
        headers.append((b"authorization", b"Bearer " + token.encode()))
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }


async def send_one(app: Any, scope: dict, body: bytes) -> bytes:
    messages: list[dict[str, Any]] = []
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # no disconnect: the response is complete first
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    await app({**scope, "state": {}}, receive, send)
    return b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("ops", nargs="+", choices=[p.stem for p in QUERIES.glob("*.graphql")])
    parser.add_argument("--requests", type=int, default=4000, help="per round")
    args = parser.parse_args()
    settings = get_settings()
    assert settings.database_url, "set DATABASE_URL to the rig's database (bench_ours)"
    known = await fixtures(settings.database_url)
    token = issue_token(
        settings, sub=known["user"], email=None, role="authenticated", ttl_seconds=3600
    )
    app = create_app(settings)
    try:
        await measure(app, args.ops, args.requests, known, token)
    finally:
        await delete_comments(settings.database_url)


async def measure(
    app: Any, ops: list[str], requests: int, known: dict[str, Any], token: str
) -> None:
    async with app.router.lifespan_context(app):
        for op in ops:
            scope, body = request_for(op, known.get(op), token)
            first = orjson.loads(await send_one(app, scope, body))
            assert "errors" not in first, first["errors"]

            async def in_flight(count: int, scope: dict = scope, body: bytes = body) -> None:
                for _ in range(count):
                    await send_one(app, scope, body)

            rounds = []
            for round_ in range(6):
                cpu = time.process_time()
                await asyncio.gather(*(in_flight(requests // IN_FLIGHT) for _ in range(IN_FLIGHT)))
                if round_:  # the first is the warm-up
                    rounds.append((time.process_time() - cpu) / requests * 1e6)
            median = statistics.median(rounds)
            print(f"{op}: {min(rounds):.0f} µs CPU per request (median {median:.0f})")


async def delete_comments(dsn: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute("DELETE FROM comments WHERE body = $1", MARK)
    finally:
        await connection.close()


if __name__ == "__main__":
    uvloop.run(main())  # the service's event loop
