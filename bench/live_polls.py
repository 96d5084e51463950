"""What live subscriptions cost: N WebSocket subscribers of a Q3-shaped subscription (a post and
its first 10 comments with their authors) against `service serve`, each on a post of its own
(N distinct polls) or all on the same post (one poll they share), with nothing changing.

    DATABASE_URL=postgres://.../bench_ours JWT_SECRET=... \\
        .venv/bin/python bench/live_polls.py --subscribers 200 [--seconds 20] [--shared]

The database needs our schema and data (the rig's `bench_ours` after a run). The server runs
as a child process (`service serve`, one worker, `SUBSCRIPTION_POLL_SECONDS=1`); the
subscribers run here, one socket each. Prints the server's CPU per second and per poll (from
/proc), the transactions PostgreSQL committed per second in that database (each poll is one),
and how many answers were sent after the first ones (0: nothing changed, nothing was sent).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect

from service.auth import issue_token
from service.settings import get_settings

ROOT = Path(__file__).resolve().parent.parent
LIVE_POST = """subscription($id: UUID!) {
  post(id: $id) {
    id title createdAt author { id }
    comments(first: 10, orderBy: [{createdAt: DESC}]) { nodes { id body createdAt author { id } } }
  }
}"""


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def committed(dsn: str) -> int:
    connection = await asyncpg.connect(dsn)
    try:
        count: int = await connection.fetchval(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        )
        return count
    finally:
        await connection.close()


async def subscribe(
    url: str, token: str, post_id: str
) -> tuple[ClientConnection, asyncio.Task[None], list[Any]]:
    ws = await connect(url, subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
    await ws.send(
        orjson.dumps({"type": "connection_init", "payload": {"Authorization": token}}).decode()
    )
    assert orjson.loads(await ws.recv())["type"] == "connection_ack"
    payload = {"query": LIVE_POST, "variables": {"id": post_id}}
    await ws.send(orjson.dumps({"id": "1", "type": "subscribe", "payload": payload}).decode())
    first = orjson.loads(await ws.recv())
    assert first["type"] == "next" and first["payload"]["data"]["post"], first
    later: list[Any] = []

    async def drain() -> None:
        async for message in ws:
            later.append(message)

    return ws, asyncio.create_task(drain()), later


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subscribers", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--shared", action="store_true", help="all on the same post")
    args = parser.parse_args()
    settings = get_settings()
    dsn = settings.database_url
    assert dsn, "set DATABASE_URL to the rig's database (bench_ours)"
    dsn = dsn.replace("postgresql+asyncpg://", "postgresql://")

    connection = await asyncpg.connect(dsn)
    try:
        user = await connection.fetchval("SELECT id FROM auth.users ORDER BY email LIMIT 1")
        posts = [
            str(row["id"])
            for row in await connection.fetch(
                "SELECT id FROM posts ORDER BY created_at DESC LIMIT $1", args.subscribers
            )
        ]
    finally:
        await connection.close()
    token = "Bearer " + issue_token(
        settings, sub=str(user), email=None, role="authenticated", ttl_seconds=3600
    )

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "SUBSCRIPTION_POLL_SECONDS": "1",
        "MAX_LIVE_QUERIES": str(args.subscribers + 1),
        "LOG_LEVEL": "WARNING",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "service", "serve", "--port", str(port), "--workers", "1"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base) as http:
            for _ in range(300):
                try:
                    if (await http.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        url = base.replace("http://", "ws://") + "/graphql"
        targets = [posts[0]] * args.subscribers if args.shared else posts
        subscribed = [await subscribe(url, token, p) for p in targets]
        await asyncio.sleep(2)  # every poll under way
        cpu, commits, started = cpu_seconds(server.pid), await committed(dsn), time.monotonic()
        await asyncio.sleep(args.seconds)
        elapsed = time.monotonic() - started
        cpu = cpu_seconds(server.pid) - cpu
        commits = await committed(dsn) - commits
        later = sum(len(answers) for _, _, answers in subscribed)
        for ws, task, _ in subscribed:
            task.cancel()
            await ws.close()
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the server this script started
        server.wait(30)
    kind = "one shared poll" if args.shared else f"{len(set(targets))} distinct polls"
    print(
        f"{args.subscribers} subscribers ({kind}), {elapsed:.0f} s: "
        f"server {cpu / elapsed * 100:.1f}% of a core, "
        f"{commits / elapsed:.0f} transactions/s in the database "
        f"({cpu / max(commits, 1) * 1e6:.0f} µs of server CPU per poll), "
        f"{later} answers sent after the first"
    )


if __name__ == "__main__":
    asyncio.run(main())
