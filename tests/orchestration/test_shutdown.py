"""SIGTERM as Kubernetes sends it: readiness flips at once, in-flight requests finish, exit 0."""

from __future__ import annotations

import asyncio
import signal
import time

import asyncpg
import httpx
import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from service.db.url import DatabaseURL
from tests.orchestration.service_process import ServiceProcess, problems
from tests.support import token_for

USER = "00000000-0000-0000-0000-00000000000b"
POST = "10000000-0000-0000-0000-00000000000b"
LOAD = "query Load { posts { totalCount } }"
RENAME = (
    "mutation Rename($id: UUID!, $title: String!) "
    "{ updatePost(id: $id, input: {title: $title}) { title } }"
)


async def seed(url: DatabaseURL) -> None:
    connection = await asyncpg.connect(**url.asyncpg_kwargs())
    try:
        await connection.execute(
            f"INSERT INTO auth.users (id, email) VALUES ('{USER}', 'b@example.com');"
            f"INSERT INTO posts (id, title, content, published, author_id) "
            f"VALUES ('{POST}', 'before', '', true, '{USER}')"
        )
    finally:
        await connection.close()


async def lock_the_post(url: DatabaseURL) -> asyncpg.Connection:
    """A transaction of the test's own holds the post's row lock: renames of it wait."""
    holder = await asyncpg.connect(**url.asyncpg_kwargs())
    await holder.execute("BEGIN")
    await holder.execute(f"SELECT 1 FROM posts WHERE id = '{POST}' FOR UPDATE")
    return holder


def test_sigterm_under_load_fails_no_request_and_exits_0(database: DatabaseURL):
    asyncio.run(seed(database))
    service = ServiceProcess(
        DATABASE_URL=database.sqlalchemy,
        SHUTDOWN_DRAIN_SECONDS="2",
        SHUTDOWN_GRACE_SECONDS="10",
    )
    with service:
        service.wait_ready()
        outcome = asyncio.run(_sigterm_under_load(service, database))
        code = service.wait_exit(20)
    assert code == 0, service.output
    assert outcome["failed"] == [], outcome
    assert outcome["slow_ok"] == 5  # the renames in flight during the shutdown all finished
    assert outcome["readyz_after_sigterm"] == (503, "shutting down")
    assert outcome["readyz_seconds"] < 0.5  # at once, not after the drain
    # Still served while draining, but the client is told to reconnect (to another replica).
    assert outcome["answer_while_draining"] == (200, "close")
    assert "database pool closed" in service.output
    assert problems(service.output) == []


async def _sigterm_under_load(service: ServiceProcess, url: DatabaseURL) -> dict[str, object]:
    counts = {"ok": 0, "slow_ok": 0}
    failed: list[str] = []
    draining = asyncio.Event()
    auth = {"authorization": f"Bearer {token_for(USER)}"}

    async def client() -> None:
        # A load balancer's view: send until /readyz says no, keep-alive connections.
        async with httpx.AsyncClient(base_url=service.base, timeout=30) as http:
            while not draining.is_set():
                try:
                    response = await http.post("/graphql", json={"query": LOAD})
                    assert response.status_code == 200
                    assert response.json()["data"]["posts"]["totalCount"] == 1
                    counts["ok"] += 1
                except Exception as error:
                    failed.append(f"load: {error!r}")

    async def watch_readiness() -> None:
        async with httpx.AsyncClient(base_url=service.base, timeout=5) as http:
            while True:
                try:
                    if (await http.get("/readyz")).status_code != 200:
                        break
                except httpx.TransportError:
                    break
                await asyncio.sleep(0.05)
        draining.set()

    async def slow_rename(i: int) -> None:
        async with httpx.AsyncClient(base_url=service.base, timeout=30) as http:
            try:
                response = await http.post(
                    "/graphql",
                    json={"query": RENAME, "variables": {"id": POST, "title": f"t{i}"}},
                    headers=auth,
                )
                assert response.status_code == 200, response.text
                assert response.json()["data"]["updatePost"] == {"title": f"t{i}"}
                counts["slow_ok"] += 1
            except Exception as error:
                failed.append(f"rename: {error!r}")

    holder = await lock_the_post(url)
    load = [asyncio.create_task(client()) for _ in range(8)]
    watcher = asyncio.create_task(watch_readiness())
    renames = [asyncio.create_task(slow_rename(i)) for i in range(5)]
    # load running (a second, and 50 answers at least), renames waiting on the row lock
    started = time.monotonic()
    while counts["ok"] <= 50 or time.monotonic() - started < 1.0:
        assert time.monotonic() - started < 20 and not failed, (counts, failed)
        await asyncio.sleep(0.05)
    service.signal()
    signalled = time.monotonic()
    async with httpx.AsyncClient(base_url=service.base, timeout=5) as http:
        response = await http.get("/readyz")
        readyz = (response.status_code, response.json().get("reason"))
        readyz_seconds = time.monotonic() - signalled
        response = await http.post("/graphql", json={"query": LOAD})
        answer_while_draining = (response.status_code, response.headers.get("connection"))
    await watcher
    await asyncio.gather(*load)
    # Past the drain delay uvicorn stops listening and waits for the renames in flight.
    await asyncio.sleep(3.0)
    await holder.execute("COMMIT")
    await holder.close()
    await asyncio.gather(*renames)
    return {
        **counts,
        "failed": failed,
        "readyz_after_sigterm": readyz,
        "readyz_seconds": readyz_seconds,
        "answer_while_draining": answer_while_draining,
    }


def test_requests_past_the_grace_period_do_not_hold_the_shutdown(database: DatabaseURL):
    asyncio.run(seed(database))
    service = ServiceProcess(
        DATABASE_URL=database.sqlalchemy,
        SHUTDOWN_GRACE_SECONDS="1",
    )

    async def scenario() -> float:
        holder = await lock_the_post(database)
        auth = {"authorization": f"Bearer {token_for(USER)}"}
        async with httpx.AsyncClient(base_url=service.base, timeout=30) as http:
            stuck = asyncio.create_task(
                http.post(
                    "/graphql",
                    json={"query": RENAME, "variables": {"id": POST, "title": "never"}},
                    headers=auth,
                )
            )
            await asyncio.sleep(0.5)
            service.signal()
            started = time.monotonic()
            while service.process.poll() is None:
                await asyncio.sleep(0.05)
            took = time.monotonic() - started
            await asyncio.gather(stuck, return_exceptions=True)
        await holder.execute("ROLLBACK")
        await holder.close()
        return took

    with service:
        service.wait_ready()
        took = asyncio.run(scenario())
        code = service.wait_exit()
    assert code == 0, service.output
    assert took < 5, service.output


def test_sigterm_closes_live_subscriptions_and_exits_0(database: DatabaseURL):
    asyncio.run(seed(database))
    service = ServiceProcess(DATABASE_URL=database.sqlalchemy, SHUTDOWN_GRACE_SECONDS="10")
    with service:
        service.wait_ready()
        close_code, seconds = asyncio.run(_sigterm_with_a_subscriber(service))
        code = service.wait_exit(20)
    assert code == 0, service.output
    assert close_code == 1012  # "service restart": graphql-ws clients reconnect (elsewhere)
    assert seconds < 5  # the open socket does not hold the shutdown for the whole grace
    assert problems(service.output) == []


async def _sigterm_with_a_subscriber(service: ServiceProcess) -> tuple[int, float]:
    url = service.base.replace("http://", "ws://") + "/graphql"
    async with connect(url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        await ws.send(orjson.dumps({"type": "connection_init"}).decode())
        assert orjson.loads(await ws.recv()) == {"type": "connection_ack"}
        subscribe = {"query": "subscription { posts { totalCount } }"}
        await ws.send(orjson.dumps({"id": "1", "type": "subscribe", "payload": subscribe}).decode())
        first = orjson.loads(await ws.recv())
        assert first["payload"] == {"data": {"posts": {"totalCount": 1}}}
        started = time.monotonic()
        service.signal()
        try:
            while True:
                await asyncio.wait_for(ws.recv(), 15)
        except ConnectionClosed as closed:
            assert closed.rcvd is not None
            return closed.rcvd.code, time.monotonic() - started


@pytest.mark.parametrize(
    ("sig", "drained"),
    [(signal.SIGTERM, 1.0), (signal.SIGINT, 0.0)],  # Ctrl-C does not drain
)
def test_a_stop_signal_ends_event_streams_and_exits_0(
    database: DatabaseURL, sig: signal.Signals, drained: float
):
    asyncio.run(seed(database))
    service = ServiceProcess(
        DATABASE_URL=database.sqlalchemy,
        SHUTDOWN_DRAIN_SECONDS=str(drained),
        SHUTDOWN_GRACE_SECONDS="10",
    )
    with service:
        service.wait_ready()
        lines, seconds = asyncio.run(_stop_with_an_event_stream(service, sig))
        code = service.wait_exit(20)
    assert code == 0, service.output
    # its first answer, then the stream ends with no `complete`: the client reconnects
    assert lines[0] == "event: next"
    assert orjson.loads(lines[1].removeprefix("data:")) == {"data": {"posts": {"totalCount": 1}}}
    assert "event: complete" not in lines
    assert drained <= seconds < drained + 4  # not after the whole grace period
    assert problems(service.output) == []


async def _stop_with_an_event_stream(
    service: ServiceProcess, sig: signal.Signals
) -> tuple[list[str], float]:
    lines: list[str] = []
    query = {"query": "subscription { posts { totalCount } }"}
    headers = {"accept": "text/event-stream"}
    async with (
        httpx.AsyncClient(base_url=service.base, timeout=30) as http,
        http.stream("POST", "/graphql", json=query, headers=headers) as response,
    ):
        started = None
        async for line in response.aiter_lines():
            lines.append(line)
            if started is None and line.startswith("data:"):
                started = time.monotonic()
                service.signal(sig)
    assert started is not None
    return lines, time.monotonic() - started
