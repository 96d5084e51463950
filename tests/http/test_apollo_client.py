"""Apollo Client itself (the npm package) against `service serve`: its persisted-query link, its
BatchHttpLink and its GraphQLWsLink speak to the service as they would from a frontend; so
does graphql-sse's client over Server-Sent Events.
tests/e2e/apollo.spec.mjs drives the client and records every HTTP exchange; the assertions are
here.

Without node the test is skipped on a developer's machine and fails in CI (CI=true).
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.http.test_graphiql_browser import sign_token
from tests.served import served
from tests.support import ROOT, Server, node_for_e2e, run_e2e_spec, service_env

SPEC = ROOT / "tests" / "e2e" / "apollo.spec.mjs"
APOLLO = ROOT / "graphiql" / "node_modules" / "@apollo" / "client"
JWT_SECRET = "apollo-e2e-secret-apollo-e2e-secret-0123"


@pytest.fixture(scope="module")
def observed(postgres: Server, template: str) -> dict[str, Any]:
    node = node_for_e2e("Apollo Client", APOLLO)
    name = f"apollo_e2e_{os.getpid()}"
    postgres.run(f"CREATE DATABASE {name} TEMPLATE {template}")
    url = postgres.url(name)
    try:
        with served(url, JWT_SECRET=JWT_SECRET) as base:
            token = sign_token(service_env(DATABASE_URL=url.sqlalchemy, JWT_SECRET=JWT_SECRET))
            summary: dict[str, Any] = run_e2e_spec(
                node, SPEC, APOLLO_E2E_BASE_URL=base, APOLLO_E2E_TOKEN=token
            )
    finally:
        postgres.run(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    return summary


def test_apollos_persisted_query_link_sends_the_query_once_then_the_hash_over_get(observed):
    run = observed["persisted"]
    # (Apollo adds __typename to every selection)
    assert run["results"] == [{"posts": {"__typename": "PostConnection", "totalCount": 0}}] * 2
    steps = [(e["method"], e["hashed"], e["sentQuery"], e["status"]) for e in run["exchanges"]]
    assert steps == [
        ("GET", True, False, 400),  # the hash alone: the service does not know it yet
        ("POST", True, True, 200),  # the link sends the query with its hash: registered
        ("GET", True, False, 200),  # from then on the hash alone, over GET
    ]
    [not_found] = run["exchanges"][0]["body"]["errors"]
    assert not_found["message"] == "PersistedQueryNotFound"


def test_apollos_batch_link_gets_each_answer_in_its_place(observed):
    run = observed["batches"]
    [exchange] = run["exchanges"]
    assert (exchange["method"], exchange["batchSize"], exchange["status"]) == ("POST", 3, 200)
    made, count, listed = run["results"]
    assert made == {"createPost": {"__typename": "Post", "title": "Batched"}}
    # the mutation before it in the batch ran first
    assert count == {"posts": {"__typename": "PostConnection", "totalCount": 1}}
    assert listed == {
        "posts": {
            "__typename": "PostConnection",
            "nodes": [{"__typename": "Post", "title": "Batched"}],
        }
    }


def test_apollos_websocket_link_gets_a_live_answer_again_when_it_changes(observed):
    # GraphQLWsLink over graphql-ws, the token in connection_init: the subscriber's own draft
    # appears in its live answer (anonymous subscribers could not see it)
    assert observed["subscriptions"]["values"] == [
        {"posts": {"__typename": "PostConnection", "totalCount": 0}},
        {"posts": {"__typename": "PostConnection", "totalCount": 1}},
    ]


def test_graphql_sses_client_streams_a_live_answer_and_runs_a_query(observed):
    # after the WebSocket test's draft ("Live draft"), the stream's own ("Live stream")
    run = observed["eventStreams"]
    assert run["once"] == {"data": {"posts": {"totalCount": 1}}}
    assert run["values"] == [
        {"data": {"posts": {"totalCount": 1}}},
        {"data": {"posts": {"totalCount": 2}}},
    ]
