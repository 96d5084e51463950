"""Differential: generated operations answer as a naive reference evaluator says they must.

Hypothesis builds a selection tree over the schema (root connections, lookups by id and by
nodeId, scalars, `nodeId`, `__typename`, many-to-one relations, nested connections with
`first`, `orderBy` and `filter`), then renders it as GraphQL with random aliases, inline and
named fragments (also on the `Node` interface), repeated fields that merge, `@skip`/`@include`,
and arguments given as literals or as variables. The reference walks the same tree with one
plain SQLAlchemy query per object and per connection (N+1 on purpose: simple, obviously
right) and builds the expected response, keys in order.
"""

from __future__ import annotations

import base64
import itertools
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from service.db.url import DatabaseURL
from tests.graphql.conftest import gql, post_id
from tests.graphql.reference import (
    DIRECTIONS,
    KINDS,
    RELATED_ORDER,
    USER_IDS,
    Condition,
    Kind,
    OrderField,
    comment_id,
    filter_graphql,
    filter_sql,
    filters,
    order_input,
    order_sql,
    relation,
)
from tests.support import RunningService

MISSING = "30000000-0000-0000-0000-000000000000"

# --- the selection tree ---------------------------------------------------------------------


@dataclass
class Item:
    """One field of an object selection."""

    key: str  # response key
    name: str  # schema field: a column, __typename, nodeId, a relation
    kind: str  # "column" | "typename" | "nodeId" | "one" | "many"
    target: Obj | None = None  # for "one"
    connection: Conn | None = None  # for "many"
    directive: str = ""  # an @include/@skip that keeps the field


@dataclass
class Obj:
    kind: Kind
    items: list[Item]
    skipped: list[Item] = field(default_factory=list)  # rendered, but @skip'ped away


@dataclass
class Part:
    """One field of a connection: nodes, edges, pageInfo, totalCount, __typename."""

    key: str
    name: str
    node: Obj | None = None
    edge_typename: str | None = None  # key of an edge's __typename, if selected
    info: list[str] = field(default_factory=list)  # pageInfo fields


@dataclass
class Conn:
    kind: Kind
    first: int | None
    order: list[tuple[OrderField, str]]
    filter: Any
    parts: list[Part]
    style: dict[str, str]  # per argument: "literal" | "variable" | "inner" (filter operands)


@dataclass
class Root:
    key: str
    name: str  # posts | post | node | __typename ...
    kind: Kind | None = None
    connection: Conn | None = None
    id: str | None = None  # for lookups
    node_type: Kind | None = None  # what a nodeId names
    target: Obj | None = None  # lookup selection; for node: the fragment of each type
    node_fragments: dict[str, Obj] = field(default_factory=dict)
    node_common: list[Item] = field(default_factory=list)  # nodeId/__typename on Node


_keys = itertools.count()


def _key(name: str, alias: bool, taken: set[str]) -> str:
    key = name
    if alias or key in taken:
        key = f"{name.strip('_')}_{next(_keys)}"
    taken.add(key)
    return key


def objects(kind: Kind, depth: int) -> st.SearchStrategy[Obj]:
    @st.composite
    def build(draw: st.DrawFn) -> Obj:
        choices: list[tuple[str, str]] = [("column", c) for c in kind.columns]
        choices += [("typename", "__typename"), ("nodeId", "nodeId")]
        if depth > 0:
            choices += [("one", r) for r in kind.to_one] + [("many", r) for r in kind.to_many]
        picked = draw(st.lists(st.sampled_from(choices), min_size=1, max_size=5))
        taken: set[str] = set()
        items = []
        for item_kind, name in picked:
            alias = draw(st.integers(0, 3)) == 0
            item = Item(_key(name, alias, taken), name, item_kind)
            if item_kind == "one":
                item.target = draw(objects(KINDS[kind.to_one[name][0]], depth - 1))
            elif item_kind == "many":
                item.connection = draw(connections(KINDS[kind.to_many[name][0]], depth - 1))
            if draw(st.integers(0, 5)) == 0:
                item.directive = draw(st.sampled_from(["@include(if: $yes)", "@skip(if: $no)"]))
            items.append(item)
        skipped = []
        if draw(st.integers(0, 4)) == 0:
            name = draw(st.sampled_from(sorted(kind.columns)))
            directive = draw(st.sampled_from(["@skip(if: $yes)", "@include(if: $no)"]))
            skipped.append(Item(_key(name, True, taken), name, "column", directive=directive))
        return Obj(kind, items, skipped)

    return build()


def connections(kind: Kind, depth: int, root: bool = False) -> st.SearchStrategy[Conn]:
    @st.composite
    def build(draw: st.DrawFn) -> Conn:
        names = draw(
            st.lists(
                st.sampled_from(["nodes", "edges", "pageInfo", "totalCount", "__typename"]),
                min_size=1,
                max_size=3,
                unique=True,
            )
        )
        taken: set[str] = set()
        parts = []
        for name in names:
            part = Part(_key(name, draw(st.booleans()), taken), name)
            if name in ("nodes", "edges"):
                part.node = draw(objects(kind, depth))
            if name == "edges" and draw(st.booleans()):
                part.edge_typename = "__typename"
            if name == "pageInfo":
                part.info = draw(
                    st.lists(
                        st.sampled_from(["hasNextPage", "hasPreviousPage", "__typename"]),
                        min_size=1,
                        unique=True,
                    )
                )
            parts.append(part)
        choices: list[OrderField] = [*sorted(kind.columns), *RELATED_ORDER[kind.type_name]]
        fields = draw(st.lists(st.sampled_from(choices), max_size=2, unique=True))
        return Conn(
            kind=kind,
            first=draw(st.one_of(st.none(), st.integers(0, 5 if root else 3))),
            order=[(f, draw(st.sampled_from(DIRECTIONS))) for f in fields],
            filter=draw(filters(kind)),
            parts=parts,
            style={
                arg: draw(st.sampled_from(["literal", "variable", "inner"]))
                for arg in ("first", "orderBy", "filter")
            },
        )

    return build()


def _ids(kind: Kind) -> list[str]:
    if kind.type_name == "Post":
        return [post_id(i) for i in (1, 2, 7, 20, 25)]
    if kind.type_name == "Comment":
        return [comment_id(p, c) for p, c in ((1, 1), (4, 3), (25, 2))]
    return USER_IDS[:3] + USER_IDS[6:]


@st.composite
def roots(draw: st.DrawFn) -> list[Root]:
    taken: set[str] = set()
    out = []
    for what in draw(
        st.lists(
            st.sampled_from(["connection", "lookup", "node", "__typename"]), min_size=1, max_size=3
        )
    ):
        kind = draw(st.sampled_from(list(KINDS.values())))
        if what == "__typename":
            out.append(Root(_key("__typename", draw(st.booleans()), taken), "__typename"))
        elif what == "connection":
            root = Root(_key(kind.root, draw(st.booleans()), taken), kind.root, kind)
            root.connection = draw(connections(kind, 2, root=True))
            out.append(root)
        elif what == "lookup":
            root = Root(_key(kind.single, draw(st.booleans()), taken), kind.single, kind)
            root.id = draw(st.sampled_from([*_ids(kind), MISSING]))
            root.target = draw(objects(kind, 2))
            out.append(root)
        else:
            root = Root(_key("node", draw(st.booleans()), taken), "node", node_type=kind)
            root.id = draw(st.sampled_from(_ids(kind)))
            shown = draw(
                st.lists(
                    st.sampled_from(list(KINDS.values())),
                    min_size=1,
                    unique_by=lambda k: k.type_name,
                )
            )
            for k in shown:
                root.node_fragments[k.type_name] = draw(objects(k, 1))
            for name in draw(st.lists(st.sampled_from(["nodeId", "__typename"]), unique=True)):
                kind_name = "typename" if name == "__typename" else "nodeId"
                root.node_common.append(Item(_key(name, True, taken), name, kind_name))
            out.append(root)
    return out


# --- rendering ------------------------------------------------------------------------------


class _Enum(str):
    """A GraphQL enum value: written bare."""


def literal(value: Any) -> str:
    if isinstance(value, _Enum):
        return str(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    return "{" + ", ".join(f"{k}: {literal(v)}" for k, v in value.items()) + "}"


class Renderer:
    """Writes a tree as one operation; fragments and variables are collected on the way."""

    def __init__(self, draw: st.DrawFn) -> None:
        self.draw = draw
        self.fragments: list[str] = []
        self.declared: list[str] = []
        self.variables: dict[str, Any] = {}
        self.names = itertools.count()

    def variable(self, type_: str, value: Any) -> str:
        name = f"v{next(self.names)}"
        self.declared.append(f"${name}: {type_}")
        self.variables[name] = value
        return f"${name}"

    def flag(self, text: str) -> str:
        for name, value in (("yes", True), ("no", False)):
            if f"${name}" in text and name not in self.variables:
                self.declared.append(f"${name}: Boolean!")
                self.variables[name] = value
        return text

    def field(self, item: Item, type_name: str) -> str:
        head = item.name if item.key == item.name else f"{item.key}: {item.name}"
        directive = f" {self.flag(item.directive)}" if item.directive else ""
        if item.target is not None:
            return f"{head}{directive} {{ {self.obj(item.target)} }}"
        if item.connection is not None:
            arguments = self.arguments(item.connection)
            return f"{head}{arguments}{directive} {{ {self.conn(item.connection)} }}"
        return head + directive

    def obj(self, obj: Obj) -> str:
        type_name = obj.kind.type_name
        rendered = [(item, self.field(item, type_name)) for item in obj.items]
        rendered += [(item, self.field(item, type_name)) for item in obj.skipped]
        pieces: list[str] = []
        i = 0
        while i < len(rendered):
            size = self.draw(st.integers(1, 3))
            chunk = rendered[i : i + size]
            i += size
            text = " ".join(t for _, t in chunk)
            on_node = all(item.kind in ("typename", "nodeId") for item, _ in chunk)
            how = self.draw(st.sampled_from(["plain", "plain", "inline", "typed", "named"]))
            condition = "Node" if on_node and self.draw(st.booleans()) else type_name
            if how == "inline":
                text = f"... {{ {text} }}"
            elif how == "typed":
                text = f"... on {condition} {{ {text} }}"
            elif how == "named":
                name = f"F{len(self.fragments)}"
                self.fragments.append(f"fragment {name} on {condition} {{ {text} }}")
                text = f"...{name}"
            pieces.append(text)
        # the same leaf again, later: fields with one response key merge into one
        leaves = [t for item, t in rendered if item.kind != "one" and item.kind != "many"]
        if leaves and self.draw(st.integers(0, 3)) == 0:
            pieces.append(f"... on {type_name} {{ {self.draw(st.sampled_from(leaves))} }}")
        return " ".join(pieces)

    def arguments(self, c: Conn) -> str:
        args = []
        type_name = c.kind.type_name
        if c.first is not None:
            if c.style["first"] == "literal":
                args.append(f"first: {c.first}")
            else:
                args.append(f"first: {self.variable('Int', c.first)}")
        if c.order:
            value = [order_input(f, d) for f, d in c.order]
            if c.style["orderBy"] == "variable":
                args.append(f"orderBy: {self.variable(f'[{type_name}OrderBy!]', value)}")
            else:
                args.append(f"orderBy: {literal([order_input(f, _Enum(d)) for f, d in c.order])}")
        if c.filter is not None:
            if c.style["filter"] == "variable":
                args.append(
                    f"filter: {self.variable(f'{type_name}Filter', filter_graphql(c.filter))}"
                )
            else:
                args.append(
                    f"filter: {self.filter_literal(c.filter, c.style['filter'] == 'inner')}"
                )
        return f"({', '.join(args)})" if args else ""

    def filter_literal(self, f: Any, inner: bool) -> str:
        def atom(a: Condition) -> str:
            value = self.variable(a.variable_type, a.api_value) if inner else literal(a.api_value)
            return a.render(value)

        if isinstance(f, Condition):
            return atom(f)
        if f[0] == "not":
            return f"{{not: {atom(f[1])}}}"
        return f"{{{f[0]}: [{atom(f[1])}, {atom(f[2])}]}}"

    def conn(self, c: Conn) -> str:
        pieces = []
        for part in c.parts:
            head = part.name if part.key == part.name else f"{part.key}: {part.name}"
            if part.name == "nodes":
                assert part.node is not None
                pieces.append(f"{head} {{ {self.obj(part.node)} }}")
            elif part.name == "edges":
                assert part.node is not None
                typename = "__typename " if part.edge_typename else ""
                pieces.append(f"{head} {{ {typename}node {{ {self.obj(part.node)} }} }}")
            elif part.name == "pageInfo":
                pieces.append(f"{head} {{ {' '.join(part.info)} }}")
            else:
                pieces.append(head)
        return " ".join(pieces)

    def root(self, r: Root) -> str:
        head = r.name if r.key == r.name else f"{r.key}: {r.name}"
        if r.name == "__typename":
            return head
        if r.connection is not None:
            return f"{head}{self.arguments(r.connection)} {{ {self.conn(r.connection)} }}"
        if r.name == "node":
            assert r.node_type is not None and r.id is not None
            node_id = encode_node_id(r.node_type.type_name, r.id)
            arg = self.variable("ID!", node_id) if self.draw(st.booleans()) else literal(node_id)
            common = " ".join(self.field(i, "Node") for i in r.node_common)
            typed = " ".join(f"... on {t} {{ {self.obj(o)} }}" for t, o in r.node_fragments.items())
            return f"{head}(nodeId: {arg}) {{ {common} {typed} }}"
        assert r.id is not None and r.target is not None
        arg = self.variable("UUID!", r.id) if self.draw(st.booleans()) else literal(r.id)
        return f"{head}(id: {arg}) {{ {self.obj(r.target)} }}"


class Operation:
    def __init__(self, roots: list[Root], text: str, variables: dict[str, Any]) -> None:
        self.roots = roots
        self.text = text
        self.variables = variables

    def __repr__(self) -> str:
        return f"Operation({self.text!r}, {self.variables!r})"


@st.composite
def operations(draw: st.DrawFn) -> Operation:
    tree = draw(roots())
    renderer = Renderer(draw)
    body = " ".join(renderer.root(r) for r in tree)
    declared = f"({', '.join(renderer.declared)})" if renderer.declared else ""
    text = " ".join([f"query Generated{declared} {{ {body} }}", *renderer.fragments])
    return Operation(tree, text, renderer.variables)


# --- the reference --------------------------------------------------------------------------


def encode_node_id(type_name: str, key: str) -> str:
    return base64.b64encode(f"{type_name}:{key}".encode()).decode()


def _value(value: Any) -> Any:
    return str(value) if isinstance(value, uuid.UUID) else value


class Reference:
    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def row(self, kind: Kind, key: Any) -> dict[str, Any] | None:
        rel = relation(kind.model)
        key = uuid.UUID(str(key))
        found = (await self.connection.execute(sa.select(rel).where(rel.c.id == key))).first()
        return None if found is None else dict(found._mapping)

    async def obj(self, obj: Obj, row: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        kind = obj.kind
        for item in obj.items:
            if item.kind == "column":
                out[item.key] = _value(row[kind.columns[item.name]])
            elif item.kind == "typename":
                out[item.key] = kind.type_name
            elif item.kind == "nodeId":
                out[item.key] = encode_node_id(kind.type_name, str(row["id"]))
            elif item.kind == "one":
                assert item.target is not None
                target, column = kind.to_one[item.name]
                found = await self.row(KINDS[target], row[column])
                out[item.key] = None if found is None else await self.obj(item.target, found)
            else:
                assert item.connection is not None
                link = kind.to_many[item.name][1]
                out[item.key] = await self.conn(item.connection, (link, row["id"]))
        return out

    async def conn(self, c: Conn, parent: tuple[str, Any] | None) -> dict[str, Any]:
        rel = relation(c.kind.model)
        condition = filter_sql(c.filter, rel)
        if parent is not None:
            condition = sa.and_(condition, rel.c[parent[0]] == parent[1])
        first = 20 if c.first is None else c.first  # the default page size
        query = sa.select(rel).where(condition).order_by(*order_sql(c.kind, rel, c.order))
        rows = [dict(r._mapping) for r in await self.connection.execute(query.limit(first + 1))]
        more, rows = len(rows) > first, rows[:first]
        out: dict[str, Any] = {}
        for part in c.parts:
            if part.name == "nodes":
                assert part.node is not None
                out[part.key] = [await self.obj(part.node, r) for r in rows]
            elif part.name == "edges":
                assert part.node is not None
                edges = []
                for r in rows:
                    edge: dict[str, Any] = {}
                    if part.edge_typename:
                        edge["__typename"] = f"{c.kind.type_name}Edge"
                    edge["node"] = await self.obj(part.node, r)
                    edges.append(edge)
                out[part.key] = edges
            elif part.name == "pageInfo":
                values = {"hasNextPage": more, "hasPreviousPage": False, "__typename": "PageInfo"}
                out[part.key] = {name: values[name] for name in part.info}
            elif part.name == "totalCount":
                count = sa.select(sa.func.count()).select_from(rel).where(condition)
                out[part.key] = (await self.connection.execute(count)).scalar_one()
            else:
                out[part.key] = f"{c.kind.type_name}Connection"
        return out

    async def root(self, r: Root) -> Any:
        if r.name == "__typename":
            return "Query"
        if r.connection is not None:
            return await self.conn(r.connection, None)
        if r.name == "node":
            assert r.node_type is not None
            found = await self.row(r.node_type, r.id)
            if found is None:
                return None
            out: dict[str, Any] = {}
            common = Obj(r.node_type, r.node_common)
            out.update(await self.obj(common, found))
            fragment = r.node_fragments.get(r.node_type.type_name)
            if fragment is not None:
                out.update(await self.obj(fragment, found))
            return out
        assert r.kind is not None and r.target is not None
        found = await self.row(r.kind, r.id)
        return None if found is None else await self.obj(r.target, found)

    async def operation(self, op: Operation) -> dict[str, Any]:
        return {r.key: await self.root(r) for r in op.roots}


def assert_same(actual: Any, expected: Any, path: str = "data") -> None:
    """Equal, with object keys in the same order and timestamps compared as instants."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), path
        assert list(actual) == list(expected), path
        for key, value in expected.items():
            assert_same(actual[key], value, f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), path
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_same(a, e, f"{path}[{i}]")
    elif isinstance(expected, datetime):
        assert datetime.fromisoformat(actual) == expected, path
    else:
        assert actual == expected, path


# --- the test -------------------------------------------------------------------------------


@pytest.fixture
async def wide_api(seeded: DatabaseURL, engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    """The service with room for the generated operations' many aliases (the limit has a
    test of its own)."""
    async with RunningService(seeded, max_aliases=1_000) as http:
        yield http


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(op=operations())
async def test_generated_operations_answer_as_the_reference_says(
    wide_api: httpx.AsyncClient, engine: AsyncEngine, op: Operation
) -> None:
    body = await gql(wide_api, op.text, op.variables)
    assert "errors" not in body, body
    async with engine.connect() as connection:
        expected = await Reference(connection).operation(op)
    assert_same(body["data"], expected)
