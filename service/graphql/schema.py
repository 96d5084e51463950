"""The Strawberry schema, generated from the catalog: types, connections, filters, inputs, roots.

There is no GraphQL code per model. The schema exists for parsing, validation, introspection
and GraphiQL; operations are not executed field by field but compiled to SQL (plan.py, sql.py),
so the generated fields carry no resolvers.
"""

from __future__ import annotations

import enum
import itertools
import keyword
import sys
import types
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from functools import partial
from typing import Annotated, Any, Final

import strawberry
from graphql import DirectiveLocation
from pydantic import BaseModel
from pydantic_core import PydanticUndefined
from strawberry.annotation import StrawberryAnnotation
from strawberry.federation.schema_directives import Key
from strawberry.federation.types import FieldSet
from strawberry.printer import print_schema
from strawberry.types.arguments import StrawberryArgument
from strawberry.types.field import StrawberryField
from strawberry.types.unset import UNSET

from service.graphql.catalog import (
    ADJUSTMENTS,
    AGGREGATE_FUNCTIONS,
    TEXT_MATCHES,
    Catalog,
    ColumnInfo,
    ModelInfo,
    RelationInfo,
    RootFunction,
    aggregate_type,
    api_fields,
    camel,
    class_doc,
    enum_name,
    field_docs,
)

_schema_ids = itertools.count()
# The oldest Federation 2 version with everything the SDL uses (`@key`), so that older routers
# compose it too.
FEDERATION_VERSION: Final = "2.0"

# Filter operators per scalar. Strings add pattern matching; booleans only compare.
_COMPARE = ("eq", "neq", "in", "nin", "lt", "lte", "gt", "gte", "isNull")
FILTER_OPERATORS: dict[str, tuple[str, ...]] = {
    "String": (*_COMPARE, "like", "ilike", "startsWith", *TEXT_MATCHES),
    "UUID": ("eq", "neq", "in", "nin", "isNull"),
    "Boolean": ("eq", "neq", "isNull"),
    "Int": _COMPARE,
    "Float": _COMPARE,
    "DateTime": _COMPARE,
    "Date": _COMPARE,
}
_ENUM_OPERATORS = ("eq", "neq", "in", "nin", "isNull")
# PostgreSQL's jsonb @>, <@, ?, ?| and ?&
_JSON_OPERATORS = ("contains", "containedBy", "hasKey", "hasKeysAny", "hasKeysAll", "isNull")
_JSON_KEY_TESTS = {
    "hasKey": (
        "str | None",
        "The value is an object with this key (or an array with this string among its "
        "elements), at its top level.",
    ),
    "hasKeysAny": ("list[str] | None", "The value has at least one of these top-level keys."),
    "hasKeysAll": ("list[str] | None", "The value has all of these top-level keys."),
}
# arrays: @>, <@ and && of PostgreSQL's arrays
_ARRAY_OPERATORS = ("contains", "containedBy", "overlaps", "isNull")
_PYTHON_SCALARS: dict[str, str] = {
    "String": "str",
    "UUID": "uuid.UUID",
    "Boolean": "bool",
    "Int": "int",
    "Float": "float",
    "DateTime": "datetime",
    "Date": "date",
    "JSON": "JSON",
}


def filter_operators(column: ColumnInfo) -> tuple[str, ...]:
    if column.array:
        return _ARRAY_OPERATORS if column.scalar in FILTER_OPERATORS else ()
    if column.labels:
        return _ENUM_OPERATORS
    if column.scalar == "JSON":
        return _JSON_OPERATORS
    return FILTER_OPERATORS.get(column.scalar, ())


def _filter_type(column: ColumnInfo) -> str:
    return f"{column.scalar}{'Array' if column.array else ''}Filter"


def _annotation(column: ColumnInfo) -> str:
    """The column's GraphQL type, as an annotation in the generated module's namespace."""
    scalar = column.scalar if column.labels else _PYTHON_SCALARS[column.scalar]
    return f"list[{scalar} | None]" if column.array else scalar


@strawberry.enum(
    description="Sort direction of one `orderBy` entry. Nulls come last in ASC and first in "
    "DESC (as the greatest value, PostgreSQL's way), unless the direction says otherwise."
)
class SortDirection(enum.Enum):
    ASC = "ASC"
    DESC = "DESC"
    ASC_NULLS_FIRST = "ASC_NULLS_FIRST"
    ASC_NULLS_LAST = "ASC_NULLS_LAST"
    DESC_NULLS_FIRST = "DESC_NULLS_FIRST"
    DESC_NULLS_LAST = "DESC_NULLS_LAST"


@strawberry.interface(description="An object with a global id, fetchable with `node(nodeId:)`.")
class Node:
    node_id: strawberry.ID = strawberry.field(name="nodeId")


@strawberry.type(description="Where a page of a connection sits in the whole list.")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


# Every Relay-style subgraph has a PageInfo of this shape. In a supergraph a type that two
# subgraphs define must be @shareable in both, so a subgraph's PageInfo says it may be shared.
@strawberry.federation.type(
    name="PageInfo",
    shareable=True,
    description="Where a page of a connection sits in the whole list.",
)
class SharedPageInfo(PageInfo):
    pass


@dataclass
class GeneratedSchema:
    schema: strawberry.Schema
    catalog: Catalog

    def sdl(self) -> str:
        """The schema as `service schema` prints it; a subgraph's as its `_service` tells a
        router (with its `@link` to the federation spec and each entity's `@key`)."""
        return print_schema(self.schema)


class _Builder:
    """Defines generated classes in a synthetic module, so string annotations resolve lazily."""

    def __init__(self) -> None:
        name = f"service.graphql._generated_{next(_schema_ids)}"
        self.module = types.ModuleType(name)
        sys.modules[name] = self.module
        self.ns = self.module.__dict__
        self.pending: list[tuple[type, Any]] = []
        self.ns.update(
            uuid=uuid,
            datetime=datetime,
            date=date,
            Node=Node,
            PageInfo=PageInfo,
            SortDirection=SortDirection,
            JSON=strawberry.scalars.JSON,
        )

    def finish(self) -> None:
        """Decorate every generated class, now that all of them are in the namespace.

        Strawberry resolves a string annotation against the namespace as it is when the class
        is decorated, and generated types refer to each other both ways (Post <-> Comment).
        """
        for cls, decorate in self.pending:
            decorate(cls)
        self.pending.clear()

    def annotation(self, text: str) -> StrawberryAnnotation:
        return StrawberryAnnotation(text, namespace=self.ns)

    def field(
        self,
        name: str,
        type_: str,
        *,
        args: dict[str, tuple[Any, ...]] | None = None,
        description: str | None = None,
        deprecation: str | None = None,
        default: Any = UNSET,
    ) -> StrawberryField:
        f = StrawberryField(
            # `in`, `and`, `or`, `not` are GraphQL names but Python keywords.
            python_name=f"{name}_" if keyword.iskeyword(name) else name,
            graphql_name=name,
            type_annotation=self.annotation(type_),
            description=description,
            deprecation_reason=deprecation,
            default=default,
        )
        if args:
            f.arguments = [
                StrawberryArgument(
                    python_name=arg,
                    graphql_name=arg,
                    type_annotation=self.annotation(arg_type),
                    default=arg_default,
                    description=doc[0] if doc else None,
                )
                # (type, default) or (type, default, description)
                for arg, (arg_type, arg_default, *doc) in args.items()
            ]
        return f

    def define(
        self,
        name: str,
        fields: list[StrawberryField],
        *,
        kind: str = "type",
        bases: tuple[type, ...] = (),
        description: str | None = None,
        one_of: bool = False,
        directives: tuple[object, ...] = (),
    ) -> type:
        namespace: dict[str, Any] = {
            "__module__": self.module.__name__,
            "__qualname__": name,
            "__annotations__": {f.python_name: f.type_annotation.annotation for f in fields},  # type: ignore[union-attr]
        }
        for f in fields:
            namespace[f.python_name] = f  # type: ignore[index]
        cls = type(name, bases, namespace)
        if kind == "input":
            self.pending.append(
                (
                    cls,
                    lambda c: strawberry.input(
                        c, name=name, description=description, one_of=one_of
                    ),
                )
            )
        else:
            self.pending.append(
                (
                    cls,
                    lambda c: strawberry.type(
                        c, name=name, description=description, directives=directives
                    ),
                )
            )
        self.ns[name] = cls
        return cls


def connection_args(model: ModelInfo) -> dict[str, tuple[Any, ...]]:
    return {
        "first": ("int | None", UNSET),
        "after": ("str | None", UNSET),
        "last": ("int | None", UNSET),
        "before": ("str | None", UNSET),
        "filter": (f"{model.type_name}Filter | None", UNSET),
        "orderBy": (f"list[{model.type_name}OrderBy] | None", UNSET),
        "distinctOn": (
            f"list[{model.type_name}GroupBy] | None",
            UNSET,
            "Of the rows `filter` matches, only the first in `orderBy`'s order for each "
            "distinct combination of these values (a date or time may be truncated): the "
            "newest post of each author, say. Counts and aggregates are over those rows.",
        ),
    }


def build_schema(catalog: Catalog, *, federation: bool = False) -> GeneratedSchema:
    """`federation`: an Apollo Federation 2 subgraph, whose types are entities a router may
    ask for by key (`_entities`) and whose SDL it reads from `_service`."""
    b = _Builder()
    for scalar, operators in FILTER_OPERATORS.items():
        py = _PYTHON_SCALARS[scalar]
        _define_scalar_filter(b, scalar, py, operators)
        _define_scalar_filter(
            b, f"{scalar}Array", f"list[{py} | None]", _ARRAY_OPERATORS, f"an array of {scalar}"
        )
    _define_scalar_filter(b, "JSON", "JSON", _JSON_OPERATORS)
    _define_enums(b, catalog)
    if federation:
        b.ns["PageInfo"] = SharedPageInfo
    for model in catalog:
        _define_model_types(b, catalog, model, federation=federation)

    b.ns["strawberry"] = strawberry
    mutation_fields: list[StrawberryField] = []
    for model in catalog:
        mutation_fields.extend(_mutation_fields(b, catalog, model))
        mutation_fields.extend(_mutation_function_fields(b, model))
    query = b.define("Query", _read_fields(b, catalog, live=False))
    mutation = b.define("Mutation", _once(mutation_fields)) if mutation_fields else None
    # Live queries: the same fields, whose answer is sent again whenever it changes.
    subscription = b.define(
        "Subscription",
        _read_fields(b, catalog, live=True),
        description="Live queries over WebSocket: each field as in Query, sent again whenever "
        "its answer changes.",
    )
    b.finish()
    object_types = [b.ns[m.type_name] for m in catalog]
    # A subgraph: Strawberry adds `_service` and `_entities`, which the service answers itself
    # (plan.py: `_entities` is compiled into the operation's statement like `node`).
    make_schema: Callable[..., strawberry.Schema] = (
        partial(strawberry.federation.Schema, federation_version=FEDERATION_VERSION)
        if federation
        else strawberry.Schema
    )
    schema = make_schema(
        query=query,
        mutation=mutation,
        subscription=subscription,
        types=object_types,
        directives=[cached],
    )
    return GeneratedSchema(schema=schema, catalog=catalog)


@strawberry.directive(
    locations=[DirectiveLocation.QUERY],
    description="Answer this query from the service's memory while an answer to the same "
    "query, variables and caller is at most `ttl` seconds old; the response's Cache-Control "
    "says for how much longer.",
)
def cached(
    ttl: Annotated[
        int,
        strawberry.argument(
            description="Seconds an answer may be reused: at most RESPONSE_CACHE_MAX_TTL "
            "(300 unless configured)."
        ),
    ] = 60,
) -> None:
    """Declared for validation and introspection; the HTTP endpoint acts on it."""


def _stream_field(b: _Builder, model: ModelInfo) -> StrawberryField:
    name = model.type_name
    args = connection_args(model)
    del args["last"], args["before"], args["distinctOn"]
    return b.field(
        f"{model.plural}Stream",
        f"{name}Connection",
        args=args,
        description=f"New {name} rows as they come: the rows after `after` in `orderBy`'s "
        "order (at most `first` a message), then, whenever more are visible to the caller, "
        "those after the last one sent. Nothing is sent while no rows follow. Without "
        "`after` it starts at the first row; from now on: the `endCursor` of a page read "
        "in the same order. Order by a column that only grows (`createdAt`, a sequence): "
        "a row that sorts before the last one sent is not sent.",
    )


def _read_fields(b: _Builder, catalog: Catalog, *, live: bool) -> list[StrawberryField]:
    """The root fields that read: Query's, and Subscription's (`live`) with the same shape."""
    then = " Sent again whenever it changes." if live else ""
    fields: list[StrawberryField] = []
    for model in catalog:
        pk = model.primary_key
        if model.keyed_by_one:
            fields.append(
                b.field(
                    model.single,
                    f"{model.type_name} | None",
                    args={pk.field: (_annotation(pk), UNSET)},
                    description=f"One {model.type_name} by its {pk.field}, or null if not "
                    "visible." + then,
                )
            )
        for lookup, columns in model.lookups.items():
            named = " and ".join(c.field for c in columns)
            fields.append(
                b.field(
                    lookup,
                    f"{model.type_name} | None",
                    args={c.field: (_annotation(c), UNSET) for c in columns},
                    description=f"The {model.type_name} whose {named} these are (unique), "
                    "or null if none is visible." + then,
                )
            )
        fields.append(
            b.field(
                model.plural,
                f"{model.type_name}Connection",
                args=connection_args(model),
                description=f"A page of {model.type_name} rows visible to the caller." + then,
            )
        )
        if live:
            fields.append(_stream_field(b, model))
        for function in model.query_functions:
            if function.returns is not None:
                fields.append(_function_value_field(b, function, then))
                continue
            fields.append(
                b.field(
                    function.field,
                    f"{model.type_name}Connection",
                    args={**_function_arguments(function.arguments), **connection_args(model)},
                    description=f"A page of the {model.type_name} rows that the SQL function "
                    f"{function.function.name} returns, of those visible to the "
                    "caller." + then,
                )
            )
    fields.append(
        b.field(
            "node",
            "Node | None",
            args={"nodeId": ("strawberry.ID", UNSET)},
            description="Any object by its global `nodeId`." + then,
        )
    )
    viewer = next((m for m in catalog if m.table.fullname == "auth.users"), None)
    if viewer is not None:
        fields.append(
            b.field(
                "viewer",
                f"{viewer.type_name} | None",
                description="The caller's own user, or null when anonymous." + then,
            )
        )
    return _once(fields)


def _once(fields: list[StrawberryField]) -> list[StrawberryField]:
    """The root fields, each name once: a root function may not be named like another field."""
    names = [f.graphql_name or f.python_name for f in fields]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise TypeError(f"root fields named twice: {', '.join(twice)}")
    return fields


def _function_arguments(arguments: tuple[ColumnInfo, ...]) -> dict[str, tuple[str, Any]]:
    """A SQL function's arguments as a field's: optional where their type is."""
    return {
        a.field: (f"{_annotation(a)}{' | None' if a.nullable else ''}", UNSET) for a in arguments
    }


def _define_aggregates(b: _Builder, model: ModelInfo, *, group: bool = False) -> None:
    """`XAggregates`, or with `group` `XGroup`: the same aggregates over one group's rows,
    and the group's keys."""
    name = model.type_name
    counted = "The group's rows." if group else "All matching rows."
    fields = [b.field("count", "int", description=counted)]
    if group:
        fields.insert(0, b.field("keys", f"{name}GroupKeys", description="What the group shares."))
    for function, (_, result) in AGGREGATE_FUNCTIONS.items():
        columns = model.aggregated(function)
        if not columns:
            continue  # GraphQL has no empty object types
        values = aggregate_type(name, function)
        if not group:  # a group's are the same types
            counts = result == "Int"  # a count: 0, never null
            b.define(
                values,
                [
                    b.field(
                        c.field,
                        "int" if counts else f"{_PYTHON_SCALARS[result or c.scalar]} | None",
                    )
                    for c in columns
                ],
                description=f"`{function}` of each column over the matching rows "
                f"{'(nulls aside)' if counts else '(null: none has a value)'}.",
            )
        fields.append(b.field(function, values))
    if group:
        b.define(f"{name}Group", fields, description=f"A group of {name} rows and aggregates.")
    else:
        b.define(f"{name}Aggregates", fields, description=f"Aggregates over {name} rows.")


def _define_groups(b: _Builder, model: ModelInfo) -> None:
    """`XGroupBy` (a column, or a date's or time's truncation), `XGroupKeys`, `XGroup`."""
    name = model.type_name
    choices = model.group_choices()
    values = enum.Enum(f"{name}GroupBy", {choice: choice for choice in choices})  # type: ignore[misc]
    values.__module__ = b.module.__name__
    b.ns[values.__name__] = strawberry.enum(
        values,
        name=values.__name__,
        description=f"A value to group {name} rows by: a column, or a date or time truncated "
        "(in UTC) to its hour, day, week (from Monday), month or year.",
    )
    keyed = {column.field: column for column, _ in choices.values()}
    b.define(
        f"{name}GroupKeys",
        [b.field(c.field, f"{_annotation(c)} | None") for c in keyed.values()],
        description="The values the group's rows share; null for a column not grouped by.",
    )
    _define_aggregates(b, model, group=True)
    _define_having(b, model)


def _define_having(b: _Builder, model: ModelInfo) -> None:
    """`XGroupHaving`: conditions on a group's aggregates, each with its value's filter."""
    name = model.type_name
    fields = [b.field("count", "IntFilter | None", default=UNSET, description="Its rows.")]
    for function, (_, result) in AGGREGATE_FUNCTIONS.items():
        columns = model.aggregated(function)
        if not columns:
            continue
        type_name = f"{name}{function[:1].upper()}{function[1:]}Having"
        b.define(
            type_name,
            [
                b.field(c.field, f"{result or c.scalar}Filter | None", default=UNSET)
                for c in columns
            ],
            kind="input",
            description=f"Conditions on `{function}` of {name} columns over a group's rows.",
        )
        fields.append(b.field(function, f"{type_name} | None", default=UNSET))
    b.define(
        f"{name}GroupHaving",
        fields,
        kind="input",
        description="Which groups to return, by their aggregates; all given conditions must hold.",
    )


def _define_aggregates_order(b: _Builder, model: ModelInfo) -> None:
    """How a parent sorts by an aggregate over its one-to-many rows of this model."""
    name = model.type_name
    fields = [b.field("count", "SortDirection | None", default=UNSET, description="Row count.")]
    for function in AGGREGATE_FUNCTIONS:
        columns = model.aggregated(function)
        if not columns:
            continue
        type_name = f"{name}{function[:1].upper()}{function[1:]}OrderBy"
        b.define(
            type_name,
            [b.field(c.field, "SortDirection | None", default=UNSET) for c in columns],
            kind="input",
            one_of=True,
            description=f"`{function}` of one {name} column"
            f"{'' if AGGREGATE_FUNCTIONS[function][1] == 'Int' else ' (null: none has a value)'}.",
        )
        fields.append(b.field(function, f"{type_name} | None", default=UNSET))
    b.define(
        f"{name}AggregatesOrderBy",
        fields,
        kind="input",
        one_of=True,
        description=f"One aggregate over {name} rows to sort by: over a row's related "
        f"{name} rows, or over a group's.",
    )


def _define_enums(b: _Builder, catalog: Catalog) -> None:
    """A GraphQL enum per enum column type (shared by columns of the same type), whose values
    are the column's as PostgreSQL stores them, with a filter input of its own."""
    defined: dict[str, tuple[str, ...]] = {}
    for model in catalog:
        for column in model.columns.values():
            if not column.labels:
                continue
            name = column.scalar
            if name in defined:
                if defined[name] != column.labels:
                    raise TypeError(f"two enums named {name} with different values")
                continue
            defined[name] = column.labels
            values = enum.Enum(name, {label: label for label in column.labels})  # type: ignore[misc]
            values.__module__ = b.module.__name__
            description = class_doc(column.enum_class) if column.enum_class else None
            b.ns[name] = strawberry.enum(values, name=name, description=description)
            _define_scalar_filter(b, name, name, _ENUM_OPERATORS)


def _define_scalar_filter(
    b: _Builder, scalar: str, py: str, operators: tuple[str, ...], what: str | None = None
) -> None:
    fields = []
    for op in operators:
        if scalar == "JSON" and op in _JSON_KEY_TESTS:
            type_, doc = _JSON_KEY_TESTS[op]
            fields.append(b.field(op, type_, default=UNSET, description=doc))
            continue
        if op in ("in", "nin"):
            type_ = f"list[{py}] | None"
        elif op == "isNull":
            type_ = "bool | None"
        else:
            type_ = f"{py} | None"
        fields.append(b.field(op, type_, default=UNSET))
    b.define(
        f"{scalar}Filter",
        fields,
        kind="input",
        description=f"Conditions on {what or f'a {scalar} column'}; all given conditions must "
        "hold.",
    )


def _define_model_types(
    b: _Builder, catalog: Catalog, model: ModelInfo, *, federation: bool
) -> None:
    name = model.type_name
    fields = []
    if model.keyed_by_one:  # a Node: its global id names its one key
        fields.append(
            b.field("nodeId", "strawberry.ID", description="Global id, for `node(nodeId:)`.")
        )
    for column in model.columns.values():
        fields.append(
            b.field(
                column.field,
                _output_type(column),
                description=column.description,
                deprecation=column.deprecation,
            )
        )
    for column in model.computed_calls.values():
        fields.append(
            b.field(column.field, _output_type(column), args=_function_arguments(column.arguments))
        )
    for rel in model.relations.values():
        target = catalog[rel.target]
        if rel.to_many:
            fields.append(
                b.field(
                    rel.field,
                    f"{target.type_name}Connection",
                    args=connection_args(target),
                    description=_relation_description(model, rel),
                )
            )
        else:
            fields.append(
                b.field(
                    rel.field,
                    f"{target.type_name} | None",
                    description=_relation_description(model, rel),
                )
            )
    for field_name, (target_name, function) in model.computed_relations.items():
        args = {**_function_arguments(function.arguments), **connection_args(catalog[target_name])}
        fields.append(
            b.field(
                field_name,
                f"{target_name}Connection",
                args=args,
                description=f"The {target_name} rows the SQL function "
                f"{function.function.name} returns for this {name}, of those visible to the "
                "caller.",
            )
        )
    b.ns["strawberry"] = strawberry
    # A subgraph's entity: a router names its rows by their primary key (`_entities`).
    key = Key(fields=FieldSet(" ".join(c.field for c in model.key)))
    b.define(
        name,
        fields,
        bases=(Node,) if model.keyed_by_one else (),
        description=model.description or f"A row of {model.table.fullname}.",
        directives=(key,) if federation else (),
    )

    b.define(
        f"{name}Edge",
        [b.field("cursor", "str"), b.field("node", name)],
        description=f"A {name} with its cursor.",
    )
    b.define(
        f"{name}Connection",
        [
            b.field("edges", f"list[{name}Edge]"),
            b.field("nodes", f"list[{name}]"),
            b.field("pageInfo", "PageInfo"),
            b.field("totalCount", "int", description="All matching rows, counted when asked."),
            b.field(
                "aggregates",
                f"{name}Aggregates",
                description="Over all matching rows (not only this page), computed when asked.",
            ),
            b.field(
                "groupedAggregates",
                f"list[{name}Group]",
                args={
                    "groupBy": (f"list[{name}GroupBy]", UNSET),
                    "having": (f"{name}GroupHaving | None", UNSET),
                    "orderBy": (f"list[{name}AggregatesOrderBy] | None", UNSET),
                    "first": ("int | None", UNSET),
                },
                description="All matching rows (not only this page) grouped by the values "
                "of `groupBy`, with aggregates per group; the groups `having` allows, sorted "
                "by `orderBy`'s "
                "aggregates, then by their keys (nulls last), the first `first` of them "
                "(default and most: as for a page).",
            ),
        ],
        description=f"A page of {name} rows.",
    )
    _define_aggregates(b, model)
    _define_groups(b, model)

    filter_fields = [
        b.field(c.field, f"{_filter_type(c)} | None", default=UNSET, deprecation=c.deprecation)
        for c in model.columns.values()
        if filter_operators(c)
    ]
    for rel in model.relations.values():
        # The related rows the caller can see (the sub-select runs under RLS like any read).
        if rel.to_many:
            type_, text = f"{rel.target}ListFilter", f"Conditions on its {rel.field}."
        else:
            type_, text = f"{rel.target}Filter", f"Its {rel.field} exists and matches."
        filter_fields.append(b.field(rel.field, f"{type_} | None", default=UNSET, description=text))
    filter_fields += [
        b.field("and", f"list[{name}Filter] | None", default=UNSET),
        b.field("or", f"list[{name}Filter] | None", default=UNSET),
        b.field("not", f"{name}Filter | None", default=UNSET),
    ]
    b.define(
        f"{name}Filter",
        filter_fields,
        kind="input",
        description=f"Which {name} rows to return; all given conditions must hold.",
    )
    b.define(
        f"{name}ListFilter",
        [
            b.field(quantifier, f"{name}Filter | None", default=UNSET, description=text)
            for quantifier, text in (
                ("some", f"At least one related {name} matches."),
                ("every", f"Every related {name} matches (true when there is none)."),
                ("none", f"No related {name} matches."),
            )
        ]
        + [
            b.field(
                "count",
                "IntFilter | None",
                default=UNSET,
                description=f"How many related {name} rows the caller can see.",
            )
        ],
        kind="input",
        description=f"Conditions on a list of related {name} rows, those the caller can see.",
    )
    order_fields = [
        b.field(c.field, "SortDirection | None", default=UNSET, deprecation=c.deprecation)
        for c in model.columns.values()
        if c.orderable
    ]
    for rel in model.relations.values():
        if rel.to_many:
            type_, text = (
                f"{rel.target}AggregatesOrderBy",
                f"By an aggregate of its {rel.field} (those the caller can see).",
            )
        else:
            type_, text = (
                f"{rel.target}OrderBy",
                f"By a value of its {rel.field} (null when there is none the caller can see).",
            )
        order_fields.append(b.field(rel.field, f"{type_} | None", default=UNSET, description=text))
    b.define(
        f"{name}OrderBy",
        order_fields,
        kind="input",
        one_of=True,
        description="One sort key; the primary key is always appended as the tie-breaker.",
    )
    _define_aggregates_order(b, model)


def _mutation_fields(b: _Builder, catalog: Catalog, model: ModelInfo) -> list[StrawberryField]:
    if model.create_model is None:
        return []
    name = model.type_name
    pk = model.primary_key
    pk_type = _annotation(pk)
    fields = []
    b.define(
        f"{name}CreateInput",
        _input_fields(b, model, model.create_model, partial=False)
        + _nested_fields(b, catalog, model),
        kind="input",
        description=f"A new {name} (from {model.create_model.__name__}).",
    )
    names = model.mutation_names
    fields.append(b.field(names["create"], name, args={"input": (f"{name}CreateInput", UNSET)}))
    fields.append(
        b.field(
            names["create_many"],
            f"list[{name}]",
            args={"inputs": (f"list[{name}CreateInput]", UNSET)},
            description=f"Several new {name} rows in one statement, returned in the inputs' "
            "order; if one is refused, none is written.",
        )
    )
    if "upsert" in names:
        fields += _upsert_fields(b, model)
    if model.update_model is not None:
        b.define(
            f"{name}UpdateInput",
            _input_fields(b, model, model.update_model, partial=True),
            kind="input",
            description=f"Changes to a {name}; an absent field stays as it is.",
        )
        changes: dict[str, tuple[Any, ...]] = {"input": (f"{name}UpdateInput", UNSET)}
        changes |= _adjustment_args(b, model)
        if "update" in names:
            fields.append(
                b.field(
                    names["update"],
                    f"{name} | None",
                    args={pk.field: (pk_type, UNSET), **changes},
                    description="The updated row, or null when no visible row has this id.",
                )
            )
        fields.append(
            b.field(
                names["update_many"],
                f"list[{name}]",
                args={"filter": (f"{name}Filter", UNSET), **changes},
                description=_MANY.format(verb="updated", name=name),
            )
        )
    if "delete" in names:
        fields.append(
            b.field(
                names["delete"],
                f"{name} | None",
                args={pk.field: (pk_type, UNSET)},
                description="The deleted row, or null when no visible row had this id.",
            )
        )
    for field_name, (kind, columns) in model.writes_by_key.items():
        args = {c.field: (_annotation(c), UNSET) for c in columns}
        if kind == "update":
            args["input"] = (f"{name}UpdateInput", UNSET)
            args |= _adjustment_args(b, model)
        fields.append(
            b.field(
                field_name,
                f"{name} | None",
                args=args,
                description=f"The {kind}d row, or null when no visible row has this "
                + (f"{columns[0].field} (unique)." if len(columns) == 1 else "key."),
            )
        )
    fields.append(
        b.field(
            names["delete_many"],
            f"list[{name}]",
            args={"filter": (f"{name}Filter", UNSET)},
            description=_MANY.format(verb="deleted", name=name),
        )
    )
    return fields


# The input types of ADJUSTMENTS (catalog.py): type name suffix, description.
_ADJUSTMENT_INPUTS = {
    "increment": (
        "IncrementInput",
        "Amounts to add to number columns (negative ones subtract), in the update's statement: "
        "concurrent increments all count. A null column stays null.",
    ),
    "append": (
        "AppendInput",
        "Elements to add at the end of array columns, and keys to merge into JSONB columns "
        "(PostgreSQL's `||`: a key given replaces the one there; a JSON array's elements are "
        "appended), in the update's statement: concurrent appends all count. A null column "
        "takes the value given.",
    ),
    "remove": (
        "RemoveInput",
        "Elements to take out of array columns (every one equal to one given; the others keep "
        "their order), and keys to take out of JSONB columns (PostgreSQL's `-`; of a JSON "
        "array, its strings equal to one given), in the update's statement. A null column "
        "stays null.",
    ),
}


def _adjustment_args(b: _Builder, model: ModelInfo) -> dict[str, tuple[Any, ...]]:
    """An update's arguments besides `input` (`increment`, `append`, `remove`), for the
    columns they apply to; their input types defined once."""
    args: dict[str, tuple[Any, ...]] = {}
    for adjustment in ADJUSTMENTS:
        columns = model.adjustable(adjustment)
        if not columns:
            continue
        suffix, description = _ADJUSTMENT_INPUTS[adjustment]
        type_name = f"{model.type_name}{suffix}"
        if type_name not in b.ns:
            b.define(
                type_name,
                [
                    b.field(c.field, f"{_adjustment_type(adjustment, c)} | None", default=UNSET)
                    for c in columns
                ],
                kind="input",
                description=description,
            )
        args[adjustment] = (f"{type_name} | None", UNSET)
    return args


def _adjustment_type(adjustment: str, column: ColumnInfo) -> str:
    """What an adjustment takes for a column: its own type, but for a JSONB column's
    `remove`, which takes keys."""
    if adjustment == "remove" and not column.array:
        return "list[str]"
    return _annotation(column)


def _mutation_function_fields(b: _Builder, model: ModelInfo) -> list[StrawberryField]:
    return [
        _function_value_field(b, function, "")
        if function.returns is not None
        else b.field(
            function.field,
            f"list[{model.type_name}]",
            args=_function_arguments(function.arguments),
            description=f"Calls the SQL function {function.function.name} as the caller: the "
            f"{model.type_name} rows it returns, in its order (at most a page of them).",
        )
        for function in model.mutation_functions
    ]


def _function_value_field(b: _Builder, function: RootFunction, then: str) -> StrawberryField:
    assert function.returns is not None
    return b.field(
        function.field,
        f"{_annotation(function.returns)} | None",
        args=_function_arguments(function.arguments),
        description=f"What the SQL function {function.function.name} returns, called as the "
        "caller." + then,
    )


def _upsert_fields(b: _Builder, model: ModelInfo) -> list[StrawberryField]:
    name = model.type_name
    keys = model.upsert_keys
    values = enum.Enum(  # type: ignore[misc]
        f"{name}UniqueKey", {enum_name(c): enum_name(c) for c in keys}
    )
    values.__module__ = b.module.__name__
    b.ns[values.__name__] = strawberry.enum(
        values,
        name=values.__name__,
        description=f"A unique column of {name} that an upsert finds an existing row by.",
    )
    key_arg = (values.__name__, next(iter(values)))
    assert model.update_model is not None  # an upsert updates what an update may
    what = (
        "a row has the input's `onConflict` value, that row updated instead: each column "
        f"{model.update_model.__name__} may change takes the input's value (its default when "
        "absent), the others keep theirs"
    )
    names = model.mutation_names
    return [
        b.field(
            names["upsert"],
            name,
            args={"input": (f"{name}CreateInput", UNSET), "onConflict": key_arg},
            description=f"A new {name}; or, when {what}. Returns the row either way.",
        ),
        b.field(
            names["upsert_many"],
            f"list[{name}]",
            args={"inputs": (f"list[{name}CreateInput]", UNSET), "onConflict": key_arg},
            description=f"Several {name} rows in one statement, each new or, when {what}; "
            "returned in the inputs' order. Two inputs with the same key are refused, and if "
            "one is refused, none is written.",
        ),
    ]


_MANY = (
    "Every {name} row the filter matches that the caller may change, {verb} in one statement "
    "and returned in primary key order (`filter: {{}}` matches all). At most MAX_PAGE_SIZE "
    "rows: when more match, nothing changes and the error is LIMIT_EXCEEDED."
)


def _input_fields(
    b: _Builder,
    model: ModelInfo,
    shape: type[BaseModel],
    *,
    partial: bool,
    without: set[str] | frozenset[str] = frozenset(),
) -> list[StrawberryField]:
    fields = []
    for py_name in api_fields(shape):
        if py_name in without:
            continue
        info = shape.model_fields[py_name]
        column = model.column(py_name)
        scalar = _annotation(column)
        required = info.is_required() and not partial
        type_ = scalar if required else f"{scalar} | None"
        default: Any = UNSET
        if not partial and not info.is_required() and info.default not in (None, PydanticUndefined):
            default = info.default
            if column.labels:
                default = b.ns[column.scalar](column.label(default))
        docs = field_docs(info)
        fields.append(
            b.field(
                camel(py_name),
                type_,
                default=default,
                description=docs["description"] or column.description,
                # A field the client must send cannot be deprecated (GraphQL forbids it).
                deprecation=None if required else docs["deprecation"] or column.deprecation,
            )
        )
    return fields


def _relation_description(model: ModelInfo, rel: RelationInfo) -> str:
    """What a relation field holds, from its join."""
    if rel.link is not None:
        return (
            f"The {rel.target} rows linked to this {model.type_name} in {rel.link.table}, "
            "those the caller can see."
        ).replace('"', "")
    ours = ", ".join(camel(own) for own, _ in rel.pairs)
    theirs = ", ".join(camel(other) for _, other in rel.pairs)
    if rel.to_many:
        return (
            f"The {rel.target} rows whose {theirs} is this row's {ours}, those the caller can see."
        )
    return (
        f"The {rel.target} whose {theirs} is this row's {ours}; null if the caller cannot see it."
    )


def _nested_fields(b: _Builder, catalog: Catalog, model: ModelInfo) -> list[StrawberryField]:
    """A create input's lists of related rows created with it (`comments: [{body: ...}]`),
    each of the related model's create input without the foreign key, and with its own."""
    fields = []
    for field_name, rel in catalog.nested_creates(model).items():
        child = catalog[rel.target]
        assert child.create_model is not None
        type_name = f"{model.type_name}{field_name[:1].upper()}{field_name[1:]}CreateInput"
        if type_name not in b.ns:
            b.ns[type_name] = None  # defined below; a relation back here refers to it by name
            foreign = {theirs for _, theirs in rel.pairs}
            own = _input_fields(b, child, child.create_model, partial=False, without=foreign)
            b.define(
                type_name,
                own + _nested_fields(b, catalog, child),
                kind="input",
                description=f"A new {child.type_name} among a new {model.type_name}'s "
                f"{field_name}: its {', '.join(camel(c) for c in sorted(foreign))} from it.",
            )
        fields.append(
            b.field(
                field_name,
                f"list[{type_name}] | None",
                description=f"{child.type_name} rows created with it, in the same transaction.",
            )
        )
    return fields


def _output_type(column: ColumnInfo) -> str:
    scalar = _annotation(column)
    # Private columns read as null for everyone but the row's own user.
    return f"{scalar} | None" if column.nullable or column.private else scalar
