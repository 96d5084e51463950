"""A model with enum, JSON and array columns gets them typed through the whole API.

`Ticket` (in a module written for the test, served by another process as in
test_new_model.py): `status` is a Python enum, which SQLModel stores as a PostgreSQL enum of
the members' names; `details` is JSONB. The API shows `status` as a GraphQL enum of those
names, filters it (eq, neq, in, nin, isNull) and orders by it in the enum's order, with
cursors; `details` is the JSON scalar, filtered by containment either way, its top-level keys and
isNull, not orderable;
`labels` (text[]) is a list, filtered by contains, containedBy, overlaps and isNull;
`estimate` is numeric (its cursors keep every digit); `code` is unique, so it gets a root
lookup, `ticketByCode`.
Writes are validated by TicketCreate / TicketUpdate, which take the enum's members.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis_graphql import from_schema

from service.db.url import DatabaseURL
from tests.graphql.conftest import gql
from tests.graphql.test_fuzz import FUZZ, SCALARS, send_as_alice, served_schema
from tests.graphql.test_new_model import serving_model
from tests.graphql.test_subscriptions import socket_to
from tests.support import fetch_sql

TICKET_MODULE = '''
"""Ticket: `public.tickets`, a support request."""

import enum
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ARRAY, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from service.models.columns import created_at, uuid_primary_key


class Status(str, enum.Enum):
    OPEN = "open"
    IN_PROGRESS = "in progress"
    CLOSED = "closed"


class TicketBase(SQLModel):
    title: str = Field(max_length=100)
    status: Status = Status.OPEN
    details: dict[str, Any] | None = Field(default=None, sa_type=JSONB)
    labels: list[str] = Field(default_factory=list, sa_type=ARRAY(String))
    estimate: Decimal | None = Field(default=None, max_digits=30, decimal_places=10)
    code: str | None = Field(default=None, max_length=20, unique=True)


class Ticket(TicketBase, table=True):
    __tablename__ = "tickets"

    id: uuid.UUID = uuid_primary_key()
    created_at: datetime = created_at()
    # the support team's, never the API's
    triage_note: str = Field(
        default="untriaged", exclude=True, sa_column_kwargs={"server_default": "untriaged"}
    )


class TicketCreate(TicketBase):
    pass


class TicketUpdate(SQLModel):
    status: Status | None = None
    details: dict[str, Any] | None = None
    labels: list[str] | None = None
    triage_note: str | None = Field(default=None, exclude=True)
'''


@pytest.fixture
async def tickets(seeded: DatabaseURL, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with serving_model(seeded, tmp_path, "ticket_model", TICKET_MODULE, "tickets") as (
        http,
        revision,
    ):
        assert "postgresql.ENUM" in revision or "sa.Enum(" in revision, revision
        yield http


async def _create(http: httpx.AsyncClient, query: str, variables: dict | None = None) -> dict:
    body = await gql(http, query, variables)
    assert "errors" not in body, body
    return body["data"]


async def test_enum_and_json_columns_through_the_whole_api(tickets: httpx.AsyncClient) -> None:
    http = tickets
    sdl = (await http.get("/graphql", params={"query": "{ __schema { types { name } } }"})).json()
    assert "Status" in {t["name"] for t in sdl["data"]["__schema"]["types"]}
    status_type = await gql(http, '{ __type(name: "Status") { enumValues { name } } }')
    assert [v["name"] for v in status_type["data"]["__type"]["enumValues"]] == [
        "OPEN",
        "IN_PROGRESS",
        "CLOSED",
    ]

    # writes: the model's default, a literal, a variable; JSON as a literal and as a variable
    made = await _create(
        http,
        """mutation($s: Status!, $d: JSON) {
          a: createTicket(input: {title: "Printer", details: {floor: 3, tags: ["hw", "urgent"]}})
            { title status details }
          b: createTicket(input: {title: "Login", status: IN_PROGRESS}) { title status details }
          c: createTicket(input: {title: "Coffee", status: $s, details: $d}) { id status details }
        }""",
        {"s": "CLOSED", "d": {"floor": 1, "tags": ["kitchen"]}},
    )
    assert made["a"] == {
        "title": "Printer",
        "status": "OPEN",
        "details": {"floor": 3, "tags": ["hw", "urgent"]},
    }
    assert made["b"] == {"title": "Login", "status": "IN_PROGRESS", "details": None}
    assert made["c"]["status"] == "CLOSED"
    assert made["c"]["details"] == {"floor": 1, "tags": ["kitchen"]}

    bad = await gql(http, 'mutation { createTicket(input: {title: "x", status: DONE}) { id } }')
    assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"

    # filters on the enum: literal, list, variable (a whole filter, or one value)
    found = await _create(
        http,
        """query($f: TicketFilter, $s: Status) {
          open: tickets(filter: {status: {eq: OPEN}}) { nodes { title } }
          some: tickets(filter: {status: {in: [OPEN, CLOSED]}}, orderBy: {title: ASC})
            { nodes { title } }
          whole: tickets(filter: $f, orderBy: {title: ASC}) { nodes { title } }
          one: tickets(filter: {status: {neq: $s}}, orderBy: {title: ASC}) { nodes { title } }
        }""",
        {"f": {"status": {"nin": ["OPEN"]}}, "s": "IN_PROGRESS"},
    )
    assert found["open"]["nodes"] == [{"title": "Printer"}]
    assert found["some"]["nodes"] == [{"title": "Coffee"}, {"title": "Printer"}]
    assert found["whole"]["nodes"] == [{"title": "Coffee"}, {"title": "Login"}]
    assert found["one"]["nodes"] == [{"title": "Coffee"}, {"title": "Printer"}]

    # grouped by the enum: keys as the enum's values, groups in the enum's order
    groups = await _create(
        http,
        """{ tickets { groupedAggregates(groupBy: STATUS) { keys { status } count }
                       aggregates { distinctCount { status } } } }""",
    )
    assert groups["tickets"]["aggregates"] == {"distinctCount": {"status": 3}}
    assert groups["tickets"]["groupedAggregates"] == [
        {"keys": {"status": status}, "count": 1} for status in ("OPEN", "IN_PROGRESS", "CLOSED")
    ]

    # filters on the JSON: containment (literal with a variable inside, or a variable), null
    found = await _create(
        http,
        """query($tag: String!, $j: JSON!) {
          urgent: tickets(filter: {details: {contains: {tags: [$tag]}}}) { nodes { title } }
          floor: tickets(filter: {details: {contains: $j}}) { nodes { title } }
          none: tickets(filter: {details: {isNull: true}}) { nodes { title } }
          text: tickets(filter: {details: {contains: "urgent"}}) { nodes { title } }
        }""",
        {"tag": "urgent", "j": {"floor": 1}},
    )
    assert found["urgent"]["nodes"] == [{"title": "Printer"}]
    assert found["floor"]["nodes"] == [{"title": "Coffee"}]
    assert found["none"]["nodes"] == [{"title": "Login"}]
    assert found["text"]["nodes"] == []  # a JSON string, which no object contains

    # ordered by the enum in its declared order, a page at a time by cursor
    query = """query($after: String) {
      tickets(first: 1, after: $after, orderBy: {status: DESC}) {
        nodes { title } pageInfo { endCursor hasNextPage } } }"""
    titles, after = [], None
    while True:
        page = (await gql(http, query, {"after": after}))["data"]["tickets"]
        titles += [n["title"] for n in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert titles == ["Coffee", "Login", "Printer"]
    # a cursor whose enum value is not one of the enum's: refused, like any forged cursor
    signature, _, key = orjson.loads(base64.b64decode(after))
    forged = base64.b64encode(orjson.dumps([signature, "REOPENED", key])).decode()
    body = await gql(http, query, {"after": forged})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    # JSON has no order
    body = await gql(http, "{ tickets(orderBy: {details: ASC}) { totalCount } }")
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"

    # update: the enum by a literal, the JSON left as it was, the array replaced
    updated = await _create(
        http,
        """mutation($id: UUID!) { updateTicket(id: $id, input: {status: OPEN, labels: ["x"]})
          { status details labels } }""",
        {"id": made["c"]["id"]},
    )
    assert updated["updateTicket"] == {
        "status": "OPEN",
        "details": {"floor": 1, "tags": ["kitchen"]},
        "labels": ["x"],
    }

    # arrays: the model's default (empty), written one row or many, filtered
    odd = 'o\'clock \\ "quoted", {braced}'  # what PostgreSQL's array text would need to escape
    made = await _create(
        http,
        """mutation($rows: [TicketCreateInput!]!) {
          d: createTicket(input: {title: "Desk", labels: ["hw", "office"]}) { labels }
          many: createTickets(inputs: $rows) { title labels }
        }""",
        {"rows": [{"title": "Chair", "labels": ["office", "hw", odd]}, {"title": "Lamp"}]},
    )
    assert made["d"]["labels"] == ["hw", "office"]
    assert made["many"] == [
        {"title": "Chair", "labels": ["office", "hw", odd]},
        {"title": "Lamp", "labels": []},
    ]
    found = await _create(
        http,
        """query($l: [String]!) {
          both: tickets(filter: {labels: {contains: ["hw", "office"]}}, orderBy: {title: ASC})
            { nodes { title } }
          any: tickets(filter: {labels: {overlaps: $l}}, orderBy: {title: ASC}) { nodes { title } }
          within: tickets(filter: {labels: {containedBy: ["hw", "office"]}}, orderBy: {title: ASC})
            { nodes { title } }
        }""",
        {"l": ["office", "nothing"]},
    )
    assert found["both"]["nodes"] == [{"title": "Chair"}, {"title": "Desk"}]
    assert found["any"]["nodes"] == [{"title": "Chair"}, {"title": "Desk"}]
    # an empty array is contained by any (Coffee's is ["x"] since the update)
    assert [n["title"] for n in found["within"]["nodes"]] == [
        "Desk",
        "Lamp",
        "Login",
        "Printer",
    ]
    body = await gql(http, "{ tickets(orderBy: {labels: ASC}) { totalCount } }")
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_json_columns_are_filtered_by_their_keys_and_by_containment(
    tickets: httpx.AsyncClient,
) -> None:
    http = tickets
    await _create(
        http,
        """mutation { createTickets(inputs: [
          {title: "Printer", details: {floor: 3, tags: ["hw"], owner: null}},
          {title: "Login", details: {floor: 1}},
          {title: "Coffee", details: {kitchen: {floor: 2}}},
          {title: "Empty"}
        ]) { id } }""",
    )
    found = await _create(
        http,
        """query($keys: [String!], $none: [String!], $within: JSON!) {
          hasFloor: tickets(filter: {details: {hasKey: "floor"}}, orderBy: {title: ASC})
            { nodes { title } }
          nullKey: tickets(filter: {details: {hasKey: "owner"}}) { nodes { title } }
          anyOf: tickets(filter: {details: {hasKeysAny: $keys}}, orderBy: {title: ASC})
            { nodes { title } }
          allOf: tickets(filter: {details: {hasKeysAll: ["floor", "tags"]}}) { nodes { title } }
          noKeys: tickets(filter: {details: {hasKeysAny: $none}}) { nodes { title } }
          within: tickets(filter: {details: {containedBy: $within}}, orderBy: {title: ASC})
            { nodes { title } }
          combined: tickets(filter: {details: {hasKey: "floor", containedBy: {floor: 1, x: 2}}})
            { nodes { title } }
          notFloor: tickets(filter: {not: {details: {hasKey: "floor"}}}, orderBy: {title: ASC})
            { nodes { title } }
          unset: tickets(filter: {details: {hasKey: null}}) { totalCount }
        }""",
        {"keys": ["tags", "kitchen"], "none": [], "within": {"floor": 1, "tags": ["hw"]}},
    )
    titles = {
        name: [n["title"] for n in page["nodes"]] for name, page in found.items() if "nodes" in page
    }
    # top-level keys only (Coffee's floor is one level down); a key holding null is a key
    assert titles["hasFloor"] == ["Login", "Printer"]
    assert titles["nullKey"] == ["Printer"]
    assert titles["anyOf"] == ["Coffee", "Printer"]
    assert titles["allOf"] == ["Printer"]
    assert titles["noKeys"] == []
    # containedBy: every key and value of the row's object is in the one given
    assert titles["within"] == ["Login"]
    assert titles["combined"] == ["Login"]
    # a null column has no key, and `not` of unknown is still not true: only non-null rows
    assert titles["notFloor"] == ["Coffee"]
    assert found["unset"]["totalCount"] == 4  # an operator given as null places no condition

    body = await gql(http, "{ tickets(filter: {details: {hasKeysAll: [1, 2]}}) { totalCount } }")
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    described = await gql(
        http, '{ __type(name: "JSONFilter") { inputFields { name type { name kind } } } }'
    )
    fields = {f["name"] for f in described["data"]["__type"]["inputFields"]}
    assert fields == {"contains", "containedBy", "hasKey", "hasKeysAny", "hasKeysAll", "isNull"}


async def test_cursors_keep_every_digit_of_a_numeric_key(
    tickets: httpx.AsyncClient, seeded: DatabaseURL
) -> None:
    # Estimates written by another client with more digits than a float holds: paging one
    # row at a time must still see each exactly once (a cursor holding 1.2345678901234568e18
    # would start the next page before all three).
    values = [f"1234567890123456789.00000000{i}" for i in (1, 2, 3)]
    connection = await asyncpg.connect(**seeded.asyncpg_kwargs())
    try:
        await connection.executemany(
            "INSERT INTO tickets (id, title, status, labels, estimate, created_at) "
            "VALUES (gen_random_uuid(), $1, 'OPEN', '{}', $2::numeric, now())",
            [(f"Big {i}", v) for i, v in enumerate(values)],
        )
    finally:
        await connection.close()
    query = """query($after: String) {
      tickets(first: 1, after: $after, orderBy: [{estimate: DESC}],
              filter: {estimate: {isNull: false}}) {
        nodes { title } pageInfo { endCursor hasNextPage } } }"""
    titles, after = [], None
    for _ in range(len(values)):
        page = (await gql(tickets, query, {"after": after}))["data"]["tickets"]
        titles += [n["title"] for n in page["nodes"]]
        after = page["pageInfo"]["endCursor"]
    assert titles == ["Big 2", "Big 1", "Big 0"]
    assert page["pageInfo"]["hasNextPage"] is False
    forged = base64.b64encode(orjson.dumps([orjson.loads(base64.b64decode(after))[0], "x", 1]))
    body = await gql(tickets, query, {"after": forged.decode()})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_a_column_the_model_excludes_is_not_in_the_api(tickets, seeded) -> None:
    # `Field(exclude=True)`: left out of the model's serialization, and of the API
    types = await _create(
        tickets,
        """{ ticket: __type(name: "Ticket") { fields { name } }
             filter: __type(name: "TicketFilter") { inputFields { name } }
             order: __type(name: "TicketOrderBy") { inputFields { name } }
             update: __type(name: "TicketUpdateInput") { inputFields { name } }
             keys: __type(name: "TicketGroupKeys") { fields { name } } }""",
    )
    named = {
        f["name"] for t in types.values() for f in t.get("fields") or t.get("inputFields") or ()
    }
    assert "status" in named and "triageNote" not in named
    asked = await gql(tickets, "{ tickets { nodes { triageNote } } }")
    assert asked["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"

    made = await _create(tickets, 'mutation { createTicket(input: {title: "Hidden"}) { id } }')
    ticket = made["createTicket"]["id"]
    await _create(
        tickets,
        "mutation($id: UUID!) { updateTicket(id: $id, input: {status: CLOSED}) { id } }",
        {"id": ticket},
    )
    rows = await fetch_sql(seeded, f"SELECT triage_note FROM tickets WHERE id = '{ticket}'")
    assert [r["triage_note"] for r in rows] == ["untriaged"]  # the database's, untouched


async def test_a_unique_column_gets_a_root_lookup(tickets: httpx.AsyncClient) -> None:
    made = await _create(
        tickets,
        """mutation { a: createTicket(input: {title: "Fax", code: "T-1"}) { id }
                      b: createTicket(input: {title: "Scanner", code: "T-2"}) { id } }""",
    )
    query = """query($c: String!) { ticketByCode(code: $c) { id title code } }"""
    found = await gql(tickets, query, {"c": "T-2"})
    assert found["data"]["ticketByCode"] == {
        "id": made["b"]["id"],
        "title": "Scanner",
        "code": "T-2",
    }
    assert (await gql(tickets, query, {"c": "T-9"}))["data"] == {"ticketByCode": None}
    # like every read, also a live subscription: sent again when the row changes
    async with socket_to(tickets) as socket:
        await socket.init()
        await socket.subscribe("1", 'subscription { ticketByCode(code: "T-1") { title status } }')
        first = await socket.receive()
        assert first["payload"]["data"]["ticketByCode"] == {"title": "Fax", "status": "OPEN"}
        await _create(
            tickets,
            "mutation($id: UUID!) { updateTicket(id: $id, input: {status: CLOSED}) { id } }",
            {"id": made["a"]["id"]},
        )
        then = await socket.receive()
        assert then["payload"]["data"]["ticketByCode"] == {"title": "Fax", "status": "CLOSED"}
    # the constraint behind the lookup: a second T-1 is a conflict, and nothing is written
    again = await gql(
        tickets, 'mutation { createTicket(input: {title: "Fax 2", code: "T-1"}) { id } }'
    )
    assert again["errors"][0]["extensions"]["code"] == "CONFLICT"
    count = await gql(tickets, '{ tickets(filter: {title: {startsWith: "Fax"}}) { totalCount } }')
    assert count["data"]["tickets"]["totalCount"] == 1


@settings(FUZZ, max_examples=100)
@given(data=st.data())
async def test_any_operation_on_enum_and_json_columns_gets_data_or_client_errors(
    tickets: httpx.AsyncClient, data: st.DataObject
) -> None:
    # test_fuzz.py's property, on the schema this model adds to (JSON values of any shape,
    # enum values in lists and variables, filters and orders on both)
    schema = await served_schema(tickets)
    operation = data.draw(from_schema(schema, custom_scalars=SCALARS))
    body = await send_as_alice(tickets, operation)
    if "errors" not in body:
        assert isinstance(body["data"], dict), (operation, body)
