"""The `service` command as an operator runs it: serve, migrate, and its failures."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import asyncpg
import pytest

from service.db.migrate import LOCK_KEY, schema_history
from tests.orchestration.service_process import ServiceProcess, free_port
from tests.support import ROOT, SERVICE, execute_sql, run_service, service_env


def test_serve_migrates_then_answers_graphql_over_http(empty_database):
    with ServiceProcess(DATABASE_URL=empty_database.sqlalchemy) as service:
        service.wait_ready()
        asyncio.run(
            execute_sql(
                empty_database,
                "INSERT INTO auth.users (id, email) VALUES "
                "('00000000-0000-0000-0000-00000000000a', 'a@example.com');"
                "INSERT INTO posts (title, content, published, author_id) VALUES "
                "('Hello', 'World', true, '00000000-0000-0000-0000-00000000000a')",
            )
        )
        response = service.post("{ posts { nodes { title author { id } } } }")
        assert response.status_code == 200
        assert response.json() == {
            "data": {
                "posts": {
                    "nodes": [
                        {"title": "Hello", "author": {"id": "00000000-0000-0000-0000-00000000000a"}}
                    ]
                }
            }
        }
        code = service.stop()
    assert code == 0, service.output
    assert "serving GraphQL at http://localhost:" in service.output
    assert "Traceback" not in service.output


def test_a_second_server_on_the_same_data_folder_fails_clearly(world_traversable_tmp: Path):
    data_dir = world_traversable_tmp / "two-servers"
    with ServiceProcess(SERVICE_DATA_DIR=str(data_dir)):
        deadline = time.monotonic() + 60
        while not (data_dir / "postmaster.pid").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1)
        second = run_service("serve", "--port", str(free_port()), SERVICE_DATA_DIR=str(data_dir))
    assert second.returncode != 0
    lines = [line for line in second.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, second.stderr
    assert "already in use by another running server" in lines[0]


def test_two_migrations_at_once_one_migrates_the_other_waits_then_does_nothing(
    empty_database,
):
    async def scenario() -> tuple[str, str]:
        holder = await asyncpg.connect(**empty_database.asyncpg_kwargs())
        await holder.execute(f"SELECT pg_advisory_lock({LOCK_KEY})")
        env = service_env(DATABASE_URL=empty_database.sqlalchemy)
        processes = [
            await asyncio.create_subprocess_exec(
                *SERVICE,
                "migrate",
                cwd=ROOT,
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            for _ in range(2)
        ]

        async def until_waiting(p: asyncio.subprocess.Process) -> bytes:
            # Read until the process says it waits on the lock the test holds.
            seen = b""
            while b"waiting for the migration lock" not in seen:
                assert p.stdout is not None
                line = await p.stdout.readline()
                assert line, seen.decode()
                seen += line
            return seen

        before = await asyncio.wait_for(asyncio.gather(*map(until_waiting, processes)), 60)
        assert all(p.returncode is None for p in processes)
        await holder.execute(f"SELECT pg_advisory_unlock({LOCK_KEY})")
        await holder.close()
        outputs = []
        for p, head in zip(processes, before, strict=True):
            out, _ = await asyncio.wait_for(p.communicate(), 60)
            assert p.returncode == 0, out
            outputs.append((head + out).decode())
        return outputs[0], outputs[1]

    a, b = asyncio.run(scenario())
    both = a + b
    assert both.count("migrated schema from empty to") == 1, both
    assert both.count("nothing to migrate") == 1, both
    assert both.count("waiting for the migration lock") == 2, both


@pytest.mark.parametrize(
    "url",
    ["not a url", "mysql://user@localhost/db", "postgresql://u@127.0.0.1:1/nothing-listens"],
)
def test_a_bad_or_unreachable_database_is_one_clear_line_and_a_failure(url):
    result = run_service(
        "migrate", DATABASE_URL=url, DB_CONNECT_TIMEOUT="2", DB_STARTUP_TIMEOUT="1"
    )
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    # An unreachable one is retried (one line says so) until DB_STARTUP_TIMEOUT; then one error.
    assert len(lines) <= 2, result.stderr
    assert [line for line in lines if " ERROR " in line] == [lines[-1]], result.stderr
    assert "Traceback" not in result.stderr
    assert "DATABASE_URL" in lines[-1] or "cannot reach the database" in lines[-1]


def test_a_database_migrated_by_a_newer_release_is_left_alone_with_a_warning(database):
    asyncio.run(execute_sql(database, "UPDATE alembic_version SET version_num = 'f00dcafe9999'"))
    result = run_service("migrate", DATABASE_URL=database.sqlalchemy)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "WARNING" in line]
    assert len(warnings) == 1
    assert "f00dcafe9999" in warnings[0] and schema_history().head in warnings[0]

    refused = run_service("migrate", DATABASE_URL=database.sqlalchemy, REFUSE_NEWER_SCHEMA="true")
    assert refused.returncode != 0
    assert "f00dcafe9999" in refused.stderr


def test_a_function_the_models_name_but_the_database_lacks_stops_the_start(database):
    # as if a migration creating it were missing (or a model named it wrongly)
    asyncio.run(execute_sql(database, "DROP FUNCTION search_posts(text)"))
    for command in ("migrate", "serve"):
        result = run_service(command, DATABASE_URL=database.sqlalchemy)
        assert result.returncode == 1, result.stderr
        [error] = [line for line in result.stderr.splitlines() if " ERROR " in line]
        assert "no function search_posts (Post.__query_functions__)" in error
        assert "Traceback" not in result.stderr


def test_python_dash_m_service_is_the_same_command():
    result = run_service("--help")
    assert result.returncode == 0
    for command in ("serve", "migrate", "schema"):
        assert command in result.stdout
    assert os.path.exists(ROOT / "alembic.ini")
