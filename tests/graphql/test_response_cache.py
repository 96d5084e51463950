"""`@cached(ttl:)`: a query's answer kept in memory, per caller, for at most `ttl` seconds.

Each test serves the app on a pool of one connection and logs what that connection sends, so
"answered from memory" means "no statement reached PostgreSQL".
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from service.db.url import DatabaseURL
from tests.graphql.conftest import ALICE, BOB, add_drafts, gql
from tests.support import RunningService, execute_sql, token_for

FEED = """query Feed @cached(ttl: 2) {
  posts(first: 2, orderBy: [{createdAt: DESC}]) { nodes { title } }
}"""


class Logged:
    """A running service, and the statements its one pooled connection has sent."""

    def __init__(self, service: RunningService, http: httpx.AsyncClient) -> None:
        self.service = service
        self.http = http
        self.statements: list[str] = []

    def reads(self) -> int:
        return sum(1 for s in self.statements if "posts" in s)


@asynccontextmanager
async def serving(url: DatabaseURL, **settings: Any) -> AsyncIterator[Logged]:
    service = RunningService(url, db_pool_size=1, **settings)
    async with service as http:
        logged = Logged(service, http)
        async with service.app.state.pools.primary.acquire() as connection:
            connection.add_query_logger(lambda record: logged.statements.append(record.query))
        yield logged


async def _add_newest_post(url: DatabaseURL) -> None:
    await execute_sql(
        url,
        "INSERT INTO posts (title, content, published, author_id, created_at) "
        f"VALUES ('Newest', '', true, '{ALICE}', '2027-01-01T00:00:00Z')",
    )


def _titles(body: dict[str, Any]) -> list[str]:
    assert "errors" not in body, body
    return [n["title"] for n in body["data"]["posts"]["nodes"]]


async def test_a_cached_query_is_answered_from_memory_until_its_ttl_ends(seeded) -> None:
    async with serving(seeded) as served:
        first = await served.http.post("/graphql", json={"query": FEED})
        assert first.status_code == 200
        assert first.headers["cache-control"] == "public, max-age=2"
        assert first.headers["age"] == "0"
        assert "Authorization" in first.headers["vary"]
        assert served.reads() == 1
        before = _titles(first.json())

        await _add_newest_post(seeded)
        again = await served.http.post("/graphql", json={"query": FEED})
        assert _titles(again.json()) == before  # the kept answer, not the new row
        assert again.content == first.content
        assert served.reads() == 1
        age, max_age = int(again.headers["age"]), again.headers["cache-control"]
        assert age in (0, 1) and max_age == f"public, max-age={2 - age}"

        # a query without the directive is not answered from the cache
        plain = await gql(served.http, FEED.replace("@cached(ttl: 2)", ""))
        assert _titles(plain)[0] == "Newest"
        assert served.reads() == 2

        await asyncio.sleep(2.1)
        later = await served.http.post("/graphql", json={"query": FEED})
        assert _titles(later.json())[0] == "Newest"  # expired: run again
        assert later.headers["age"] == "0"
        assert served.reads() == 3


async def test_each_caller_has_their_own_answers(seeded) -> None:
    await add_drafts(seeded, ALICE, "Alice's draft")
    query = """query Mine @cached(ttl: 60) {
      posts(filter: {published: {eq: false}}) { nodes { title } } }"""
    async with serving(seeded) as served:
        # one token each, sent again: a new token (another `iat` and `exp`) is other claims,
        # answered afresh
        as_alice = {"authorization": f"Bearer {token_for(ALICE)}"}
        as_bob = {"authorization": f"Bearer {token_for(BOB)}"}

        async def titles_for(headers: dict[str, str]) -> list[str]:
            answer = await served.http.post("/graphql", json={"query": query}, headers=headers)
            return _titles(answer.json())

        alice = await served.http.post("/graphql", json={"query": query}, headers=as_alice)
        assert _titles(alice.json()) == ["Alice's draft"]
        # a signed-in caller's answer is theirs: no shared cache may keep it
        assert alice.headers["cache-control"] == "private, max-age=60"
        # the same query from others: run for them, under their own policies
        assert await titles_for(as_bob) == []
        assert await titles_for({}) == []
        assert served.reads() == 3
        # and each answer is kept for its own caller
        assert await titles_for(as_alice) == ["Alice's draft"]
        assert await titles_for(as_bob) == []
        assert await titles_for({}) == []
        assert served.reads() == 3


async def test_variables_are_part_of_the_question(seeded) -> None:
    query = """query Page($n: Int!, $ttl: Int!) @cached(ttl: $ttl) {
      posts(first: $n, orderBy: [{title: ASC}]) { nodes { title } } }"""
    async with serving(seeded) as served:
        one = await gql(served.http, query, {"n": 1, "ttl": 30})
        two = await gql(served.http, query, {"ttl": 30, "n": 2})
        assert _titles(one) == ["Post 01"]
        assert _titles(two) == ["Post 01", "Post 02"]
        assert _titles(await gql(served.http, query, {"ttl": 30, "n": 1})) == ["Post 01"]
        assert served.reads() == 2
        # a variable the directive needs that is missing or wrong: the usual error
        for variables in ({"n": 1}, {"n": 1, "ttl": "soon"}):
            body = await gql(served.http, query, variables)
            assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", body


async def _cache_counts(http: httpx.AsyncClient) -> dict[str, float]:
    """/metrics' count of @cached queries by how they were answered (this process's, so far)."""
    metrics = (await http.get("/metrics")).text
    prefix = 'service_graphql_response_cache_total{result="'
    return {
        line[len(prefix) :].split('"')[0]: float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith(prefix)
    }


async def test_requests_asking_at_once_share_one_run(seeded) -> None:
    async with serving(seeded) as served:
        before = await _cache_counts(served.http)
        answers = await asyncio.gather(
            *(served.http.post("/graphql", json={"query": FEED}) for _ in range(20))
        )
        assert {a.status_code for a in answers} == {200}
        assert len({a.content for a in answers}) == 1
        assert served.reads() == 1
        after = await _cache_counts(served.http)
        added = {k: after[k] - before.get(k, 0) for k in after}
        assert added["miss"] == 1
        assert added["miss"] + added.get("shared", 0) + added.get("hit", 0) == 20


async def test_errors_are_not_kept_and_a_bad_ttl_is_refused(seeded) -> None:
    async with serving(seeded, response_cache_max_ttl=120) as served:
        for ttl in (0, -1, 121):
            body = await gql(served.http, FEED.replace("ttl: 2", f"ttl: {ttl}"))
            assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", body
            assert "120" in body["errors"][0]["message"]
        bad_cursor = """query @cached(ttl: 60) { posts(after: "nonsense") { nodes { title } } }"""
        for _ in range(2):
            response = await served.http.post("/graphql", json={"query": bad_cursor})
            assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
            assert "cache-control" not in response.headers
        # a mutation cannot ask (the directive is for queries), and X-Explain shows a fresh run
        body = await gql(
            served.http,
            'mutation @cached { deletePost(id: "10000000-0000-0000-0000-000000000001") { id } }',
        )
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        await gql(served.http, FEED)
        explained = await served.http.post(
            "/graphql", json={"query": FEED}, headers={"x-explain": "on"}
        )
        assert explained.json()["extensions"]["explain"]
        assert "cache-control" not in explained.headers


async def test_the_least_recently_used_answers_go_first_when_the_cache_is_full(seeded) -> None:
    query = """query One($id: UUID!) @cached(ttl: 60) { post(id: $id) { title content } }"""

    def post(i: int) -> dict[str, str]:
        return {"id": f"10000000-0000-0000-0000-{i:012d}"}

    # each answer costs about 600 bytes kept: room for about eight of them
    async with serving(seeded, response_cache_max_bytes=5_000) as served:
        for i in range(1, 9):
            await gql(served.http, query, post(i))
        assert served.reads() == 8
        await gql(served.http, query, post(1))  # kept, and now the most recently used
        assert served.reads() == 8
        for i in range(9, 13):  # four more push out the least recently used (2, 3, ...)
            await gql(served.http, query, post(i))
        await gql(served.http, query, post(1))
        assert served.reads() == 12
        await gql(served.http, query, post(2))
        assert served.reads() == 13


async def test_with_no_room_the_directive_is_accepted_and_nothing_is_kept(seeded) -> None:
    async with serving(seeded, response_cache_max_bytes=0) as served:
        for _ in range(2):
            response = await served.http.post("/graphql", json={"query": FEED})
            assert _titles(response.json())
            assert "cache-control" not in response.headers
        assert served.reads() == 2


async def test_an_anonymous_get_may_be_kept_by_a_shared_cache(seeded) -> None:
    async with serving(seeded) as served:
        response = await served.http.get(
            "/graphql", params={"query": FEED}, headers={"accept": "application/json"}
        )
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "public, max-age=2"
        vary = {v.strip().lower() for v in response.headers["vary"].split(",")}
        assert {"authorization", "accept"} <= vary


async def test_the_schema_declares_the_directive_for_queries(api: httpx.AsyncClient) -> None:
    body = await gql(
        api, "{ __schema { directives { name locations args { name defaultValue } } } }"
    )
    cached = next(d for d in body["data"]["__schema"]["directives"] if d["name"] == "cached")
    assert cached["locations"] == ["QUERY"]
    assert [(a["name"], a["defaultValue"]) for a in cached["args"]] == [("ttl", "60")]
