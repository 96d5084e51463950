"""Any operation the schema admits gets an answer or a client error, never an internal one.

hypothesis-graphql writes queries and mutations from the served schema (any field, argument
and input shape, strings with NULs and odd code points, ids that exist and ids that do not).
Each is sent over HTTP as Alice, who may write. Whatever the operation, the service must answer
with data, or with errors whose `extensions.code` is a client error of API.md, and with no SQL
or Python detail in them. Which data is right is the differential test's subject, not this one's.
"""

from __future__ import annotations

from typing import Any

import httpx
from graphql import GraphQLSchema, build_client_schema, build_schema, get_introspection_query
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, from_schema, nodes

from service.graphql.catalog import Catalog
from service.graphql.schema import build_schema as build_service_schema
from tests.graphql.conftest import ALICE, BOB, post_id
from tests.graphql.reference import comment_id
from tests.support import CLIENT_CODES, LEAKS, token_for

SDL = str(build_service_schema(Catalog.from_registry()).schema)

UUIDS = st.one_of(
    st.sampled_from([ALICE, BOB, post_id(1), post_id(2), post_id(25), comment_id(3, 1)]),
    st.uuids().map(str),
    st.text(max_size=40),  # not a UUID at all
)
DATETIMES = st.one_of(
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
    st.sampled_from(["2026-02-01T00:00:00Z", "2026-02-31T00:00:00Z", "yesterday", ""]),
)
SCALARS = {
    "UUID": UUIDS.map(nodes.String),
    "DateTime": DATETIMES.map(nodes.String),
    "Date": st.dates().map(lambda d: nodes.String(d.isoformat())),
}


def operations(mode: Mode = Mode.POSITIVE) -> st.SearchStrategy[str]:
    return from_schema(build_schema(SDL), custom_scalars=SCALARS, mode=mode)


_SERVED_SCHEMAS: dict[str, GraphQLSchema] = {}  # by the served process's URL


async def served_schema(http: httpx.AsyncClient) -> GraphQLSchema:
    """The schema a service started with more models answers introspection with (for this
    property on it), asked once per process."""
    key = str(http.base_url)
    if key not in _SERVED_SCHEMAS:
        response = await http.post("/graphql", json={"query": get_introspection_query()})
        _SERVED_SCHEMAS[key] = build_client_schema(response.json()["data"])
    return _SERVED_SCHEMAS[key]


async def send_as_alice(
    api: httpx.AsyncClient, operation: str, *, explain: str | None = None
) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {token_for(ALICE)}"}
    if explain is not None:
        headers["x-explain"] = explain
    response = await api.post("/graphql", json={"query": operation}, headers=headers)
    assert response.status_code in (200, 400), (operation, response.text)
    body: dict[str, Any] = response.json()
    for error in body.get("errors", []):
        code = error.get("extensions", {}).get("code")
        assert code in CLIENT_CODES, (operation, body)
        # (a message may quote the client's own value back: `"SELECT " is not a UUID`)
        leaked = [m for m in LEAKS if m in error["message"] and m not in operation]
        assert not leaked, (operation, body)
    return body


FUZZ = settings(
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


@settings(FUZZ, max_examples=150)
@given(operation=operations())
async def test_every_valid_operation_gets_data_or_client_errors(
    api: httpx.AsyncClient, operation: str
) -> None:
    body = await send_as_alice(api, operation)
    if "errors" not in body:
        assert isinstance(body["data"], dict), (operation, body)


@settings(FUZZ, max_examples=60)
@given(operation=operations(), explain=st.sampled_from(["on", "analyze"]))
async def test_every_valid_operation_explained_gets_its_plans_or_client_errors(
    api: httpx.AsyncClient, operation: str, explain: str
) -> None:
    # EXPLAIN runs after each statement, in its transaction: it must neither fail an operation
    # nor change what it answers.
    body = await send_as_alice(api, operation, explain=explain)
    if "errors" not in body:
        assert isinstance(body["data"], dict), (operation, body)
    if "data" in body:  # it ran (a request refused before running has no plans to show)
        for statement in body["extensions"]["explain"]:
            assert statement["sql"] and statement["plan"], (operation, body)


@settings(FUZZ, max_examples=60)
@given(operation=operations(Mode.NEGATIVE))
async def test_every_invalid_operation_is_bad_user_input(
    api: httpx.AsyncClient, operation: str
) -> None:
    # Wrong argument types, missing required arguments, unknown enum values: refused by
    # validation, before anything runs.
    body = await send_as_alice(api, operation)
    assert body.get("errors"), (operation, body)
    assert {e["extensions"]["code"] for e in body["errors"]} == {"BAD_USER_INPUT"}, body
