"""`aggregates` on every connection: count, min and max (and sum and avg of number columns), and
distinct counts over all the rows the filter matches, not only the page; nested per parent
row; under RLS.

The expected values come from SQL written here, run on the database directly; a property
test compares them under any filter the reference can express."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.db.url import DatabaseURL
from service.graphql.catalog import AGGREGATE_FUNCTIONS, Catalog
from tests.graphql.conftest import ALICE, BOB, add_drafts, gql, post_id
from tests.graphql.reference import (
    KINDS,
    filter_graphql,
    filter_sql,
    filters,
    relation,
)

CATALOG = Catalog.from_registry()
ORDERED = AGGREGATE_FUNCTIONS["min"][0]  # the scalars min and max take
DISTINCT = AGGREGATE_FUNCTIONS["distinctCount"][0]


def iso(moment: Any) -> str:
    return str(moment.isoformat())


async def sql(url: DatabaseURL, query: str, *args: Any) -> Any:
    connection = await asyncpg.connect(**url.asyncpg_kwargs())
    try:
        await connection.execute("SET TIME ZONE 'UTC'")
        return await connection.fetchrow(query, *args)
    finally:
        await connection.close()


async def test_aggregates_cover_every_matching_row_not_only_the_page(api, seeded):
    body = await gql(
        api,
        """{ posts(first: 2, filter: {title: {startsWith: "Post 1"}}, orderBy: [{title: DESC}]) {
              nodes { title }
              totalCount
              aggregates {
                count
                min { title createdAt }
                max { title createdAt }
              }
            } }""",
    )
    expected = await sql(
        seeded,
        "SELECT count(*), min(title) AS min_title, max(title) AS max_title, "
        "min(created_at) AS min_at, max(created_at) AS max_at "
        "FROM posts WHERE title LIKE 'Post 1%'",
    )
    posts = body["data"]["posts"]
    assert posts["nodes"] == [{"title": "Post 19"}, {"title": "Post 18"}]
    assert posts["totalCount"] == expected["count"] == 10
    assert posts["aggregates"] == {
        "count": 10,
        "min": {"title": expected["min_title"], "createdAt": iso(expected["min_at"])},
        "max": {"title": expected["max_title"], "createdAt": iso(expected["max_at"])},
    }


async def test_nested_aggregates_are_per_parent_row(api, seeded):
    body = await gql(
        api,
        """query($id: UUID!) { post(id: $id) {
              comments(first: 1) { aggregates { count max { createdAt body } } }
            } }""",
        {"id": post_id(7)},
    )
    expected = await sql(
        seeded,
        "SELECT count(*), max(created_at) AS at, max(body) AS body "
        "FROM comments WHERE post_id = $1",
        post_id(7),
    )
    assert body["data"]["post"]["comments"]["aggregates"] == {
        "count": expected["count"],
        "max": {"createdAt": iso(expected["at"]), "body": expected["body"]},
    }


async def test_aggregates_alone_with_aliases_typenames_and_skip(api):
    body = await gql(
        api,
        """query($skip: Boolean!) { posts(filter: {title: {eq: "no such post"}}) {
              a: aggregates {
                __typename
                n: count
                latest: max { __typename createdAt }
                min @skip(if: $skip) { title }
              }
            } }""",
        {"skip": True},
    )
    # no matching row: the count is 0 and every min and max is null
    assert body["data"]["posts"] == {
        "a": {
            "__typename": "PostAggregates",
            "n": 0,
            "latest": {"__typename": "PostMaxAggregates", "createdAt": None},
        }
    }


async def test_aggregates_of_typenames_only_are_one_object_over_many_rows(api):
    # Nothing aggregated at all: still one object, not one per row (a database error once).
    body = await gql(
        api,
        """query($p: UUID!) {
             posts { aggregates { __typename max { __typename } } }
             post(id: $p) { author { comments { aggregates { __typename } } } }
           }""",
        {"p": post_id(1)},
    )
    assert body == {
        "data": {
            "posts": {
                "aggregates": {
                    "__typename": "PostAggregates",
                    "max": {"__typename": "PostMaxAggregates"},
                }
            },
            "post": {"author": {"comments": {"aggregates": {"__typename": "CommentAggregates"}}}},
        }
    }


async def test_only_rows_the_caller_may_see_are_aggregated(api, seeded):
    await add_drafts(seeded, BOB, "ZZ draft", "AA draft")
    query = "{ posts { aggregates { count min { title } max { title } } } }"
    for caller, count, first, last in (
        (None, 25, "Post 01", "Post 25"),
        (ALICE, 25, "Post 01", "Post 25"),
        (BOB, 27, "AA draft", "ZZ draft"),
    ):
        body = await gql(api, query, as_user=caller)
        assert body["data"]["posts"]["aggregates"] == {
            "count": count,
            "min": {"title": first},
            "max": {"title": last},
        }, caller
    # emails are private: another user's counts as null
    emails = await gql(api, "{ users { aggregates { min { email } max { email } } } }", as_user=BOB)
    assert emails["data"]["users"]["aggregates"] == {
        "min": {"email": "bob@example.com"},
        "max": {"email": "bob@example.com"},
    }


@pytest.mark.parametrize("field", ["sum", "avg"])
async def test_sum_and_avg_exist_only_where_there_are_numbers(api, field):
    # Post has no number column: asking for its sum is a validation error, not a 500.
    body = await gql(api, f"{{ posts {{ aggregates {{ {field} {{ title }} }} }} }}")
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert f"'{field}'" in body["errors"][0]["message"]


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(kind=st.sampled_from(sorted(KINDS.values(), key=repr)), data=st.data())
async def test_aggregates_equal_sql_over_any_filter(api, engine, kind, data):
    condition = data.draw(filters(kind), label="filter")
    model = CATALOG.models[kind.type_name]
    columns = [c for c in model.columns.values() if c.scalar in ORDERED]
    counted = [c for c in model.columns.values() if c.scalar in DISTINCT]
    fields = " ".join(c.field for c in columns)
    query = (
        f"query($f: {kind.type_name}Filter) {{ c: {kind.root}(filter: $f, first: 1) "
        f"{{ aggregates {{ count min {{ {fields} }} max {{ {fields} }} "
        f"distinctCount {{ {' '.join(c.field for c in counted)} }} }} }} }}"
    )
    body = await gql(api, query, {"f": filter_graphql(condition)})
    assert "errors" not in body, body

    rel = relation(kind.model)
    selected = [sa.func.count()]
    for function in (sa.func.min, sa.func.max):
        selected += [function(rel.c[c.name]) for c in columns]
    selected += [sa.func.count(rel.c[c.name].distinct()) for c in counted]
    async with engine.connect() as connection:
        row = (
            await connection.execute(sa.select(*selected).where(filter_sql(condition, rel)))
        ).one()
    n = len(columns)
    expected_min = dict(zip((c.field for c in columns), row[1 : 1 + n], strict=True))
    expected_max = dict(zip((c.field for c in columns), row[1 + n : 1 + 2 * n], strict=True))
    expected_distinct = dict(zip((c.field for c in counted), row[1 + 2 * n :], strict=True))

    got = body["data"]["c"]["aggregates"]
    assert got["count"] == row[0]
    assert got["distinctCount"] == expected_distinct, condition
    for name, expected in (("min", expected_min), ("max", expected_max)):
        values = {
            field: datetime.fromisoformat(v) if isinstance(expected[field], datetime) and v else v
            for field, v in got[name].items()
        }
        assert values == expected, (name, condition)


async def test_distinct_counts_count_different_values(api, seeded):
    # post 7's comments all by Bob: the one post with a single commenter
    connection = await asyncpg.connect(**seeded.asyncpg_kwargs())
    try:
        await connection.execute(
            "DELETE FROM comments WHERE post_id = $1 AND author_id = $2", post_id(7), ALICE
        )
    finally:
        await connection.close()
    body = await gql(
        api,
        """{ comments { aggregates { count distinctCount { authorId postId } } }
             posts(first: 1, orderBy: [{comments: {distinctCount: {authorId: ASC}}}, {title: DESC}])
             { nodes { title comments { aggregates { distinctCount { authorId } } } } } }""",
    )
    assert "errors" not in body, body
    assert body["data"]["comments"]["aggregates"] == {
        "count": 74,
        "distinctCount": {"authorId": 2, "postId": 25},
    }
    assert body["data"]["posts"]["nodes"] == [
        {"title": "Post 07", "comments": {"aggregates": {"distinctCount": {"authorId": 1}}}}
    ]
