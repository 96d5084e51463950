"""Helpers shared by the tests: the database server handle, the served app, subprocess env."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
import uvicorn

from service.app import create_app
from service.db.url import DatabaseURL
from service.graphql.execute import Executor
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
SERVICE = [sys.executable, "-m", "service"]

# API.md's error codes but INTERNAL, which says the fault is ours
CLIENT_CODES = {
    "BAD_USER_INPUT",
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "NOT_FOUND",
    "CONFLICT",
    "LIMIT_EXCEEDED",
}
# What must never reach a client: internals of Python, PostgreSQL and the drivers.
LEAKS = ("Traceback", "SELECT", "INSERT", "UPDATE ", "asyncpg", "psycopg", "sqlalchemy", 'File "')


@dataclass
class Server:
    """The session's PostgreSQL: where to connect as an administrator."""

    admin: DatabaseURL

    def url(self, database: str) -> DatabaseURL:
        return DatabaseURL(self.admin.url.set(database=database))

    async def execute(self, sql: str) -> None:
        await execute_sql(self.admin, sql)

    def run(self, sql: str) -> None:
        asyncio.run(self.execute(sql))


def settings_for(url: DatabaseURL, **overrides: object) -> Settings:
    return Settings(_env_file=None, database_url=url.sqlalchemy, **overrides)  # type: ignore[call-arg]


class RunningService:
    """The app served by uvicorn on a real socket, in this test's event loop.

    `executor` serves another schema (e.g. one built from extra models); by default the app
    builds its own from the models' registry.
    """

    def __init__(
        self, url: DatabaseURL, executor: Executor | None = None, **overrides: object
    ) -> None:
        self.settings = settings_for(url, **overrides)
        self.app = create_app(self.settings, executor)
        # IPPROTO_TCP: asyncio sets TCP_NODELAY only on sockets that say so; without it every
        # response waits ~40 ms for a delayed ACK (headers and body are separate writes).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))
        self.socket = sock
        self.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        config = uvicorn.Config(self.app, log_config=None, access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> httpx.AsyncClient:
        self.task = asyncio.create_task(self.server.serve(sockets=[self.socket]))
        while not self.server.started:
            if self.task.done():
                self.task.result()
            await asyncio.sleep(0.01)
        self.client = httpx.AsyncClient(base_url=self.base_url, timeout=30)
        return self.client

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()
        self.server.should_exit = True
        assert self.task is not None
        await self.task
        self.socket.close()


def service_env(**values: str) -> dict[str, str]:
    """The environment for a `service` subprocess: ours, minus any service settings."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SERVICE_DATA_DIR")}
    env.update(values)
    return env


def token_for(user_id: str, *, role: str = "authenticated", ttl_seconds: int = 600) -> str:
    """A token signed with the settings' secret (the development default in tests)."""
    from service.auth import issue_token

    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    return issue_token(settings, sub=user_id, email=None, role=role, ttl_seconds=ttl_seconds)


def run_service(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`service ARGS` as an operator runs it, from the project folder, with these settings."""
    return subprocess.run(
        [*SERVICE, *args],
        cwd=ROOT,
        env=service_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )


async def execute_sql(url: DatabaseURL, sql: str) -> None:
    connection = await asyncpg.connect(**url.asyncpg_kwargs())
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


async def fetch_sql(url: DatabaseURL, sql: str) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(**url.asyncpg_kwargs())
    try:
        return list(await connection.fetch(sql))
    finally:
        await connection.close()


def sign_token(env: dict[str, str], email: str = "e2e@example.com") -> str:
    """A token from `service token` (its user created if missing), as a developer gets one."""
    result = subprocess.run(
        [*SERVICE, "token", "--email", email],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def node_for_e2e(test: str, package: Path) -> str:
    """Node.js for an end-to-end spec in tests/e2e/, with its npm `package` installed. The
    venv's Node.js first, as ./dev puts it on PATH (a machine's own may be older). Without
    node the test is skipped on a developer's machine and fails in CI (CI=true)."""
    node = shutil.which("node", path=f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}")
    if node is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI must run the {test} test, but node is not on PATH")
        pytest.skip("node is not on PATH (./dev puts the venv's Node.js there)")
    if not package.is_dir():
        pytest.fail(f"{package.name} is not installed: run graphiql/build.sh (it runs npm ci)")
    return node


def run_e2e_spec(node: str, spec: Path, **env: str) -> Any:
    """Runs an end-to-end spec with these environment variables; its summary, the JSON of the
    last line it prints."""
    result = subprocess.run(
        [node, str(spec)],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return orjson.loads(result.stdout.strip().splitlines()[-1])
