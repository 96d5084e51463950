"""Starting as an orchestrator starts us: before the database, many at once, mid-deploy, broken."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import asyncpg
import httpx
from alembic.config import Config

from service.db.embedded import EmbeddedPostgres
from service.db.migrate import LOCK_KEY, SchemaHistory, migrate
from service.db.url import DatabaseURL
from tests.orchestration.schema_copies import copy_with_revision, schema_snapshot
from tests.orchestration.service_process import ServiceProcess, free_port, problems
from tests.support import token_for

USER = "00000000-0000-0000-0000-00000000000a"
COUNT_POSTS = "query CountPosts { posts { totalCount } }"


def execute(url: DatabaseURL, sql: str) -> None:
    async def run() -> None:
        connection = await asyncpg.connect(**url.asyncpg_kwargs())
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(run())


def test_before_the_database_exists_it_answers_probes_then_gives_up_with_one_clear_line():
    nowhere = f"postgresql://postgres@127.0.0.1:{free_port()}/service"
    with ServiceProcess(DATABASE_URL=nowhere, DB_STARTUP_TIMEOUT="3") as service:
        started = time.monotonic()
        service.wait_listening()
        assert service.get("/livez").status_code == 200
        ready = service.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["reason"] == "waiting for the database"
        early = service.post(COUNT_POSTS)
        assert early.status_code == 503
        assert early.headers["retry-after"] == "1"
        assert early.json()["errors"][0]["extensions"]["code"] == "INTERNAL"
        assert "waiting for the database" in early.json()["errors"][0]["message"]
        code = service.wait_exit(20)
        waited = time.monotonic() - started
    assert code == 1, service.output
    assert 2.5 < waited < 10
    [error] = problems(service.output)
    assert "cannot reach the database" in error and "DB_STARTUP_TIMEOUT" in error
    assert "Traceback" not in service.output


def test_a_database_that_comes_up_later_is_waited_for_then_migrated_and_served(
    world_traversable_tmp: Path,
):
    port = free_port()
    server = EmbeddedPostgres(world_traversable_tmp / f"late-{port}", port=port, fast_unsafe=True)
    url = DatabaseURL.parse(server.url())
    with ServiceProcess(DATABASE_URL=url.sqlalchemy, DB_STARTUP_TIMEOUT="60") as service:
        service.wait_listening()
        assert service.get("/readyz").json()["reason"] == "waiting for the database"
        time.sleep(1)
        server.start()
        try:
            service.wait_ready(30)
            response = service.post(COUNT_POSTS)
            assert response.json() == {"data": {"posts": {"totalCount": 0}}}
            assert service.stop() == 0
        finally:
            server.stop()
    assert "migrated schema from empty to" in service.output
    assert problems(service.output) == []


def test_eight_replicas_on_one_empty_database_one_migrates_the_others_wait_all_serve(
    empty_database: DatabaseURL,
):
    async def hold_lock() -> asyncpg.Connection:
        holder = await asyncpg.connect(**empty_database.asyncpg_kwargs())
        await holder.execute(f"SELECT pg_advisory_lock({LOCK_KEY})")
        return holder

    # The test holds the migration lock until all eight wait for it: they really start together.
    loop = asyncio.new_event_loop()
    holder = loop.run_until_complete(hold_lock())
    replicas = [ServiceProcess(DATABASE_URL=empty_database.sqlalchemy) for _ in range(8)]
    try:
        for replica in replicas:
            replica.wait_line("waiting for the migration lock", timeout=60)
            assert replica.get("/livez").status_code == 200
            assert replica.get("/readyz").json()["reason"] == "migrating"
        loop.run_until_complete(holder.execute(f"SELECT pg_advisory_unlock({LOCK_KEY})"))
        for replica in replicas:
            replica.wait_ready(60)
            assert replica.post(COUNT_POSTS).json() == {"data": {"posts": {"totalCount": 0}}}
        codes = [replica.stop() for replica in replicas]
    finally:
        loop.run_until_complete(holder.close())
        loop.close()
        for replica in replicas:
            replica.__exit__()
    assert codes == [0] * 8
    logs = [replica.output for replica in replicas]
    assert sum(log.count("migrated schema from empty to") for log in logs) == 1
    assert sum(log.count("nothing to migrate") for log in logs) == 7
    for log in logs:
        assert problems(log) == [], log
        assert " WARNING " not in log, log


def test_a_failing_migration_stops_the_start_serves_nothing_and_changes_nothing(
    database: DatabaseURL, tmp_path: Path
):
    copy_with_revision(
        tmp_path,
        "f00dbad00001",
        """
op.create_table("half_done", sa.Column("id", sa.Integer, primary_key=True))
op.add_column("posts", sa.Column("half_done_note", sa.Text))
op.execute("INSERT INTO no_such_table VALUES (1)")
""",
    )
    before = schema_snapshot(database)
    answers = []
    with ServiceProcess(cwd=tmp_path, DATABASE_URL=database.sqlalchemy) as service:
        while service.process.poll() is None:
            with contextlib.suppress(httpx.TransportError):  # not listening yet, or gone
                answers.append(service.post(COUNT_POSTS, timeout=2).status_code)
            time.sleep(0.05)
        code = service.wait_exit()
    assert code == 1
    assert 200 not in answers
    [error] = problems(service.output)
    assert "migration to f00dbad00001 failed in 29991231_f00dbad00001.py line" in error
    assert "no_such_table" in error and "nothing was applied" in error
    assert schema_snapshot(database) == before


def test_a_rolling_deploy_serves_a_schema_migrated_by_a_newer_release(
    database: DatabaseURL, tmp_path: Path
):
    execute(database, f"INSERT INTO auth.users (id, email) VALUES ('{USER}', 'a@example.com')")
    newer = SchemaHistory(
        Config(
            str(
                copy_with_revision(
                    tmp_path,
                    "c0ffee000001",
                    'op.add_column("posts", sa.Column("subtitle", sa.Text, nullable=True))',
                )
            )
        )
    )
    create = 'mutation Write { createPost(input: {title: "t", content: "c"}) { title } }'
    auth = {"authorization": f"Bearer {token_for(USER)}"}
    with ServiceProcess(DATABASE_URL=database.sqlalchemy) as running:
        running.wait_ready()
        # The newer release migrates while this one is serving (expand: a nullable column).
        asyncio.run(migrate(database, history=newer))
        time.sleep(1.1)  # /readyz caches its answer for a second
        still = running.get("/readyz")
        assert still.status_code == 200 and still.json()["schema"] == "newer"
        assert running.post(create, headers=auth).json() == {"data": {"createPost": {"title": "t"}}}

        with ServiceProcess(DATABASE_URL=database.sqlalchemy) as starting:
            starting.wait_ready()
            assert starting.get("/readyz").json()["schema"] == "newer"
            written = starting.post(create, headers=auth)
            assert written.json() == {"data": {"createPost": {"title": "t"}}}
            mine = starting.post(COUNT_POSTS, headers=auth)  # unpublished: only their author's
            assert mine.json() == {"data": {"posts": {"totalCount": 2}}}
            assert starting.stop() == 0
        assert running.stop() == 0
    warnings = [line for line in starting.lines if " WARNING " in line]
    assert len(warnings) == 1, starting.output
    assert "c0ffee000001" in warnings[0] and "newer than this code's head" in warnings[0]
    assert problems(starting.output) == [] and problems(running.output) == []
