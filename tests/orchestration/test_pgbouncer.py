"""Past one machine: two service processes through PgBouncer (transaction pooling), one PostgreSQL.

PgBouncer hands each transaction to whichever server connection is free, so nothing a request
sets may outlive its transaction: the callers' roles and claims are checked under concurrency
with fewer server connections than clients.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from service.db.url import DatabaseURL
from tests.orchestration.service_process import ServiceProcess, free_port, problems
from tests.support import token_for

ALICE = "00000000-0000-0000-0000-0000000000a1"
BOB = "00000000-0000-0000-0000-0000000000b0"
SERVER_CONNECTIONS = 3


def _pgbouncer() -> str:
    found = shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if os.path.exists("/usr/sbin/pgbouncer") else None
    )
    if found is None:
        why = "Debian's pgbouncer is not installed (.ci/run installs it with apt-get)"
        if os.environ.get("CI"):
            pytest.fail(why)  # CI must run this test
        pytest.skip(why)
    return found


@pytest.fixture
def pgbouncer(database: DatabaseURL, world_traversable_tmp: Path) -> Iterator[DatabaseURL]:
    """PgBouncer in transaction mode in front of this test's database; its URL."""
    exe = _pgbouncer()
    folder = Path(tempfile.mkdtemp(prefix="pgbouncer-", dir=world_traversable_tmp))
    port = free_port()
    (folder / "users.txt").write_text('"postgres" ""\n')
    (folder / "pgbouncer.ini").write_text(
        f"""[databases]
* = host={database.url.host} port={database.url.port} user=postgres

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {folder}/users.txt
pool_mode = transaction
default_pool_size = {SERVER_CONNECTIONS}
max_client_conn = 200
logfile = {folder}/pgbouncer.log
pidfile = {folder}/pgbouncer.pid
"""
    )
    command = [exe, "-q", str(folder / "pgbouncer.ini")]
    if os.geteuid() == 0:
        # PgBouncer refuses to run as root; the folder just made is handed to `nobody`.
        nobody = pwd.getpwnam("nobody")
        for path in (folder, *folder.iterdir()):
            os.chown(path, nobody.pw_uid, nobody.pw_gid)
        command[1:1] = ["-u", "nobody"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        _wait_listening(port, process, folder / "pgbouncer.log")
        yield DatabaseURL(database.url.set(port=port))
    finally:
        process.terminate()
        process.wait(10)


def _wait_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                text = log.read_text() if log.exists() else ""
                raise AssertionError(f"pgbouncer did not start: {text}") from None
            time.sleep(0.05)


async def _seed(url: DatabaseURL) -> None:
    connection = await asyncpg.connect(**url.asyncpg_kwargs())
    try:
        await connection.execute(
            f"""
            INSERT INTO auth.users (id, email) VALUES
                ('{ALICE}', 'alice@example.com'), ('{BOB}', 'bob@example.com');
            INSERT INTO posts (title, content, published, author_id) VALUES
                ('public', 'seed', true, '{ALICE}'),
                ('alice draft', 'seed', false, '{ALICE}'),
                ('bob draft', 'seed', false, '{BOB}');
            """
        )
    finally:
        await connection.close()


READ = (
    "query Read { viewer { id } "
    'posts(filter: {content: {eq: "seed"}}, orderBy: [{title: ASC}]) { nodes { title } } }'
)
WRITE = (
    "mutation Write($title: String!) "
    '{ createPost(input: {title: $title, content: ""}) { title authorId } }'
)


def test_two_processes_through_pgbouncer_keep_each_callers_role_and_claims(
    database: DatabaseURL, pgbouncer: DatabaseURL
):
    asyncio.run(_seed(database))
    env = {
        "DATABASE_URL": pgbouncer.sqlalchemy,
        "MIGRATION_DATABASE_URL": database.sqlalchemy,  # the advisory lock needs a session
        "DATABASE_POOLER": "pgbouncer",
        "DB_POOL_SIZE": "6",
    }
    with ServiceProcess(**env) as one, ServiceProcess(**env) as two:
        one.wait_ready()
        two.wait_ready()
        results = asyncio.run(_mixed_load([one.base, two.base]))
        assert one.stop() == 0 and two.stop() == 0
    assert results["requests"] == 240
    assert results["wrong"] == [], results["wrong"][:5]
    assert problems(one.output) == [] and problems(two.output) == []


async def _mixed_load(bases: list[str]) -> dict[str, object]:
    """Anonymous readers, Alice and Bob read and write at once through both processes."""
    wrong: list[str] = []
    count = 0
    expected_reads = {
        None: (None, ["public"]),
        ALICE: ({"id": ALICE}, ["alice draft", "public"]),
        BOB: ({"id": BOB}, ["bob draft", "public"]),
    }

    async def one_caller(base: str, who: str | None, n: int) -> None:
        nonlocal count
        headers = {"authorization": f"Bearer {token_for(who)}"} if who else {}
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as http:
            for i in range(n):
                count += 1
                if who is not None and i % 3 == 0:
                    title = f"{who[-2:]}-{base[-5:]}-{i}"
                    body = (
                        await http.post(
                            "/graphql", json={"query": WRITE, "variables": {"title": title}}
                        )
                    ).json()
                    if body != {"data": {"createPost": {"title": title, "authorId": who}}}:
                        wrong.append(f"{who} write: {body}")
                    continue
                body = (await http.post("/graphql", json={"query": READ})).json()
                viewer, titles = expected_reads[who]
                data = body.get("data") or {}
                seen = [n["title"] for n in data.get("posts", {}).get("nodes", [])]
                if data.get("viewer") != viewer or seen != titles:
                    wrong.append(f"{who} read: {body}")

    callers = [
        one_caller(base, who, 20) for base in bases for who in (None, ALICE, BOB, None, ALICE, BOB)
    ]
    await asyncio.gather(*callers)
    return {"requests": count, "wrong": wrong}
