"""Automatic persisted queries, as Apollo Client's persisted-query link speaks them: the hash
first, the query once when the service asks for it, then the hash alone, over POST or GET."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from service.db.users import ensure_user
from service.http.persisted import PersistedQueries
from tests.support import token_for

QUERY = "query Count { posts { totalCount } }"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def persisted(digest: str, version: int = 1) -> dict[str, Any]:
    return {"persistedQuery": {"version": version, "sha256Hash": digest}}


def codes(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors", [])]


async def test_the_hash_alone_once_the_query_was_sent_with_it(client):
    extensions = persisted(sha256(QUERY))
    unknown = await client.post("/graphql", json={"extensions": extensions})
    assert unknown.status_code == 400
    assert unknown.json() == {
        "errors": [
            {
                "message": "PersistedQueryNotFound",
                "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"},
            }
        ]
    }

    registered = await client.post("/graphql", json={"query": QUERY, "extensions": extensions})
    assert registered.json() == {"data": {"posts": {"totalCount": 0}}}

    by_hash = await client.post("/graphql", json={"extensions": extensions, "variables": {}})
    assert by_hash.json() == {"data": {"posts": {"totalCount": 0}}}
    # Apollo's useGETForHashedQueries: short URLs a CDN may cache
    params = {"extensions": orjson.dumps(extensions).decode(), "operationName": "Count"}
    over_get = await client.get("/graphql", params=params)
    assert over_get.status_code == 200
    assert over_get.json() == {"data": {"posts": {"totalCount": 0}}}
    upper = persisted(sha256(QUERY).upper())
    assert (await client.post("/graphql", json={"extensions": upper})).status_code == 200


async def test_a_hash_that_is_not_the_querys_registers_nothing(client):
    other = "{ posts { nodes { title } } }"
    wrong = persisted(sha256(other))
    response = await client.post("/graphql", json={"query": QUERY, "extensions": wrong})
    assert response.status_code == 400
    assert codes(response.json()) == ["BAD_USER_INPUT"]
    assert "is not the SHA-256 of `query`" in response.json()["errors"][0]["message"]
    # the hash still names nothing: it can never run another query than its own
    response = await client.post("/graphql", json={"extensions": wrong})
    assert codes(response.json()) == ["PERSISTED_QUERY_NOT_FOUND"]


async def test_malformed_persisted_query_extensions_are_bad_user_input(client):
    cases: list[Any] = [
        persisted(sha256(QUERY), version=2),
        persisted("not-a-hash"),
        {"persistedQuery": "yes"},
        {"persistedQuery": {"version": 1}},
    ]
    for extensions in cases:
        response = await client.post("/graphql", json={"extensions": extensions})
        assert response.status_code == 400, extensions
        assert codes(response.json()) == ["BAD_USER_INPUT"], extensions


async def test_mutations_by_hash_need_post_too(client, database):
    mutation = 'mutation { createPost(input: {title: "By hash", content: "-"}) { title } }'
    extensions = persisted(sha256(mutation))
    user = await ensure_user(database, "apq@example.com", timeout=10)  # the posts' author
    headers = {"authorization": f"Bearer {token_for(user)}"}
    first = await client.post(
        "/graphql", json={"query": mutation, "extensions": extensions}, headers=headers
    )
    assert first.json() == {"data": {"createPost": {"title": "By hash"}}}
    params = {"extensions": orjson.dumps(extensions).decode()}
    over_get = await client.get("/graphql", params=params, headers=headers)
    assert over_get.status_code == 405
    again = await client.post("/graphql", json={"extensions": extensions}, headers=headers)
    assert again.json() == {"data": {"createPost": {"title": "By hash"}}}


def test_the_store_keeps_the_recently_used_queries_within_its_bounds():
    store = PersistedQueries(max_entries=2, max_chars=100)
    a, b, c = "{ a }", "{ b }", "{ c }"
    for query in (a, b):
        store.query_for(query, persisted(sha256(query)))
    store.query_for(None, persisted(sha256(a)))  # a is used again: b is now the oldest
    store.query_for(c, persisted(sha256(c)))
    assert store.query_for(None, persisted(sha256(a))) == a
    assert store.query_for(None, persisted(sha256(c))) == c
    assert _not_found(store, b)
    big = "{ " + "x" * 97 + " }"  # over the characters allowed in all: not kept at all
    store.query_for(big, persisted(sha256(big)))
    assert _not_found(store, big)
    assert store.query_for(None, persisted(sha256(c))) == c


def _not_found(store: PersistedQueries, query: str) -> bool:
    try:
        store.query_for(None, persisted(sha256(query)))
    except Exception as error:
        return str(error) == "PersistedQueryNotFound"
    return False
