"""PostgreSQL restarted under a serving service: quick clear errors, recovery, no lost write."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx

from service.db.embedded import EmbeddedPostgres
from service.db.url import DatabaseURL
from tests.orchestration.service_process import ServiceProcess, free_port
from tests.support import token_for

USER = "00000000-0000-0000-0000-00000000000c"
CREATE = (
    'mutation Write($title: String!) { createPost(input: {title: $title, content: ""}) { id } }'
)


@dataclass
class Attempt:
    started: float
    seconds: float
    status: int | None
    body: str
    post_id: str | None = None


@dataclass
class Writer:
    """Writes posts one after another and keeps what each attempt got back."""

    base: str
    name: str
    attempts: list[Attempt] = field(default_factory=list)

    def run(self, stop: threading.Event) -> None:
        auth = {"authorization": f"Bearer {token_for(USER)}"}
        with httpx.Client(base_url=self.base, timeout=15) as http:
            i = 0
            while not stop.is_set():
                i += 1
                started = time.monotonic()
                try:
                    response = http.post(
                        "/graphql",
                        json={"query": CREATE, "variables": {"title": f"{self.name}-{i}"}},
                        headers=auth,
                    )
                    status, body = response.status_code, response.text
                except httpx.TransportError as error:
                    status, body = None, repr(error)
                attempt = Attempt(started, time.monotonic() - started, status, body)
                if status == 200 and '"errors"' not in body:
                    attempt.post_id = response.json()["data"]["createPost"]["id"]
                self.attempts.append(attempt)
                time.sleep(0.01)


async def _fetch_ids(url: DatabaseURL) -> set[str]:
    connection = await asyncpg.connect(**url.asyncpg_kwargs())
    try:
        return {str(r["id"]) for r in await connection.fetch("SELECT id FROM posts")}
    finally:
        await connection.close()


async def _add_user(url: DatabaseURL) -> None:
    connection = await asyncpg.connect(**url.asyncpg_kwargs())
    try:
        await connection.execute(
            f"INSERT INTO auth.users (id, email) VALUES ('{USER}', 'c@example.com')"
        )
    finally:
        await connection.close()


def test_a_database_restart_gives_quick_clear_errors_then_recovers_and_loses_no_write(
    world_traversable_tmp: Path,
):
    port = free_port()
    # Durable settings (no fast_unsafe): an acknowledged write must survive the restart.
    server = EmbeddedPostgres(world_traversable_tmp / f"restart-{port}", port=port)
    server.start()
    url = DatabaseURL.parse(server.url())
    try:
        with ServiceProcess(DATABASE_URL=url.sqlalchemy) as service:
            service.wait_ready()
            asyncio.run(_add_user(url))
            stop = threading.Event()
            writers = [Writer(service.base, f"w{n}") for n in range(4)]
            threads = [threading.Thread(target=w.run, args=(stop,)) for w in writers]
            for thread in threads:
                thread.start()
            time.sleep(1.0)
            down_at = time.monotonic()
            server.stop()  # PostgreSQL's fast shutdown: clients are disconnected
            time.sleep(1.0)
            during = service.get("/readyz")
            time.sleep(1.0)
            server.start()  # same data folder, same port
            back_at = time.monotonic()
            service.wait_ready(10)
            time.sleep(1.5)
            stop.set()
            for thread in threads:
                thread.join(30)
            assert service.stop() == 0
        stored = asyncio.run(_fetch_ids(url))
    finally:
        server.stop()

    attempts = sorted((a for w in writers for a in w.attempts), key=lambda a: a.started)
    acknowledged = [a.post_id for a in attempts if a.post_id]
    failed = [a for a in attempts if not a.post_id]
    assert len(acknowledged) > 20 and failed, (len(acknowledged), len(failed))

    # No acknowledged write is lost.
    assert set(acknowledged) <= stored

    # During the outage: /readyz says so, requests fail quickly with a clear GraphQL error.
    assert during.status_code == 503
    assert during.json()["reason"] == "database not reachable"
    for a in failed:
        assert a.started >= down_at - 0.5, a  # nothing failed before the restart
        assert a.seconds < 2.0, a  # no hang
        # 503 when no connection could be had; 200 with the error when one broke mid-request
        # (GraphQL over HTTP: a field error with application/json).
        assert a.status in (200, 503), a
        [error] = json.loads(a.body)["errors"]
        assert error["message"] == "the database is unavailable; try again shortly", a
        assert error["extensions"] == {"code": "INTERNAL"}, a
        assert "Traceback" not in a.body and "asyncpg" not in a.body, a

    # Recovery by itself within 5 s of the database being back, and no failure after that.
    first_ok_after = min(
        a.started + a.seconds for a in attempts if a.post_id and a.started > back_at
    )
    assert first_ok_after - back_at < 5.0, first_ok_after - back_at
    print(
        f"recovered {first_ok_after - back_at:.2f} s after the database was back; "
        f"{len(acknowledged)} writes acknowledged, {len(failed)} refused, slowest refusal "
        f"{max(a.seconds for a in failed):.3f} s"
    )
    assert all(a.post_id for a in attempts if a.started > first_ok_after)
    assert "Traceback" not in service.output, service.output
