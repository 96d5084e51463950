"""gzip: a client that accepts it gets large /graphql answers compressed, the same JSON once
unpacked; other clients and small answers get them as they are."""

from __future__ import annotations

import gzip
from dataclasses import dataclass

import httpx
import orjson
from graphql import get_introspection_query

from service.db.url import DatabaseURL
from tests.support import RunningService

INTROSPECTION = get_introspection_query()  # tens of kB of JSON
SMALL = "{ viewer { id } }"


@dataclass
class Sent:
    """An answer as it went over the wire: headers and the body before any decoding."""

    status: int
    headers: httpx.Headers
    raw: bytes

    def json(self) -> object:
        gzipped = self.headers.get("content-encoding") == "gzip"
        return orjson.loads(gzip.decompress(self.raw) if gzipped else self.raw)


async def request(
    http: httpx.AsyncClient,
    accept_encoding: str | None,
    method: str = "POST",
    **kwargs: object,
) -> Sent:
    """A request with exactly this Accept-Encoding (None: without the header)."""
    built = http.build_request(method, "/graphql", **kwargs)  # type: ignore[arg-type]
    del built.headers["accept-encoding"]  # httpx's default
    if accept_encoding is not None:
        built.headers["accept-encoding"] = accept_encoding
    response = await http.send(built, stream=True)
    try:
        raw = b"".join([chunk async for chunk in response.aiter_raw()])
    finally:
        await response.aclose()
    assert int(response.headers["content-length"]) == len(raw)
    return Sent(response.status_code, response.headers, raw)


async def test_a_large_answer_is_gzipped_for_a_client_that_accepts_it(database: DatabaseURL):
    async with RunningService(database) as http:
        body = {"query": INTROSPECTION}
        plain = await request(http, None, json=body)
        assert plain.status == 200
        assert "content-encoding" not in plain.headers
        assert len(plain.raw) > 20_000

        for accept in ("gzip, deflate, br, zstd", "br;q=1.0, gzip;q=0.8", "*"):
            packed = await request(http, accept, json=body)
            assert packed.status == 200
            assert packed.headers["content-encoding"] == "gzip", accept
            assert packed.headers["content-type"] == "application/json"
            assert gzip.decompress(packed.raw) == plain.raw
            assert len(packed.raw) < len(plain.raw) / 4
            # caches between us and clients keep the two apart
            assert "accept-encoding" in packed.headers["vary"].lower()
            assert "accept-encoding" in plain.headers["vary"].lower()

        # over GET too (queries a CDN may cache)
        got = await request(http, "gzip", "GET", params={"query": INTROSPECTION})
        assert got.headers["content-encoding"] == "gzip"
        assert gzip.decompress(got.raw) == plain.raw


async def test_a_client_that_refuses_gzip_gets_the_json_as_it_is(database: DatabaseURL):
    async with RunningService(database) as http:
        body = {"query": INTROSPECTION}
        for accept in ("identity", "gzip;q=0", "br, zstd", "*, gzip;q=0", "*;q=0"):
            sent = await request(http, accept, json=body)
            assert sent.status == 200
            assert "content-encoding" not in sent.headers, accept
            assert "__schema" in sent.json()["data"]  # type: ignore[index]


async def test_a_small_answer_is_not_worth_compressing(database: DatabaseURL):
    async with RunningService(database) as http:
        sent = await request(http, "gzip", json={"query": SMALL})
        assert sent.status == 200
        assert "content-encoding" not in sent.headers
        assert sent.json() == {"data": {"viewer": None}}


async def test_errors_and_batches_are_compressed_like_any_answer(database: DatabaseURL):
    async with RunningService(database, gzip_min_bytes=1) as http:
        refused = await request(http, "gzip", json={"query": "{ nope }"})
        assert refused.status == 200
        assert refused.headers["content-encoding"] == "gzip"
        errors = refused.json()["errors"]  # type: ignore[index]
        assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"

        batch = await request(http, "gzip", json=[{"query": SMALL}, {"query": SMALL}])
        assert batch.headers["content-encoding"] == "gzip"
        assert batch.json() == [{"data": {"viewer": None}}, {"data": {"viewer": None}}]

        unauthenticated = await request(
            http, "gzip", json={"query": SMALL}, headers={"authorization": "Bearer nonsense"}
        )
        assert unauthenticated.status == 401
        assert unauthenticated.headers["content-encoding"] == "gzip"
        assert unauthenticated.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"  # type: ignore[index]


async def test_a_response_too_large_for_the_event_loop_is_compressed_in_a_thread(
    database: DatabaseURL,
):
    # Over 64 kB: compressed off the event loop, and just as correct.
    big = "\n".join(f"alias{n}: __schema {{ types {{ name description }} }}" for n in range(25))
    async with RunningService(database, max_aliases=100) as http:
        plain = await request(http, None, json={"query": f"{{ {big} }}"})
        assert plain.status == 200 and len(plain.raw) > 64 * 1024
        packed = await request(http, "gzip", json={"query": f"{{ {big} }}"})
        assert packed.headers["content-encoding"] == "gzip"
        assert gzip.decompress(packed.raw) == plain.raw


async def test_level_0_turns_compression_off(database: DatabaseURL):
    async with RunningService(database, gzip_level=0) as http:
        sent = await request(http, "gzip", json={"query": INTROSPECTION})
        assert sent.status == 200
        assert "content-encoding" not in sent.headers
        assert "vary" not in sent.headers


async def test_metrics_are_gzipped_for_prometheus(database: DatabaseURL):
    async with RunningService(database) as http:
        await http.post("/graphql", json={"query": SMALL})
        scrape = await http.get("/metrics", headers={"accept-encoding": "gzip"})
        assert scrape.status_code == 200
        assert scrape.headers["content-encoding"] == "gzip"
        assert "service_graphql_requests_total{" in scrape.text  # httpx unpacked it

        plain = await http.get("/metrics", headers={"accept-encoding": "identity"})
        assert "content-encoding" not in plain.headers
        assert "service_graphql_requests_total{" in plain.text
