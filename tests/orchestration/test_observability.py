"""What operators read: one log line per request (JSON in production), and /metrics."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path

import asyncpg
import httpx
from prometheus_client.parser import text_string_to_metric_families

from service.db.url import DatabaseURL
from tests.orchestration.service_process import ServiceProcess, problems
from tests.support import token_for

SECRET = "s3cr3t-do-not-log"
USER = "00000000-0000-0000-0000-00000000000d"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Prometheus exposition text as {(sample name, sorted labels): value}."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


def test_json_logs_have_one_line_per_request_with_its_operation_and_never_a_secret(
    database: DatabaseURL,
):
    with ServiceProcess(DATABASE_URL=database.sqlalchemy, LOG_FORMAT="json") as service:
        service.wait_ready()
        token = token_for(USER)
        auth = {"authorization": f"Bearer {token}"}
        query = (
            "query Titles($first: Int, $note: String) "
            "{ posts(first: $first, filter: {title: {eq: $note}}) { totalCount } }"
        )
        service.post(query, {"first": 5, "note": SECRET}, headers=auth)
        httpx.get(
            f"{service.base}/graphql",
            params={"query": query, "variables": json.dumps({"note": SECRET})},
        )
        service.post("{ posts { totalCount } }", headers={"authorization": f"Bearer {SECRET}"})
        service.post("query Broken { nope }")
        httpx.post(f"{service.base}/graphql", content=b"{not json", timeout=5)
        service.get("/readyz")  # a probe: not logged at info level
        service.stop()

    records = [json.loads(line) for line in service.lines]  # every line is one JSON object
    requests = [r for r in records if r["logger"] == "service.request"]
    assert [(r["method"], r["status"], r["operation"], r["outcome"]) for r in requests] == [
        ("POST", 200, "Titles", "ok"),
        ("GET", 200, "Titles", "ok"),
        ("POST", 401, "none", "unauthenticated"),
        ("POST", 200, "invalid", "request_error"),  # not valid: no operation to name
        ("POST", 400, "none", "request_error"),
    ]
    for r in requests:
        assert r["path"] == "/graphql"
        assert isinstance(r["duration_ms"], float) and 0 <= r["duration_ms"] < 5000
        assert r["level"] == "info"
    assert requests[0]["role"] == "authenticated"
    assert SECRET not in service.output
    assert token not in service.output
    assert token.split(".")[2] not in service.output  # not even the signature
    assert problems(service.output) == []


def test_a_request_id_is_passed_on_or_made_and_marks_every_line_the_request_logs(
    database: DatabaseURL,
):
    query = "query Count { posts { totalCount } }"
    with ServiceProcess(DATABASE_URL=database.sqlalchemy, LOG_FORMAT="json") as service:
        service.wait_ready()
        given = service.post(query, headers={"x-request-id": "edge-42/a"})
        made = [service.post(query) for _ in range(2)]
        not_sane = [
            service.post(query, headers={"x-request-id": value})
            for value in ("two words", "x" * 129, "")
        ]
        # The database drops a request's connection mid-statement: the request fails, and
        # the warning it logs carries its id.
        dropped = asyncio.run(_dropped_mid_request(service, database, query, "after-drop"))
        service.stop()

    assert given.headers["x-request-id"] == "edge-42/a"
    fresh = [r.headers["x-request-id"] for r in made + not_sane]
    assert all(re.fullmatch("[0-9a-f]{16}", rid) for rid in fresh), fresh
    assert len(set(fresh)) == len(fresh)
    assert dropped.json()["errors"][0]["extensions"]["code"] == "INTERNAL"

    records = [json.loads(line) for line in service.lines]
    requests = [r for r in records if r["logger"] == "service.request"]
    assert [r["request_id"] for r in requests] == ["edge-42/a", *fresh, "after-drop"]
    warnings = [r for r in records if r["level"] == "warning"]
    assert warnings, service.output
    assert all(r.get("request_id") == "after-drop" for r in warnings), warnings


async def _dropped_mid_request(
    service: ServiceProcess, database: DatabaseURL, query: str, rid: str
) -> httpx.Response:
    """Hold the posts table locked, send the request, and terminate its backend while it
    waits for the lock."""
    locker = await asyncpg.connect(**database.asyncpg_kwargs())
    try:
        await locker.execute("BEGIN; LOCK TABLE posts IN ACCESS EXCLUSIVE MODE")
        sent = asyncio.get_running_loop().run_in_executor(
            None, lambda: service.post(query, headers={"x-request-id": rid})
        )
        for _ in range(200):
            waiting = await locker.fetchval(
                "SELECT pid FROM pg_stat_activity "
                "WHERE application_name = 'service' AND wait_event_type = 'Lock'"
            )
            if waiting:
                break
            await asyncio.sleep(0.05)
        assert waiting, "the request never reached the database"
        await locker.fetchval("SELECT pg_terminate_backend($1)", waiting)
        return await sent
    finally:
        await locker.close()


def test_text_logs_in_development_read_as_one_plain_line_per_request(database: DatabaseURL):
    with ServiceProcess(DATABASE_URL=database.sqlalchemy) as service:
        service.wait_ready()
        service.post("query Count { posts { totalCount } }")
        line = service.wait_line("service.request:")
        service.stop()
    assert line.split(" ", 1)[1].startswith("INFO    service.request: POST /graphql 200 Count ok ")
    assert line.endswith(" ms")
    assert "{" not in line


def test_metrics_count_requests_and_latency_by_operation_and_outcome_with_a_name_cap(
    database: DatabaseURL,
):
    with ServiceProcess(DATABASE_URL=database.sqlalchemy, METRICS_MAX_OPERATIONS="3") as service:
        service.wait_ready()
        for _ in range(4):
            service.post("query Count { posts { totalCount } }")
        # Valid, but its variable is missing: a request error of the operation Count.
        service.post("query Count($n: Int!) { posts(first: $n) { totalCount } }")
        for name in ("A", "B", "C", "D"):  # Count, A and B fill the cap of 3
            service.post(f"query {name} {{ posts {{ totalCount }} }}")
        response = service.get("/metrics")
        assert service.stop() == 0
    assert response.headers["content-type"].startswith("text/plain; version=")
    text = response.text
    requests = "service_graphql_requests_total"
    assert value(text, requests, operation="Count", outcome="ok") == 4
    assert value(text, requests, operation="Count", outcome="request_error") == 1
    assert value(text, requests, operation="A", outcome="ok") == 1
    assert value(text, requests, operation="B", outcome="ok") == 1
    assert value(text, requests, operation="other", outcome="ok") == 2  # C and D
    assert value(text, requests, operation="C", outcome="ok") == 0
    latency = "service_graphql_request_duration_seconds"
    assert value(text, f"{latency}_count", operation="Count", outcome="ok") == 4
    assert 0 < value(text, f"{latency}_sum", operation="Count", outcome="ok") < 5
    assert value(text, "service_db_pool_max_connections") == 10
    in_use = value(text, "service_db_pool_connections", state="in_use")
    idle = value(text, "service_db_pool_connections", state="idle")
    assert in_use == 0 and 1 <= idle <= 10
    assert value(text, "service_migration_state", state="done") == 1
    assert value(text, "service_migration_state", state="migrating") == 0
    assert value(text, "service_schema_newer_than_code") == 0


def test_with_workers_one_process_migrates_and_metrics_add_up_over_all_of_them(
    empty_database: DatabaseURL, tmp_path: Path
):
    with ServiceProcess(
        "--workers", "2", DATABASE_URL=empty_database.sqlalchemy, TMPDIR=str(tmp_path)
    ) as service:
        service.wait_ready(60)
        metrics_dirs = list(tmp_path.glob("service-metrics-*"))
        assert len(metrics_dirs) == 1
        for _ in range(30):  # a new connection each: the kernel spreads them over the workers
            assert service.post("query Count { posts { totalCount } }").status_code == 200
        deadline = time.monotonic() + 10
        while True:
            text = service.get("/metrics").text
            # Each worker reports its own pool (refreshed every 2 s); a scrape sums them.
            if value(text, "service_db_pool_max_connections") == 20 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert service.stop() == 0
    assert value(text, "service_db_pool_max_connections") == 20
    assert value(text, "service_graphql_requests_total", operation="Count", outcome="ok") == 30
    assert value(text, "service_migration_state", state="done") == 1
    assert service.output.count("migrated schema from empty to") == 1
    assert service.output.count("Started server process") == 3  # the parent's probe server, 2
    assert problems(service.output) == []
    assert not metrics_dirs[0].exists()  # removed at exit
