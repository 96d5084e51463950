"""Keyset paging, as properties: any page size, filter and order, forward or backward.

Each page must be exactly the next (or previous) rows of the unpaged SQL query, written here
with SQLAlchemy Core and run by the test at the time the page is read, after the last row of
the page before. Rows are inserted between pages, at random places in the order: a page still
starts right after its cursor's row, and no row is seen twice or skipped.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.graphql.conftest import gql, post_id
from tests.graphql.reference import (
    ALICE,
    BOB,
    COMMENT,
    DIRECTIONS,
    POST,
    RELATED_ORDER,
    T0,
    USER,
    Kind,
    OrderField,
    filter_graphql,
    filter_sql,
    filters,
    order_input,
    order_sql,
    relation,
)

HOURS = [T0 + timedelta(hours=h) for h in range(0, 14, 3)]


@dataclass
class Case:
    kind: Kind
    nested: bool  # page the same rows through a parent's connection (user.posts, post.comments)
    order: list[tuple[OrderField, str]]
    filter: Any
    size: int
    backward: bool
    inserts: dict[int, list[dict[str, Any]]]  # page number -> rows inserted before it


def new_rows(kind: Kind) -> st.SearchStrategy[dict[str, Any]]:
    ids = st.uuids(version=4)
    if kind is POST:
        return st.fixed_dictionaries(
            {
                "id": ids,
                "title": st.sampled_from(["Post 00", "Post 13", "Post 99", "Aardvark", "Zebra"]),
                "content": st.just("inserted"),
                # published: every caller sees it (who sees what is not this test's subject)
                "published": st.just(True),
                "author_id": st.sampled_from([uuid.UUID(ALICE), uuid.UUID(BOB)]),
                "created_at": st.sampled_from(HOURS),
                "updated_at": st.sampled_from([T0, T0 + timedelta(days=1)]),
            }
        )
    if kind is USER:
        return st.fixed_dictionaries(
            {
                "id": ids,
                "email": st.sampled_from([None, "carol@example.com", "aaa@x.org", "zzz@x.org"]),
                "created_at": st.sampled_from(
                    [datetime(2026, 1, d, tzinfo=UTC) for d in (1, 2, 3, 4)]
                ),
            }
        )
    return st.fixed_dictionaries(
        {
            "id": ids,
            "body": st.sampled_from(["Comment 1 on post 3", "Comment 9", "A comment"]),
            "post_id": st.just(uuid.UUID(post_id(3))),
            "author_id": st.sampled_from([uuid.UUID(ALICE), uuid.UUID(BOB)]),
            "created_at": st.sampled_from(
                [datetime(2026, 3, 4, tzinfo=UTC), datetime(2026, 3, 3, 23, 58, tzinfo=UTC)]
            ),
        }
    )


@st.composite
def cases(draw: st.DrawFn) -> Case:
    kind = draw(st.sampled_from([POST, POST, USER, COMMENT]))
    nested = kind is not USER and draw(st.booleans())
    # columns, and values through relations: a related row's column, a count, a min or max
    choices: list[OrderField] = [*sorted(kind.columns), *RELATED_ORDER[kind.type_name]]
    fields = draw(st.lists(st.sampled_from(choices), max_size=3, unique=True))
    order = [(f, draw(st.sampled_from(DIRECTIONS))) for f in fields]
    inserts: dict[int, list[dict[str, Any]]] = {}
    for page, row in draw(
        st.lists(
            st.tuples(st.integers(1, 4), new_rows(kind)), max_size=3, unique_by=lambda t: t[1]["id"]
        )
    ):
        inserts.setdefault(page, []).append(row)
    return Case(
        kind=kind,
        nested=nested,
        order=order,
        filter=draw(filters(kind)),
        size=draw(st.integers(1, 8)),
        backward=draw(st.booleans()),
        inserts=inserts,
    )


class Pager:
    """Reads one case's pages from the API and its rows from the reference query."""

    def __init__(self, http: httpx.AsyncClient, engine: AsyncEngine, case: Case) -> None:
        self.http = http
        self.engine = engine
        self.case = case
        kind = case.kind
        self.rel = relation(kind.model)
        # the parent whose nested connection holds the rows: Alice's posts, post 3's comments
        self.parent = None
        if case.nested:
            self.parent = ("user", "posts", ALICE, "author_id") if kind is POST else None
            if kind is COMMENT:
                self.parent = ("post", "comments", post_id(3), "post_id")

    async def reference(self) -> list[str]:
        keys = order_sql(self.case.kind, self.rel, self.case.order)
        condition = filter_sql(self.case.filter, self.rel)
        if self.parent is not None:
            condition = sa.and_(condition, self.rel.c[self.parent[3]] == uuid.UUID(self.parent[2]))
        query = sa.select(self.rel.c.id).where(condition).order_by(*keys)
        async with self.engine.connect() as connection:
            return [str(i) for i in (await connection.execute(query)).scalars()]

    async def page(self, cursor: str | None) -> dict[str, Any]:
        kind = self.case.kind
        size, bound = ("last", "before") if self.case.backward else ("first", "after")
        args = f"{size}: $size, {bound}: $cursor, filter: $filter, orderBy: $order"
        selection = (
            "{ totalCount edges { cursor node { id } } "
            "pageInfo { hasNextPage hasPreviousPage startCursor endCursor } }"
        )
        declared = (
            f"$size: Int, $cursor: String, $filter: {kind.type_name}Filter, "
            f"$order: [{kind.type_name}OrderBy!]"
        )
        variables: dict[str, Any] = {
            "size": self.case.size,
            "cursor": cursor,
            "filter": filter_graphql(self.case.filter),
            "order": [order_input(f, d) for f, d in self.case.order],
        }
        if self.parent is None:
            query = f"query({declared}) {{ c: {kind.root}({args}) {selection} }}"
        else:
            root, field, parent_id, _ = self.parent
            query = (
                f"query({declared}, $parent: UUID!) "
                f"{{ p: {root}(id: $parent) {{ c: {field}({args}) {selection} }} }}"
            )
            variables["parent"] = parent_id
        body = await gql(self.http, query, variables)
        assert "errors" not in body, (query, variables, body)
        connection: dict[str, Any] = (
            body["data"]["c"] if self.parent is None else body["data"]["p"]["c"]
        )
        return connection

    async def insert(self, rows: list[dict[str, Any]]) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(sa.insert(self.case.kind.model.__table__), rows)

    async def cleanup(self) -> None:
        ids = [row["id"] for rows in self.case.inserts.values() for row in rows]
        if ids:
            table = self.case.kind.model.__table__
            async with self.engine.begin() as connection:
                await connection.execute(sa.delete(table).where(table.c.id.in_(ids)))


async def walk(pager: Pager) -> tuple[list[str], list[str], list[str]]:
    """Page through the whole connection; returns (rows at start, rows seen, rows at end)."""
    case = pager.case
    at_start = await pager.reference()
    seen: list[str] = []
    cursor = None
    edge_row: str | None = None  # the row of the cursor the next page starts from
    for number in range(1, 200):
        if number in case.inserts:
            await pager.insert(case.inserts[number])
        page = await pager.page(cursor)
        rows = await pager.reference()
        ids = [e["node"]["id"] for e in page["edges"]]
        info = page["pageInfo"]
        assert page["totalCount"] == len(rows)
        if not case.backward:
            start = 0 if edge_row is None else rows.index(edge_row) + 1
            assert ids == rows[start : start + case.size]
            assert info["hasNextPage"] == (len(rows) > start + case.size)
            assert info["hasPreviousPage"] == (start > 0)
            more = info["hasNextPage"]
            seen += ids
        else:
            end = len(rows) if edge_row is None else rows.index(edge_row)
            assert ids == rows[max(0, end - case.size) : end]
            assert info["hasPreviousPage"] == (end - case.size > 0)
            assert info["hasNextPage"] == (end < len(rows))
            more = info["hasPreviousPage"]
            seen = ids + seen
        if ids:
            cursors = [e["cursor"] for e in page["edges"]]
            assert (info["startCursor"], info["endCursor"]) == (cursors[0], cursors[-1])
            cursor = cursors[0] if case.backward else cursors[-1]
            edge_row = ids[0] if case.backward else ids[-1]
        else:
            assert info["startCursor"] is info["endCursor"] is None
        if not more:
            return at_start, seen, await pager.reference()
    raise AssertionError("paging did not end")


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=cases())
async def test_pages_are_exactly_the_unpaged_query_in_order_even_with_inserts(
    api: httpx.AsyncClient, engine: AsyncEngine, case: Case
) -> None:
    pager = Pager(api, engine, case)
    try:
        at_start, seen, at_end = await walk(pager)
    finally:
        await pager.cleanup()
    assert len(seen) == len(set(seen)), "a row was seen twice"
    assert set(at_start) <= set(seen), "a row that was there all along was skipped"
    assert seen == [row for row in at_end if row in set(seen)], "rows out of order"


async def test_nulls_sort_last_ascending_and_first_descending_with_the_id_tie_breaker(
    api: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    # A fixed case of the property above that is easy to read: users by email, both ways.
    for direction in ("ASC", "DESC"):
        case = Case(USER, False, [("email", direction)], None, 3, False, {})
        at_start, seen, _ = await walk(Pager(api, engine, case))
        assert seen == at_start
        assert len(seen) == 8
