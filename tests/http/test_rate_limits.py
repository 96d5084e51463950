"""RATE_LIMITS: operations a minute per caller, by role. Each signed-in user and each
anonymous address has its own allowance; past it an operation is a 429 LIMIT_EXCEEDED with
Retry-After, however it is sent (HTTP, a batch, REST, an event stream, a WebSocket)."""

from __future__ import annotations

import orjson
import pytest

from service.auth import ANONYMOUS, Principal
from service.db.url import DatabaseURL
from service.http.rate_limit import RateLimited, RateLimiter
from tests.graphql.test_subscriptions import socket_to
from tests.support import RunningService, token_for

ALICE = "00000000-0000-0000-0000-000000000001"
BOB = "00000000-0000-0000-0000-000000000002"
COUNT = {"query": "{ posts { totalCount } }"}


async def anonymous_refusals(http) -> float:
    series = 'service_rate_limited_total{role="anon"} '
    for line in (await http.get("/metrics")).text.splitlines():
        if line.startswith(series):
            return float(line.removeprefix(series))
    return 0.0


def signed_in(user: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token_for(user)}"}


async def test_each_caller_has_a_minute_of_operations_then_waits(
    database: DatabaseURL, tmp_path
) -> None:
    rest = tmp_path / "rest.json"
    rest.write_bytes(orjson.dumps({"GET /count": COUNT["query"]}))
    service = RunningService(
        database, rate_limits={"anon": 3, "authenticated": 4}, rest_endpoints_file=rest
    )
    async with service as http:
        refusals_before = await anonymous_refusals(http)
        # anonymous: three, however sent (POST, GET, REST), then refused
        assert (await http.post("/graphql", json=COUNT)).status_code == 200
        assert (await http.get("/graphql", params=COUNT)).status_code == 200
        assert (await http.get("/rest/count")).status_code == 200
        refused = await http.post("/graphql", json=COUNT)
        assert refused.status_code == 429
        [error] = refused.json()["errors"]
        assert error["extensions"]["code"] == "LIMIT_EXCEEDED"
        assert "3 operations a minute for role anon" in error["message"]
        # a minute's allowance refills one operation every 20 s
        assert 15 <= int(refused.headers["retry-after"]) <= 20
        assert (await http.get("/rest/count")).status_code == 429
        stream = await http.post("/graphql", json=COUNT, headers={"accept": "text/event-stream"})
        assert stream.status_code == 429
        # another address, as a trusted proxy (FORWARDED_ALLOW_IPS: 127.0.0.1) says: its own
        forwarded = {"x-forwarded-for": "203.0.113.7"}
        assert (await http.post("/graphql", json=COUNT, headers=forwarded)).status_code == 200

        # each signed-in user has their own four; a batch counts each of its operations
        alice, bob = signed_in(ALICE), signed_in(BOB)
        batch = await http.post("/graphql", json=[COUNT, COUNT, COUNT], headers=alice)
        assert batch.status_code == 200
        assert all("data" in answer for answer in batch.json())
        over = await http.post("/graphql", json=[COUNT, COUNT], headers=alice)
        assert over.status_code == 429  # none of the two ran: the batch is refused whole
        assert (await http.post("/graphql", json=COUNT, headers=alice)).status_code == 200
        assert (await http.post("/graphql", json=COUNT, headers=alice)).status_code == 429
        for _ in range(4):
            assert (await http.post("/graphql", json=COUNT, headers=bob)).status_code == 200

        # over a WebSocket each subscribe message counts, and a refused one leaves the
        # connection open
        async with socket_to(http) as ws:
            await ws.init(token_for(BOB))
            await ws.subscribe("1", COUNT["query"])
            message = await ws.receive()
            assert (message["id"], message["type"]) == ("1", "error")
            assert message["payload"][0]["extensions"]["code"] == "LIMIT_EXCEEDED"
            await ws.send({"type": "ping"})
            assert await ws.receive() == {"type": "pong"}
        # counted in /metrics: the three anonymous refusals above
        assert await anonymous_refusals(http) - refusals_before == 3


async def test_roles_not_named_are_not_limited(database: DatabaseURL) -> None:
    async with RunningService(database, rate_limits={"authenticated": 1}) as http:
        for _ in range(10):
            assert (await http.post("/graphql", json=COUNT)).status_code == 200


def test_the_allowance_refills_with_time() -> None:
    now = [0.0]
    limiter = RateLimiter({"anon": 60}, clock=lambda: now[0])
    for _ in range(60):  # a burst of a whole minute's worth
        limiter.take(ANONYMOUS, "10.0.0.1")
    with pytest.raises(RateLimited) as refused:
        limiter.take(ANONYMOUS, "10.0.0.1")
    assert refused.value.retry_after == 1
    limiter.take(ANONYMOUS, "10.0.0.2")  # another address: its own allowance
    now[0] = 2.5  # 2.5 s at one a second: two more, not three
    limiter.take(ANONYMOUS, "10.0.0.1")
    limiter.take(ANONYMOUS, "10.0.0.1")
    with pytest.raises(RateLimited):
        limiter.take(ANONYMOUS, "10.0.0.1")
    now[0] = 1000.0  # never more than a minute's worth saved up
    for _ in range(60):
        limiter.take(ANONYMOUS, "10.0.0.1")
    with pytest.raises(RateLimited):
        limiter.take(ANONYMOUS, "10.0.0.1")


def test_a_batch_larger_than_the_limit_never_fits_and_takes_nothing() -> None:
    limiter = RateLimiter({"authenticated": 5}, clock=lambda: 0.0)
    user = Principal(role="authenticated", claims={"sub": ALICE})
    with pytest.raises(RateLimited) as refused:
        limiter.take(user, None, cost=6)
    assert refused.value.retry_after == 60
    limiter.take(user, None, cost=5)  # nothing was taken by the refused batch


def test_the_most_recent_callers_are_kept() -> None:
    limiter = RateLimiter({"anon": 1}, max_callers=2, clock=lambda: 0.0)
    limiter.take(ANONYMOUS, "a")
    limiter.take(ANONYMOUS, "b")
    with pytest.raises(RateLimited):
        limiter.take(ANONYMOUS, "a")  # still known, and touched: now the most recent
    limiter.take(ANONYMOUS, "c")  # pushes out b, the least recent
    limiter.take(ANONYMOUS, "b")  # forgotten: a full allowance again
    with pytest.raises(RateLimited):
        limiter.take(ANONYMOUS, "c")
