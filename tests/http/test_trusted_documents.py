"""Trusted documents: the operations a frontend build declared, from TRUSTED_DOCUMENTS_FILE.
With TRUSTED_DOCUMENTS_ONLY no other query text runs, however it is sent."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from service.app import create_executor, persisted_queries
from service.db.url import DatabaseURL
from tests.support import RunningService, run_service, settings_for

COUNT = "query Count { posts { totalCount } }"
DELETE_ALL = 'mutation Nope { deletePost(id: "00000000-0000-0000-0000-000000000000") { id } }'


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def apollo_manifest(path: Path, operations: dict[str, str]) -> Path:
    """As @apollo/generate-persisted-query-manifest writes it."""
    manifest = {
        "format": "apollo-persisted-query-manifest",
        "version": 1,
        "operations": [
            {"id": id_, "body": body, "name": "Count", "type": "query"}
            for id_, body in operations.items()
        ],
    }
    path.write_bytes(orjson.dumps(manifest))
    return path


async def answer(http: httpx.AsyncClient, payload: Any) -> tuple[int, dict[str, Any]]:
    response = await http.post("/graphql", json=payload)
    body: dict[str, Any] = response.json()
    return response.status_code, body


async def test_only_trusted_documents_run_however_they_are_named(database, tmp_path):
    path = apollo_manifest(tmp_path / "manifest.json", {"count-v1": COUNT})
    service = RunningService(database, trusted_documents_file=path, trusted_documents_only=True)
    counted = {"data": {"posts": {"totalCount": 0}}}
    async with service as http:
        # by the manifest's id, by the GraphQL-over-HTTP draft's sha256 id, by Apollo's hash,
        # or as the very text the build declared
        assert await answer(http, {"documentId": "count-v1"}) == (200, counted)
        assert await answer(http, {"documentId": f"sha256:{sha256(COUNT)}"}) == (200, counted)
        apq = {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha256(COUNT)}}}
        assert await answer(http, apq) == (200, counted)
        assert await answer(http, {"query": COUNT}) == (200, counted)
        over_get = await http.get("/graphql", params={"documentId": "count-v1"})
        assert over_get.json() == counted
        batch = await http.post("/graphql", json=[{"documentId": "count-v1"}, {"query": "{ x }"}])
        assert batch.json()[0] == counted
        assert batch.json()[1]["errors"][0]["extensions"]["code"] == "FORBIDDEN"

        for refused in (
            {"query": "{ posts { totalCount } }"},  # the same operation, other text
            {"query": DELETE_ALL},
            {"query": DELETE_ALL, "extensions": _apq(DELETE_ALL)},  # nothing is registered
        ):
            status, body = await answer(http, refused)
            assert status == 403, refused
            [error] = body["errors"]
            assert error["extensions"]["code"] == "FORBIDDEN"
            assert "only trusted documents" in error["message"]
        status, body = await answer(http, {"extensions": _apq(DELETE_ALL)})
        assert body["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
        status, body = await answer(http, {"documentId": "count-v2"})
        assert (status, body["errors"][0]["extensions"]["code"]) == (400, "NOT_FOUND")


def _apq(query: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": sha256(query)}}


async def test_a_relay_or_codegen_map_adds_ids_and_other_queries_still_run(database, tmp_path):
    path = tmp_path / "persisted-documents.json"
    path.write_bytes(orjson.dumps({"a1b2c3": COUNT}))
    async with RunningService(database, trusted_documents_file=path) as http:
        counted = {"data": {"posts": {"totalCount": 0}}}
        assert await answer(http, {"documentId": "a1b2c3"}) == (200, counted)
        assert await answer(http, {"query": "{ posts { totalCount } }"}) == (200, counted)


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (None, "No such file"),
        (b"{not json", "not valid JSON"),
        (b"[]", "expected Apollo's persisted query manifest"),
        (b'{"format": "apollo-persisted-query-manifest", "version": 2}', "version 1"),
        (b'{"x": 1}', "the document 'x' is not a string"),
    ],
)
def test_a_file_that_cannot_be_used_stops_the_start_with_one_line(
    database: DatabaseURL, tmp_path: Path, content: bytes | None, says: str
):
    path = tmp_path / "manifest.json"
    if content is not None:
        path.write_bytes(content)
    result = run_service(
        "serve", "--port", "0", DATABASE_URL=database.sqlalchemy, TRUSTED_DOCUMENTS_FILE=str(path)
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"TRUSTED_DOCUMENTS_FILE {path}" in result.stderr
    assert says in result.stderr
    assert "Traceback" not in result.stderr


def test_trusted_only_without_a_file_is_a_settings_error():
    result = run_service("serve", TRUSTED_DOCUMENTS_ONLY="true")
    assert result.returncode == 2
    assert "TRUSTED_DOCUMENTS_ONLY needs TRUSTED_DOCUMENTS_FILE" in result.stderr


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_documents_this_schema_cannot_run_are_named_at_start(database, tmp_path):
    path = apollo_manifest(
        tmp_path / "manifest.json", {"ok": COUNT, "stale": "query Old { posts { rating } }"}
    )
    settings = settings_for(database, trusted_documents_file=path)
    records = _Records()
    logger = logging.getLogger("service")
    logger.addHandler(records)
    try:
        persisted_queries(settings, create_executor(settings))
    finally:
        logger.removeHandler(records)
    assert any(
        m.startswith("1 of the 2 trusted documents") and "(ids stale)" in m
        for m in records.messages
    ), records.messages
