"""A read replica (DATABASE_READ_URL): queries and subscriptions run on a hot standby, writes on
the primary, each under the caller's role and claims; while the standby cannot serve, reads go
to the primary.

The standby is a real one: pg_basebackup of an embedded primary, replaying its WAL. Pausing the
replay (pg_wal_replay_pause) shows where each operation ran: a write lands on the primary while
the replica does not see it, until the replay goes on.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.db.embedded import EmbeddedPostgres
from service.db.url import DatabaseURL
from tests.orchestration.service_process import ServiceProcess, free_port, problems
from tests.support import LEAKS, execute_sql, fetch_sql, run_service, token_for

ALICE = "00000000-0000-0000-0000-0000000000a1"
CREATE = (
    "mutation ($title: String!, $published: Boolean!) { createPost(input: {title: $title, "
    'content: "", published: $published}) { id title author { id } } }'
)
READ = "query ($id: UUID!) { post(id: $id) { title } }"


@dataclass
class Cluster:
    primary: EmbeddedPostgres
    standby: EmbeddedPostgres

    @property
    def primary_url(self) -> DatabaseURL:
        return DatabaseURL.parse(self.primary.url())

    @property
    def standby_url(self) -> DatabaseURL:
        return DatabaseURL.parse(self.standby.url())


@pytest.fixture
def cluster(world_traversable_tmp: Path) -> Iterator[Cluster]:
    port = free_port()
    primary = EmbeddedPostgres(world_traversable_tmp / f"primary-{port}", port=port)
    primary.start()
    try:
        standby = primary.hot_standby(world_traversable_tmp / f"standby-{port}")
        standby.start()
        try:
            yield Cluster(primary, standby)
        finally:
            standby.stop()
    finally:
        primary.stop()


def _replay(cluster: Cluster, *, paused: bool) -> None:
    change = "pg_wal_replay_pause()" if paused else "pg_wal_replay_resume()"
    asyncio.run(execute_sql(cluster.standby_url, f"SELECT {change}"))


def _until(check, what: str, timeout: float = 15) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not {what} after {timeout} s"
        time.sleep(0.05)


def _replicated(cluster: Cluster, sql: str) -> bool:
    return bool(asyncio.run(fetch_sql(cluster.standby_url, sql)))


def _add_alice(cluster: Cluster) -> None:
    asyncio.run(
        execute_sql(
            cluster.primary_url,
            f"INSERT INTO auth.users (id, email) VALUES ('{ALICE}', 'alice@example.com')",
        )
    )
    _until(
        lambda: _replicated(cluster, f"SELECT FROM auth.users WHERE id = '{ALICE}'"),
        "replicated",
    )


def test_reads_run_on_the_replica_and_writes_on_the_primary(cluster: Cluster):
    env = {
        "DATABASE_URL": cluster.primary_url.sqlalchemy,
        "DATABASE_READ_URL": cluster.standby_url.sqlalchemy,
    }
    with ServiceProcess(**env) as service:
        service.wait_ready()  # migrated on the primary
        _until(lambda: _ready(service).get("readReplica") == "ok", "the replica in use")
        _add_alice(cluster)
        alice = {"Authorization": f"Bearer {token_for(ALICE)}"}

        _replay(cluster, paused=True)
        created = service.post(CREATE, {"title": "Fresh", "published": True}, headers=alice)
        assert created.status_code == 200, created.text
        post = created.json()["data"]["createPost"]
        # The write's own answer comes from the primary, in the write's statement.
        assert post["title"] == "Fresh" and post["author"]["id"] == ALICE
        draft = service.post(CREATE, {"title": "Mine", "published": False}, headers=alice)
        draft_id = draft.json()["data"]["createPost"]["id"]

        # The replica has not replayed them: a read does not find them yet.
        read = service.post(READ, {"id": post["id"]}, headers=alice)
        assert read.json() == {"data": {"post": None}}
        stored = asyncio.run(
            fetch_sql(cluster.primary_url, f"SELECT title FROM posts WHERE id = '{post['id']}'")
        )
        assert [r["title"] for r in stored] == ["Fresh"]

        # In a batch, the requests after a mutation read from the primary: they see its write.
        count = '{ posts(filter: {title: {eq: "Batched"}}) { totalCount } }'
        batch = [
            {"query": CREATE, "variables": {"title": "Batched", "published": True}},
            {"query": count},
        ]
        answers = httpx.post(service.base + "/graphql", json=batch, headers=alice).json()
        assert answers[0]["data"]["createPost"]["title"] == "Batched"
        assert answers[1] == {"data": {"posts": {"totalCount": 1}}}
        alone = service.post(count, headers=alice).json()
        assert alone == {"data": {"posts": {"totalCount": 0}}}  # the replica, still paused

        _replay(cluster, paused=False)
        _until(
            lambda: service.post(READ, {"id": post["id"]}).json()["data"]["post"] is not None,
            "read from the replica",
        )
        # On the replica too, Row Level Security decides with the caller's claims: the draft is
        # its author's only.
        as_alice = service.post(READ, {"id": draft_id}, headers=alice).json()
        assert as_alice == {"data": {"post": {"title": "Mine"}}}
        assert service.post(READ, {"id": draft_id}).json() == {"data": {"post": None}}

        # The replica's pool is in /metrics beside the primary's.
        metrics = service.get("/metrics").text
        assert 'service_db_read_pool_connections{state="idle"}' in metrics
        assert service.stop() == 0
    assert problems(service.output) == []


def _ready(service: ServiceProcess) -> dict[str, Any]:
    answer = service.get("/readyz")
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_reads_go_to_the_primary_while_the_replica_is_away_and_back_after(cluster: Cluster):
    env = {
        "DATABASE_URL": cluster.primary_url.sqlalchemy,
        "DATABASE_READ_URL": cluster.standby_url.sqlalchemy,
    }
    count = "{ posts { totalCount } }"
    with ServiceProcess(**env) as service:
        service.wait_ready()
        _until(lambda: _ready(service).get("readReplica") == "ok", "the replica in use")
        user = "00000000-0000-0000-0000-0000000000c1"
        asyncio.run(
            execute_sql(
                cluster.primary_url,
                f"INSERT INTO auth.users (id, email) VALUES ('{user}', 'c@example.com')",
            )
        )
        headers = {"Authorization": f"Bearer {token_for(user)}"}

        cluster.standby.stop()
        # The service stays ready and reads go on, from the primary: the first read finds
        # the replica gone (or the watcher does first) and runs there.
        written = service.post(CREATE, {"title": "t", "published": True}, headers=headers)
        assert written.json()["data"]["createPost"]["title"] == "t"
        read = service.post(count)
        assert read.status_code == 200, read.text
        assert read.json() == {"data": {"posts": {"totalCount": 1}}}  # the primary's rows
        assert not any(leak in read.text for leak in LEAKS)
        time.sleep(1.1)  # past /readyz's one-second cache
        assert _ready(service)["readReplica"] == "read replica not reachable"
        metrics = service.get("/metrics").text
        assert "service_db_read_replica_used 0.0" in metrics

        cluster.standby.start()  # same folder, same port: it catches up
        _until(lambda: _ready(service).get("readReplica") == "ok", "the replica back", 20)
        assert "service_db_read_replica_used 1.0" in service.get("/metrics").text
        # Reads are the replica's again: with its replay paused it misses a new write.
        _until(lambda: _replicated(cluster, "SELECT FROM posts"), "replicated")
        _replay(cluster, paused=True)
        service.post(CREATE, {"title": "u", "published": True}, headers=headers)
        assert service.post(count).json() == {"data": {"posts": {"totalCount": 1}}}
        _replay(cluster, paused=False)
        _until(lambda: service.post(count).json()["data"]["posts"]["totalCount"] == 2, "replayed")
        assert service.stop() == 0
    assert problems(service.output) == []


def test_a_writer_reads_its_writes_from_the_primary_until_the_replica_has_them(cluster: Cluster):
    env = {
        "DATABASE_URL": cluster.primary_url.sqlalchemy,
        "DATABASE_READ_URL": cluster.standby_url.sqlalchemy,
    }
    with ServiceProcess(**env) as service:
        service.wait_ready()
        _until(lambda: _ready(service).get("readReplica") == "ok", "the replica in use")
        _add_alice(cluster)
        alice = {"Authorization": f"Bearer {token_for(ALICE)}"}

        _replay(cluster, paused=True)
        # A client that keeps cookies, as browsers and HTTP clients' sessions do.
        with httpx.Client(base_url=service.base, headers=alice, timeout=10) as writer:
            created = writer.post(
                "/graphql",
                json={"query": CREATE, "variables": {"title": "Fresh", "published": True}},
            )
            post_id = created.json()["data"]["createPost"]["id"]
            cookie = created.headers["set-cookie"]
            assert re.fullmatch(
                r"read_after=[0-9A-F]+/[0-9A-F]+; Max-Age=30; Path=/; HttpOnly; SameSite=Lax",
                cookie,
            ), cookie
            read = {"query": READ, "variables": {"id": post_id}}
            # a mutation refused before it ran (its variables) wrote nothing: no cookie
            refused = writer.post(
                "/graphql",
                json={"query": CREATE, "variables": {"title": "Fresh", "published": "yes"}},
            )
            assert refused.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
            assert "set-cookie" not in refused.headers

            # The writer finds its post at once: the replica has not replayed it, so the
            # read runs on the primary. Another client, or the same without the cookie, reads
            # the replica and does not find it yet.
            assert writer.post("/graphql", json=read).json() == {
                "data": {"post": {"title": "Fresh"}}
            }
            assert service.post(READ, {"id": post_id}, headers=alice).json() == {
                "data": {"post": None}
            }
            # X-Explain says where each statement ran (GraphiQL's SQL panel shows it).
            explained = writer.post("/graphql", json=read, headers={"X-Explain": "on"}).json()
            assert [s["database"] for s in explained["extensions"]["explain"]] == ["primary"]
            elsewhere = httpx.post(
                service.base + "/graphql", json=read, headers={**alice, "X-Explain": "on"}
            ).json()
            assert [s["database"] for s in elsewhere["extensions"]["explain"]] == ["replica"]
            # Over GET too, and for the requests of a batch (whose mutation sets the cookie).
            got = writer.get(
                "/graphql", params={"query": READ, "variables": json.dumps({"id": post_id})}
            )
            assert got.json() == {"data": {"post": {"title": "Fresh"}}}
            batch = [{"query": CREATE, "variables": {"title": "Batched", "published": True}}]
            batched = httpx.post(service.base + "/graphql", json=batch, headers=alice)
            assert batched.headers["set-cookie"].startswith("read_after=")
            # A cookie that names no position is ignored: the read is the replica's.
            odd = httpx.post(
                service.base + "/graphql",
                json=read,
                headers={**alice, "Cookie": "read_after=yesterday"},
            )
            assert odd.status_code == 200 and odd.json() == {"data": {"post": None}}

            _replay(cluster, paused=False)
            _until(
                lambda: _replicated(cluster, "SELECT FROM posts WHERE title = 'Batched'"),
                "replicated",
            )
            # Once the replica has replayed the write, the writer's reads are the replica's
            # again: paused anew, it misses a change made on the primary since.
            _replay(cluster, paused=True)
            asyncio.run(
                execute_sql(
                    cluster.primary_url,
                    f"UPDATE posts SET title = 'Changed' WHERE id = '{post_id}'",
                )
            )
            assert writer.post("/graphql", json=read).json() == {
                "data": {"post": {"title": "Fresh"}}
            }
            _replay(cluster, paused=False)

        metrics = service.get("/metrics").text
        assert 'service_db_reads_after_writes_total{database="primary"} 3.0' in metrics
        assert 'service_db_reads_after_writes_total{database="replica"} 1.0' in metrics
        assert service.stop() == 0
    assert problems(service.output) == []

    # READ_YOUR_WRITES_SECONDS=0: no cookie, and every read is the replica's.
    with ServiceProcess(**env, READ_YOUR_WRITES_SECONDS="0") as service:
        service.wait_ready()
        _until(lambda: _ready(service).get("readReplica") == "ok", "the replica in use")
        _replay(cluster, paused=True)
        created = service.post(CREATE, {"title": "Unseen", "published": True}, headers=alice)
        assert "set-cookie" not in created.headers
        post_id = created.json()["data"]["createPost"]["id"]
        # the replica's answer even with a cookie of a position it has not replayed
        assert httpx.post(
            service.base + "/graphql",
            json={"query": READ, "variables": {"id": post_id}},
            headers={**alice, "Cookie": "read_after=FFFFFFFF/0"},
        ).json() == {"data": {"post": None}}
        _replay(cluster, paused=False)
        assert service.stop() == 0


def test_a_replica_further_behind_than_allowed_serves_no_reads_until_it_catches_up(
    cluster: Cluster,
):
    env = {
        "DATABASE_URL": cluster.primary_url.sqlalchemy,
        "DATABASE_READ_URL": cluster.standby_url.sqlalchemy,
        "READ_REPLICA_MAX_LAG_SECONDS": "3",
    }
    count = "{ posts { totalCount } }"
    with ServiceProcess(**env) as service:
        service.wait_ready()
        _until(lambda: _ready(service).get("readReplica") == "ok", "the replica in use")
        _add_alice(cluster)
        time.sleep(2.5)  # a check or more since: the replica has replayed everything
        assert _ready(service)["readReplicaLagSeconds"] < 1  # idle, caught up
        assert "service_db_read_replica_lag_seconds" in service.get("/metrics").text

        _replay(cluster, paused=True)
        asyncio.run(
            execute_sql(
                cluster.primary_url,
                "INSERT INTO posts (title, content, published, author_id) "
                f"VALUES ('Late', '', true, '{ALICE}')",
            )
        )
        # Behind, but within the limit: reads are still the replica's.
        assert service.post(count).json() == {"data": {"posts": {"totalCount": 0}}}
        _until(
            lambda: _ready(service)["readReplica"].endswith("s behind the primary"),
            "the replica too far behind",
        )
        ready = _ready(service)
        assert ready["readReplicaLagSeconds"] > 3, ready
        # Too far behind: reads go to the primary, which has the post.
        assert service.post(count).json() == {"data": {"posts": {"totalCount": 1}}}
        assert "service_db_read_replica_used 0.0" in service.get("/metrics").text

        _replay(cluster, paused=False)
        _until(lambda: _ready(service).get("readReplica") == "ok", "caught up")
        assert _ready(service)["readReplicaLagSeconds"] < 3
        assert service.stop() == 0
    assert problems(service.output) == []


def test_until_the_replica_has_replayed_the_migrations_reads_go_to_the_primary(
    cluster: Cluster,
):
    _replay(cluster, paused=True)
    env = {
        "DATABASE_URL": cluster.primary_url.sqlalchemy,
        "DATABASE_READ_URL": cluster.standby_url.sqlalchemy,
    }
    with ServiceProcess(**env) as service:
        service.wait_ready()  # migrated on the primary; ready without the replica
        # (its first migration creates the API's roles: the replica does not have them yet)
        refused = "read replica not ready (PostgreSQL error 22023)"
        _until(lambda: _ready(service)["readReplica"] == refused, "the replica checked")
        answer = service.post("{ posts { totalCount } }")
        assert answer.json() == {"data": {"posts": {"totalCount": 0}}}
        _replay(cluster, paused=False)
        _until(lambda: _ready(service).get("readReplica") == "ok", "the replica in use", 20)
        assert service.stop() == 0


def test_a_read_url_without_a_database_url_is_a_settings_error():
    result = run_service("serve", DATABASE_READ_URL="postgresql://replica.internal/service")
    assert result.returncode == 2
    assert "DATABASE_READ_URL needs DATABASE_URL" in result.stderr
    assert "Traceback" not in result.stderr
