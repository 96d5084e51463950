"""Increments and appends: `updateX(id:, input:, increment: {stock: -1}, append: {tags:
["new"]})` adds to number columns, appends to arrays and merges into JSONB in the update's own
statement, so concurrent changes all count (no read-modify-write race).

`Product` (in a module written for the test, served by another process as in
test_new_model.py) has an integer, a float and a nullable integer, a text array and a JSONB
column its update class may change, and policies added to its revision: everyone reads, only
a signed-in user changes rows.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.db.url import DatabaseURL
from tests.graphql.conftest import ALICE, gql
from tests.graphql.test_new_model import serving_model

PRODUCT_MODULE = '''
"""Product: `public.products`, something in stock."""

import uuid
from typing import Any

from sqlalchemy import ARRAY, CheckConstraint, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from service.models.columns import uuid_primary_key


class ProductBase(SQLModel):
    name: str = Field(max_length=50, unique=True)
    stock: int = 0
    price: float = 0.0
    rating: int | None = None
    tags: list[str] = Field(default_factory=list, sa_type=ARRAY(String))
    specs: dict[str, Any] | None = Field(default=None, sa_type=JSONB)


class Product(ProductBase, table=True):
    __tablename__ = "products"
    # a bound on the result of any change, increments included, that PostgreSQL holds
    __table_args__ = (CheckConstraint("stock >= 0", name="products_stock_not_negative"),)

    id: uuid.UUID = uuid_primary_key()


class ProductCreate(ProductBase):
    pass


class ProductUpdate(SQLModel):
    name: str | None = Field(default=None, max_length=50)
    stock: int | None = None
    price: float | None = None
    rating: int | None = None
    tags: list[str] | None = None
    specs: dict[str, Any] | None = None
'''

POLICIES = (
    "ALTER TABLE products ENABLE ROW LEVEL SECURITY",
    "CREATE POLICY products_read ON products FOR SELECT USING (true)",
    "CREATE POLICY products_add ON products FOR INSERT WITH CHECK (true)",
    "CREATE POLICY products_change ON products FOR UPDATE TO authenticated USING (true)",
)


@pytest.fixture
async def products(seeded: DatabaseURL, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with serving_model(
        seeded, tmp_path, "product_model", PRODUCT_MODULE, "products", POLICIES
    ) as (http, _):
        body = await gql(
            http,
            """mutation { createProducts(inputs: [
                 {name: "pen", stock: 10, price: 1.5}, {name: "ink", stock: 3, rating: 4},
                 {name: "pad", stock: 0}]) { id } }""",
        )
        assert "errors" not in body, body
        yield http


async def _stock(http: httpx.AsyncClient) -> dict[str, tuple[Any, ...]]:
    body = await gql(http, "{ products { nodes { name stock price rating } } }")
    return {
        n["name"]: (n["stock"], n["price"], n["rating"]) for n in body["data"]["products"]["nodes"]
    }


async def _id(http: httpx.AsyncClient, name: str) -> str:
    body = await gql(http, "query($n: String!) { productByName(name: $n) { id } }", {"n": name})
    product_id: str = body["data"]["productByName"]["id"]
    return product_id


async def test_an_update_adds_to_number_columns(products):
    http = products
    pen = await _id(http, "pen")
    body = await gql(
        http,
        """mutation($id: UUID!) {
             updateProduct(id: $id, input: {name: "blue pen"}, increment: {stock: -3, price: 0.25})
             { name stock price } }""",
        {"id": pen},
        as_user=ALICE,
    )
    assert body == {"data": {"updateProduct": {"name": "blue pen", "stock": 7, "price": 1.75}}}
    # by variables, by a unique column, and on many rows; a null column stays null
    body = await gql(
        http,
        """mutation($by: ProductIncrementInput) {
             one: updateProductByName(name: "ink", input: {}, increment: $by) { stock }
             all: updateProducts(filter: {}, input: {}, increment: {rating: 1}) {
               name rating } }""",
        {"by": {"stock": 2}},
        as_user=ALICE,
    )
    assert "errors" not in body, body
    assert body["data"]["one"] == {"stock": 5}
    assert sorted(body["data"]["all"], key=lambda p: p["name"]) == [
        {"name": "blue pen", "rating": None},
        {"name": "ink", "rating": 5},
        {"name": "pad", "rating": None},
    ]
    assert await _stock(http) == {
        "blue pen": (7, 1.75, None),
        "ink": (5, 0.0, 5),
        "pad": (0, 0.0, None),
    }


async def test_concurrent_increments_all_count(products):
    http = products
    pen = await _id(http, "pen")
    add_one = """mutation($id: UUID!) {
        updateProduct(id: $id, input: {}, increment: {stock: 1}) { stock } }"""
    bodies = await asyncio.gather(
        *(gql(http, add_one, {"id": pen}, as_user=ALICE) for _ in range(25))
    )
    assert all("errors" not in b for b in bodies), bodies
    # each saw its own result: 11 to 35, once each
    assert sorted(b["data"]["updateProduct"]["stock"] for b in bodies) == list(range(11, 36))
    assert (await _stock(http))["pen"][0] == 35


async def test_increments_are_refused_where_an_update_is(products):
    http = products
    pen = await _id(http, "pen")
    both = await gql(
        http,
        """mutation($id: UUID!) {
             updateProduct(id: $id, input: {stock: 1}, increment: {stock: 1}) { stock } }""",
        {"id": pen},
        as_user=ALICE,
    )
    assert both["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "stock"}
    wrong_type = await gql(
        http,
        'mutation($id: UUID!) { updateProduct(id: $id, input: {}, increment: {stock: "1"}) '
        "{ id } }",
        {"id": pen},
        as_user=ALICE,
    )
    assert wrong_type["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    no_such = await gql(
        http,
        "mutation($id: UUID!) { updateProduct(id: $id, input: {}, increment: {name: 1}) { id } }",
        {"id": pen},
        as_user=ALICE,
    )
    assert no_such["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    below_zero = await gql(
        http,
        'mutation { updateProductByName(name: "pad", input: {}, increment: {stock: -1}) { id } }',
        as_user=ALICE,
    )
    assert below_zero["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert below_zero["errors"][0]["message"] == "a value breaks a check on the data"
    too_big = await gql(
        http,
        "mutation($id: UUID!) { updateProduct(id: $id, input: {}, increment: {stock: 2147483647}) "
        "{ id } }",
        {"id": pen},
        as_user=ALICE,
    )
    assert too_big["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    anonymous = await gql(
        http,
        "mutation($id: UUID!) { updateProduct(id: $id, input: {}, increment: {stock: 1}) { id } }",
        {"id": pen},
    )
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert (await _stock(http))["pen"][0] == 10  # nothing changed
    assert (await _stock(http))["pad"][0] == 0


async def test_only_number_columns_the_update_may_change_are_incremented(products):
    body = await gql(
        products,
        '{ __type(name: "ProductIncrementInput") { inputFields { name type { name } } } }',
    )
    assert body["data"]["__type"]["inputFields"] == [
        {"name": "stock", "type": {"name": "Int"}},
        {"name": "price", "type": {"name": "Float"}},
        {"name": "rating", "type": {"name": "Int"}},
    ]


async def test_an_update_appends_to_arrays_and_merges_json(products):
    http = products
    pen = await _id(http, "pen")
    change = """mutation($id: UUID!, $add: ProductAppendInput) {
        updateProduct(id: $id, input: {}, append: $add) { tags specs } }"""
    # to an empty array and a null JSONB column: the values given
    body = await gql(
        http, change, {"id": pen, "add": {"tags": ["blue"], "specs": {"ink": "gel"}}}, as_user=ALICE
    )
    assert body == {"data": {"updateProduct": {"tags": ["blue"], "specs": {"ink": "gel"}}}}
    # then at the end, and merged (a key given replaces the one there), beside other changes
    body = await gql(
        http,
        """mutation($id: UUID!) { updateProduct(id: $id, input: {name: "blue pen"},
             increment: {stock: 1}, append: {tags: ["office", "blue"], specs: {ink: "oil", mm: 14}})
             { name stock tags specs } }""",
        {"id": pen},
        as_user=ALICE,
    )
    assert body["data"]["updateProduct"] == {
        "name": "blue pen",
        "stock": 11,
        "tags": ["blue", "office", "blue"],
        "specs": {"ink": "oil", "mm": 14},
    }
    # on many rows, and by a unique column; null changes nothing
    body = await gql(
        http,
        """mutation {
             all: updateProducts(filter: {name: {in: ["ink", "pad"]}}, input: {},
               append: {tags: ["stock"]}) { name tags }
             one: updateProductByName(name: "ink", input: {}, append: {tags: null}) { tags } }""",
        as_user=ALICE,
    )
    assert "errors" not in body, body
    assert sorted(body["data"]["all"], key=lambda p: p["name"]) == [
        {"name": "ink", "tags": ["stock"]},
        {"name": "pad", "tags": ["stock"]},
    ]
    assert body["data"]["one"] == {"tags": ["stock"]}


async def test_concurrent_appends_all_count(products):
    http = products
    pen = await _id(http, "pen")
    add = """mutation($id: UUID!, $tag: String!) {
        updateProduct(id: $id, input: {}, append: {tags: [$tag]}) { id } }"""
    tags = [f"t{i}" for i in range(20)]
    bodies = await asyncio.gather(
        *(gql(http, add, {"id": pen, "tag": tag}, as_user=ALICE) for tag in tags)
    )
    assert all("errors" not in b for b in bodies), bodies
    body = await gql(http, "query($id: UUID!) { product(id: $id) { tags } }", {"id": pen})
    assert sorted(body["data"]["product"]["tags"]) == sorted(tags)


async def test_appends_are_refused_where_an_update_is(products):
    http = products
    pen = await _id(http, "pen")
    both = await gql(
        http,
        """mutation($id: UUID!) {
             updateProduct(id: $id, input: {tags: ["a"]}, append: {tags: ["b"]}) { id } }""",
        {"id": pen},
        as_user=ALICE,
    )
    assert both["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "tags"}
    for wrong in ('append: {name: ["x"]}', "append: {tags: [1]}", "append: {stock: 1}"):
        body = await gql(
            http,
            f"mutation($id: UUID!) {{ updateProduct(id: $id, input: {{}}, {wrong}) {{ id }} }}",
            {"id": pen},
            as_user=ALICE,
        )
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", (wrong, body)
    anonymous = await gql(
        http,
        'mutation($id: UUID!) { updateProduct(id: $id, input: {}, append: {tags: ["x"]}) { id } }',
        {"id": pen},
    )
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    body = await gql(http, "query($id: UUID!) { product(id: $id) { tags } }", {"id": pen})
    assert body["data"]["product"]["tags"] == []  # nothing changed
    types = await gql(
        http, '{ __type(name: "ProductAppendInput") { inputFields { name type { name kind } } } }'
    )
    assert types["data"]["__type"]["inputFields"] == [
        {"name": "tags", "type": {"name": None, "kind": "LIST"}},
        {"name": "specs", "type": {"name": "JSON", "kind": "SCALAR"}},
    ]


async def test_an_update_removes_from_arrays_and_json(products):
    http = products
    pen, ink = await _id(http, "pen"), await _id(http, "ink")
    change = """mutation($id: UUID!, $add: ProductAppendInput, $take: ProductRemoveInput) {
        updateProduct(id: $id, input: {}, append: $add, remove: $take) { tags specs } }"""
    start = {"tags": ["a", "b", "a", "c"], "specs": {"ink": "gel", "mm": 14, "color": "red"}}
    body = await gql(http, change, {"id": pen, "add": start}, as_user=ALICE)
    assert body["data"]["updateProduct"] == start
    # every element equal to one given, the others in order; keys of the JSONB object
    take = {"tags": ["a", "x"], "specs": ["mm", "nope"]}
    body = await gql(http, change, {"id": pen, "take": take}, as_user=ALICE)
    assert body["data"]["updateProduct"] == {
        "tags": ["b", "c"],
        "specs": {"ink": "gel", "color": "red"},
    }
    # down to an empty array; a null JSONB column stays null
    body = await gql(http, change, {"id": pen, "take": {"tags": ["b", "c"]}}, as_user=ALICE)
    assert body["data"]["updateProduct"]["tags"] == []
    body = await gql(http, change, {"id": ink, "take": {"specs": ["ink"]}}, as_user=ALICE)
    assert body["data"]["updateProduct"] == {"tags": [], "specs": None}
    # one change a column: not appended to and taken from at once
    both = await gql(
        http, change, {"id": pen, "add": {"tags": ["d"]}, "take": {"tags": ["d"]}}, as_user=ALICE
    )
    assert both["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "tags"}
    # appends and removals at the same time all count
    await gql(http, change, {"id": pen, "add": {"tags": ["old"]}}, as_user=ALICE)
    new = [f"n{i}" for i in range(10)]
    bodies = await asyncio.gather(
        gql(http, change, {"id": pen, "take": {"tags": ["old"]}}, as_user=ALICE),
        *(gql(http, change, {"id": pen, "add": {"tags": [t]}}, as_user=ALICE) for t in new),
    )
    assert all("errors" not in b for b in bodies), bodies
    body = await gql(http, "query($id: UUID!) { product(id: $id) { tags } }", {"id": pen})
    assert sorted(body["data"]["product"]["tags"]) == new
    types = await gql(
        http,
        '{ __type(name: "ProductRemoveInput") { inputFields { name type { kind ofType { name '
        "ofType { name } } } } } }",
    )
    fields = types["data"]["__type"]["inputFields"]
    assert [f["name"] for f in fields] == ["tags", "specs"]
    assert fields[1]["type"] == {
        "kind": "LIST",
        "ofType": {"name": None, "ofType": {"name": "String"}},
    }
