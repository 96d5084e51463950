"""The table models' metadata, read once: columns, keys, relations and Create/Update classes.

Everything the API generates (types, inputs, SQL) is derived from here; nothing below this
module looks at a model class directly.
"""

from __future__ import annotations

import enum
import importlib
import inspect
import re
import sys
import types
import typing
import uuid
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from graphql import DEFAULT_DEPRECATION_REASON
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from sqlalchemy import ARRAY, JSON, Column, DateTime, Enum, Table, UniqueConstraint
from sqlalchemy.orm import Mapper, RelationshipDirection, configure_mappers
from sqlmodel import SQLModel

# A column whose default is this is filled with the caller's id (models/columns.py owner_id).
_CALLER_ID = "auth.uid()"

# The GraphQL scalar for each Python type a column may map to.
_SCALARS: dict[type, str] = {
    uuid.UUID: "UUID",
    datetime: "DateTime",
    date: "Date",
    str: "String",
    bool: "Boolean",
    int: "Int",
    float: "Float",
    Decimal: "Float",
}


# Aggregate functions a connection offers over all its matching rows: the column scalars each
# takes (ENUMS: every enum column), and the scalar of its result (None: the column's own; Int:
# a count, never null).
ENUMS = "enum"
AGGREGATE_FUNCTIONS: dict[str, tuple[frozenset[str], str | None]] = {
    "min": (frozenset({"String", "Int", "Float", "DateTime", "Date"}), None),
    "max": (frozenset({"String", "Int", "Float", "DateTime", "Date"}), None),
    "sum": (frozenset({"Int", "Float"}), "Float"),  # Float: a sum of Ints outgrows 32 bits
    "avg": (frozenset({"Int", "Float"}), "Float"),
    # how many different values (nulls aside): distinct commenters, days with posts
    "distinctCount": (
        frozenset({"String", "Int", "Float", "DateTime", "Date", "UUID", "Boolean", ENUMS}),
        "Int",
    ),
}


# String filters that match the given text as it is (a search box's words, `50%` finding
# "50%"), as LIKE patterns around it: (before, after, operator).
TEXT_MATCHES: dict[str, tuple[str, str, str]] = {
    "includes": ("%", "%", "LIKE"),
    "includesInsensitive": ("%", "%", "ILIKE"),
    "startsWithInsensitive": ("", "%", "ILIKE"),
    "endsWith": ("%", "", "LIKE"),
    "endsWithInsensitive": ("%", "", "ILIKE"),
}


# What an update may do to a column besides set it, as Hasura's `_inc` and `_append`, each an
# argument beside `input` (see ModelInfo.adjustable, and sql.py's `_sets` for how).
ADJUSTMENTS = ("increment", "append", "remove")


def aggregate_type(type_name: str, function: str) -> str:
    """The GraphQL type of one aggregate function's values, e.g. PostMaxAggregates."""
    return f"{type_name}{function[:1].upper()}{function[1:]}Aggregates"


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def lower_first(name: str) -> str:
    return name[:1].lower() + name[1:]


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _by(column: ColumnInfo) -> str:
    """How a root field names the unique column it finds a row by: `ByCode`."""
    return f"By{column.field[:1].upper()}{column.field[1:]}"


def enum_name(column: ColumnInfo) -> str:
    """A column as a value of a generated enum (`XUniqueKey`, `XGroupBy`): `postId` -> POST_ID."""
    return snake(column.field).upper()


# What a date or time may be truncated to when rows are grouped by it (PostgreSQL's date_trunc).
TRUNCATIONS: dict[str, tuple[str, ...]] = {
    "DateTime": ("hour", "day", "week", "month", "year"),
    "Date": ("week", "month", "year"),
}


@dataclass(frozen=True)
class ColumnInfo:
    name: str  # in the database
    field: str  # in GraphQL
    python_type: type
    scalar: str  # GraphQL scalar name
    sql_type: str  # for casts of bound parameters, e.g. "uuid", "timestamptz"
    nullable: bool
    primary_key: bool
    private: bool  # only the row's own user may read it (enforced by PostgreSQL)
    touch_on_update: bool  # set to now() by every update (`onupdate` in the model)
    from_caller: bool = False  # filled by its default with the caller's id (auth.uid())
    # An enum column: its values as PostgreSQL stores them (the GraphQL enum's values), and
    # the model's Python enum, whose members the model's pydantic classes take.
    labels: tuple[str, ...] = ()
    enum_class: type[enum.Enum] | None = None
    array: bool = False  # a PostgreSQL array of `scalar` values
    # A computed column: the SQL function of the row that gives its value (`__computed_columns__`).
    computed: SqlFunction | None = None
    # A computed column's arguments besides the row (`searchRank(query:)`), in its order.
    arguments: tuple[ColumnInfo, ...] = ()
    # Documentation for the schema: see `field_docs`.
    description: str | None = None
    deprecation: str | None = None  # why clients should stop using it; None: they need not

    @property
    def orderable(self) -> bool:
        """Sortable and comparable as one value (not JSON, not an array)."""
        return self.scalar != "JSON" and not self.array

    def label(self, value: Any) -> Any:
        """A member of the model's enum as PostgreSQL stores it; other values unchanged."""
        if self.enum_class is not None and isinstance(value, self.enum_class):
            return self.labels[list(self.enum_class).index(value)]
        return value

    def member(self, value: Any) -> Any:
        """A stored enum value as the member of the model's enum; other values unchanged."""
        if self.enum_class is None or isinstance(value, self.enum_class):
            return value
        # a variable arrives as a member of the GraphQL enum, whose values are the labels
        label = value.value if isinstance(value, enum.Enum) else value
        if isinstance(label, str) and label in self.labels:
            return list(self.enum_class)[self.labels.index(label)]
        return value


@dataclass(frozen=True)
class RootFunction:
    """A root field answered by a SQL function that returns a set of the model's rows: a query
    (`__query_functions__`: `searchPosts(query:)` is a connection over `search_posts($1)`) or a
    mutation (`__mutation_functions__`: `publishPosts(ids:)` the rows `publish_posts($1)`
    returns); or one value of a column type (`returns`: `unreadCount: Int`)."""

    field: str  # searchPosts
    function: SqlFunction
    arguments: tuple[ColumnInfo, ...]  # in the function's order; nullable ones optional
    # A query function's score of each row it returns, `rank(row, arguments...)`: its
    # connection's order when the client gives none, best first (`__query_function_ranks__`).
    rank: SqlFunction | None = None
    returns: ColumnInfo | None = None  # its value's type; None: the model's rows


@dataclass(frozen=True)
class SqlFunction:
    """A function a model names (computed columns, query functions), which a migration makes."""

    schema: str | None  # None: the table's schema is the search path's (public)
    name: str
    declared_by: str  # "Post.__query_functions__"

    @property
    def sql_name(self) -> str:
        schema = f'"{self.schema}".' if self.schema else ""
        return f'{schema}"{self.name}"'


@dataclass(frozen=True)
class Link:
    """The link table of a many-to-many relation (SQLModel's `link_model`)."""

    table: str  # as SQL, quoted
    local: tuple[tuple[str, str], ...]  # (column of this table, column of the link table)
    remote: tuple[tuple[str, str], ...]  # (column of the related table, column of the link)


@dataclass(frozen=True)
class RelationInfo:
    name: str  # attribute on the model
    field: str  # in GraphQL
    target: str  # type name of the related model
    to_many: bool
    # pairs of (column on this table, column on the target table); none through a link table
    pairs: tuple[tuple[str, str], ...]
    link: Link | None = None


@dataclass
class ModelInfo:
    model: type[SQLModel]
    table: Table
    type_name: str  # Post
    single: str  # post
    plural: str  # posts
    columns: dict[str, ColumnInfo]  # by GraphQL field name
    primary_key: ColumnInfo  # the first column of `key`
    key: tuple[ColumnInfo, ...]  # the primary key's columns
    relations: dict[str, RelationInfo] = field(default_factory=dict)
    description: str | None = None  # the model's docstring, or its table's comment
    create_model: type[BaseModel] | None = None
    update_model: type[BaseModel] | None = None
    # columns unique on their own (besides the primary key): each gets a root lookup
    unique: tuple[ColumnInfo, ...] = ()
    query_functions: tuple[RootFunction, ...] = ()
    mutation_functions: tuple[RootFunction, ...] = ()
    # computed columns that take arguments, by field name: selected only (not in `columns`,
    # so never filtered, ordered or aggregated, which would need their arguments)
    computed_calls: dict[str, ColumnInfo] = field(default_factory=dict)
    # computed relations, by field name: (the type of their rows, the function of this row)
    computed_relations: dict[str, tuple[str, RootFunction]] = field(default_factory=dict)

    @property
    def lookups(self) -> dict[str, tuple[ColumnInfo, ...]]:
        """Root fields that find one row by a unique column, `ticketByCode(code:)`, or, for a
        model keyed by several columns (a link table), by all of them:
        `postTopicByPostIdAndTopicId(postId:, topicId:)`."""
        found: dict[str, tuple[ColumnInfo, ...]] = {
            f"{self.single}{_by(c)}": (c,) for c in self.unique
        }
        if not self.keyed_by_one:
            by = "And".join(_by(c).removeprefix("By") for c in self.key)
            found[f"{self.single}By{by}"] = self.key
        return found

    @property
    def keyed_by_one(self) -> bool:
        """A one-column primary key: the model's rows are Nodes, found by it (`post(id:)`,
        `updatePost(id:)`); rows keyed by several columns (a link table's) are reached
        through connections and filters only."""
        return len(self.key) == 1

    @property
    def upsert_keys(self) -> tuple[ColumnInfo, ...]:
        """The unique columns (the primary key first) an upsert may find the existing row by:
        those a create's input sets, and an owner column filled with the caller's id (one row
        per user: "my settings"). None without an update class: an upsert updates what an
        update may."""
        if self.create_model is None or self.update_model is None:
            return ()
        given = api_fields(self.create_model)
        keys = ((self.primary_key,) if self.keyed_by_one else ()) + self.unique
        return tuple(c for c in keys if c.name in given or c.from_caller)

    @property
    def mutation_names(self) -> dict[str, str]:
        """Each write's root field: createPost, createPosts (many rows), updatePost, ..."""
        plural = self.plural[:1].upper() + self.plural[1:]
        names = {
            "create": f"create{self.type_name}",
            "create_many": f"create{plural}",
            "update": f"update{self.type_name}",
            "update_many": f"update{plural}",
            "delete": f"delete{self.type_name}",
            "delete_many": f"delete{plural}",
        }
        if self.upsert_keys:
            names["upsert"] = f"upsert{self.type_name}"
            names["upsert_many"] = f"upsert{plural}"
        if not self.keyed_by_one:  # no id to name one row by
            del names["update"], names["delete"]
        return names

    def adjustable(self, adjustment: str) -> tuple[ColumnInfo, ...]:
        """The columns an update may change that it may also change by one of ADJUSTMENTS
        rather than set: `increment: {views: 1}` adds to number columns, `append: {labels:
        ["x"]}` to arrays and JSONB objects and `remove: {labels: ["x"]}` takes out of them,
        atomically in PostgreSQL."""
        if self.update_model is None:
            return ()
        columns = (self.column(name) for name in api_fields(self.update_model))
        if adjustment == "increment":
            return tuple(c for c in columns if c.scalar in ("Int", "Float") and not c.array)
        return tuple(c for c in columns if c.array or c.sql_type == "jsonb")

    @property
    def writes_by_key(self) -> dict[str, tuple[str, tuple[ColumnInfo, ...]]]:
        """Updates and deletes of the one row a lookup names, beside those by id: by a unique
        column, `updateTicketByCode(code:, input:)`, `deleteTicketByCode(code:)`, or by all the
        key columns of a link table, `deletePostTopicByPostIdAndTopicId(postId:, topicId:)`:
        kind and columns by root field name."""
        if self.create_model is None:  # no writes at all
            return {}
        writes: dict[str, tuple[str, tuple[ColumnInfo, ...]]] = {}
        for lookup, columns in self.lookups.items():
            by = lookup.removeprefix(self.single)  # ByCode, ByPostIdAndTopicId
            if self.update_model is not None:
                writes[f"update{self.type_name}{by}"] = ("update", columns)
            writes[f"delete{self.type_name}{by}"] = ("delete", columns)
        return writes

    @property
    def qualified_table(self) -> str:
        return _qualified(self.table)

    @property
    def read_from(self) -> str:
        """What reads select from: the table, or the view a model names for reading.

        A view lets PostgreSQL decide what each caller sees of a table that the API roles
        may not read directly (auth.users on Supabase; users' private emails).
        """
        view = getattr(self.model, "__read_view__", None)
        if view is None:
            return self.qualified_table
        return ".".join(f'"{part}"' for part in view.split("."))

    @property
    def has_computed(self) -> bool:
        """Does anything the model's rows answer call a function of the whole row?"""
        return (
            bool(self.computed_calls)
            or bool(self.computed_relations)
            or any(c.computed is not None for c in self.columns.values())
        )

    @property
    def every_row_visible(self) -> bool:
        """Does every caller see every row (so a foreign key alone proves the row is there)?"""
        return bool(getattr(self.model, "__every_row_visible__", False))

    def group_choices(self) -> dict[str, tuple[ColumnInfo, str | None]]:
        """What rows may be grouped by, by `XGroupBy` value: each orderable column, and each
        date or time truncated (CREATED_AT_TRUNCATED_TO_DAY: the column and "day")."""
        choices: dict[str, tuple[ColumnInfo, str | None]] = {}
        for column in self.columns.values():
            if not column.orderable:
                continue
            name = enum_name(column)
            choices[name] = (column, None)
            for unit in TRUNCATIONS.get(column.scalar, ()):
                choices[f"{name}_TRUNCATED_TO_{unit.upper()}"] = (column, unit)
        return choices

    def aggregated(self, function: str) -> list[ColumnInfo]:
        """The columns an aggregate function takes (a key of AGGREGATE_FUNCTIONS)."""
        scalars = AGGREGATE_FUNCTIONS[function][0]
        return [
            c
            for c in self.columns.values()
            if c.orderable and (c.scalar in scalars or (bool(c.labels) and ENUMS in scalars))
        ]

    def sql_functions(self) -> list[SqlFunction]:
        """The SQL functions the model names: its computed columns' and query functions'."""
        every = [*self.columns.values(), *self.computed_calls.values()]
        computed = [c.computed for c in every if c.computed is not None]
        roots = self.query_functions + self.mutation_functions
        roots += tuple(function for _, function in self.computed_relations.values())
        ranks = [f.rank for f in self.query_functions if f.rank is not None]
        return computed + [f.function for f in roots] + ranks

    def column(self, db_name: str) -> ColumnInfo:
        """A column of the table (never a computed one) by its name there."""
        for info in self.columns.values():
            if info.name == db_name and info.computed is None:
                return info
        raise KeyError(db_name)


class Catalog:
    """All table models by GraphQL type name."""

    def __init__(self, models: list[ModelInfo]) -> None:
        self.models: dict[str, ModelInfo] = {m.type_name: m for m in models}

    def __iter__(self) -> Any:
        return iter(self.models.values())

    def __getitem__(self, type_name: str) -> ModelInfo:
        return self.models[type_name]

    def nested_creates(self, model: ModelInfo) -> dict[str, RelationInfo]:
        """The one-to-many relations whose new rows a create may carry, by input field:
        `createPost(input: {title: "...", comments: [{body: "..."}]})`. Each related row is
        created by the related model's own create class, its foreign key taken from the new
        row. Needs a parent named by one key (its answer is read back by it) and a related
        class that sets the foreign key and something more. A many-to-many relation carries
        rows of its link model, by the link model's create class: `labels: [{labelId}]`."""
        if (
            model.create_model is None
            or not model.keyed_by_one
            or not api_fields(model.create_model)
        ):
            return {}
        nested = {}
        for rel in model.relations.values():
            if not rel.to_many:
                continue
            if rel.link is not None:
                # many-to-many: new rows of the link model, linking to rows that exist
                # (`labels: [{labelId: ...}]`), when the link table is a model of the API
                link = next((m for m in self if m.qualified_table == rel.link.table), None)
                if link is None:
                    continue
                rel = replace(rel, target=link.type_name, pairs=rel.link.local, link=None)
            child = self.models[rel.target].create_model
            if child is None:
                continue
            given = set(api_fields(child))
            foreign = {theirs for _, theirs in rel.pairs}
            if foreign <= given and given - foreign:
                nested[rel.field] = rel
        return nested

    @classmethod
    def from_registry(cls, module: str = "service.models") -> Catalog:
        """Every SQLModel table model imported by `module` (the models package)."""
        importlib.import_module(module)
        configure_mappers()
        mappers = sorted(
            SQLModel._sa_registry.mappers,  # type: ignore[attr-defined]
            key=lambda m: m.class_.__name__,
        )
        served = [m for m in mappers if isinstance(m.local_table, Table)]
        infos = [_model_info(m) for m in served]
        by_class = {info.model: info for info in infos}
        for mapper, info in zip(served, infos, strict=True):
            info.relations = _relations(mapper, by_class)
            info.computed_relations = _computed_relations(info, {i.type_name for i in infos})
        return cls(infos)


def _model_info(mapper: Mapper[Any]) -> ModelInfo:
    model = mapper.class_
    table = mapper.local_table
    assert isinstance(table, Table)
    private: frozenset[str] = getattr(model, "__private_columns__", frozenset())
    columns: dict[str, ColumnInfo] = {}
    # The primary key first: it reads best at the top of each type.
    for column in sorted(table.columns, key=lambda c: not c.primary_key):
        if column.name not in api_fields(model):
            if column.primary_key:
                raise TypeError(f"{model.__name__}.{column.name}: the key cannot be excluded")
            continue
        info = _column_info(model, column, private)
        columns[info.field] = info
    pks = [c for c in columns.values() if c.primary_key]
    if not pks:
        raise TypeError(f"{model.__name__}: the API needs a primary key")
    name = model.__name__
    module = sys.modules[model.__module__]
    unique_names = {c.name for c in table.columns if c.unique}
    keys = [list(c.columns) for c in table.constraints if isinstance(c, UniqueConstraint)]
    # A partial or expression index is unique only for some rows or of some expression: no key.
    keys += [
        list(i.columns)
        for i in table.indexes
        if i.unique
        and i.dialect_options["postgresql"].get("where") is None
        and len(i.expressions) == len(i.columns)
    ]
    unique_names |= {key[0].name for key in keys if len(key) == 1}
    computed_calls: dict[str, ColumnInfo] = {}
    for info in _computed_columns(model, table):
        if info.field in columns:
            raise TypeError(f"{name}.__computed_columns__: {info.name} is a column already")
        (computed_calls if info.arguments else columns)[info.field] = info
    return ModelInfo(
        computed_calls=computed_calls,
        query_functions=_root_functions(model, table, "__query_functions__"),
        mutation_functions=_root_functions(model, table, "__mutation_functions__"),
        unique=tuple(c for c in columns.values() if c.name in unique_names and not c.primary_key),
        model=model,
        table=table,
        type_name=name,
        single=lower_first(name),
        plural=camel(table.name),
        columns=columns,
        primary_key=pks[0],
        key=tuple(pks),
        description=class_doc(model) or table.comment,
        create_model=getattr(module, f"{name}Create", None),
        update_model=getattr(module, f"{name}Update", None),
    )


def _column_info(model: type[SQLModel], column: Column[Any], private: frozenset[str]) -> ColumnInfo:
    common: dict[str, Any] = {
        "name": column.name,
        "field": camel(column.name),
        "nullable": bool(column.nullable),
        "primary_key": bool(column.primary_key),
        "private": column.name in private,
        "touch_on_update": column.onupdate is not None,
        "from_caller": _CALLER_ID in str(getattr(column.server_default, "arg", "")),
        **field_docs(model.model_fields.get(column.name), column.comment),
    }
    if isinstance(column.type, Enum):
        return _enum_column(column.type, common)
    if isinstance(column.type, JSON):  # also PostgreSQL's JSON and JSONB
        sql_type = "jsonb" if column.type.__visit_name__ == "JSONB" else "json"
        return ColumnInfo(python_type=dict, scalar="JSON", sql_type=sql_type, **common)
    if isinstance(column.type, ARRAY):  # also PostgreSQL's
        item = column.type.item_type
        item_python = _python_type(item, None)
        return ColumnInfo(
            python_type=list,
            scalar=_SCALARS[item_python],
            sql_type=_sql_type(item_python, item) + "[]",
            array=True,
            **common,
        )
    python_type = _python_type(column.type, model.model_fields[column.name].annotation)
    return ColumnInfo(
        python_type=python_type,
        scalar=_SCALARS[python_type],
        sql_type=_sql_type(python_type, column.type),
        **common,
    )


def class_doc(cls: type) -> str | None:
    """A class's own docstring (not one it inherits), dedented: a model's or an enum's
    description in the schema."""
    doc = cls.__dict__.get("__doc__")
    return inspect.cleandoc(doc) if isinstance(doc, str) and doc.strip() else None


def field_docs(info: FieldInfo | None, comment: str | None = None) -> dict[str, str | None]:
    """A field's documentation for the schema, as GraphiQL shows it: its `description`
    (`Field(description=...)`), else the column's comment (`sa_column_kwargs={"comment": ...}`,
    which Alembic also puts in the database, where PostGraphile would read it); and why it is
    deprecated, from pydantic's `deprecated` (SQLModel: `schema_extra={"deprecated": "Use
    x."}`)."""
    mark = info.deprecated if info is not None else None
    if mark is None or mark is False:
        deprecation = None
    elif isinstance(mark, str):
        deprecation = mark
    else:  # True, or typing_extensions' @deprecated("...") object
        deprecation = getattr(mark, "message", None) or DEFAULT_DEPRECATION_REASON
    described = info.description if info is not None else None
    return {"description": described or comment, "deprecation": deprecation}


def api_fields(shape: type[BaseModel]) -> list[str]:
    """A model's or input class's fields the API has: all but those it excludes from
    serialization (`Field(exclude=True)`: a token's hash, an internal note), which are never
    read or written through the API."""
    return [name for name, info in shape.model_fields.items() if info.exclude is not True]


def _computed_columns(model: type[SQLModel], table: Table) -> list[ColumnInfo]:
    """A model's `__computed_columns__ = {"word_count": int}`: read-only columns whose values are
    computed by SQL functions of the row, `<table>_<name>(<table>)` in the table's schema, as
    PostGraphile names them (a migration creates the function). They run as the caller, so
    what they read is under Row Level Security too."""
    declared: dict[str, Any] = getattr(model, "__computed_columns__", {})
    if declared and getattr(model, "__read_view__", None):
        raise TypeError(f"{model.__name__}: computed columns need a model read from its table")
    infos = []
    for name, spec in declared.items():
        where = f"{model.__name__}.__computed_columns__[{name!r}]"
        # `(float, {"query": str})`: a function of the row and these arguments
        python_type, arguments = spec if isinstance(spec, tuple) else (spec, {})
        if python_type not in _SCALARS:
            raise TypeError(f"{where}: not a column type")
        infos.append(
            ColumnInfo(
                name=name,
                field=camel(name),
                python_type=python_type,
                scalar=_SCALARS[python_type],
                sql_type=_sql_type(python_type, DateTime(timezone=True)),
                nullable=True,  # a function may return null
                primary_key=False,
                private=False,
                touch_on_update=False,
                computed=SqlFunction(
                    table.schema, f"{table.name}_{name}", f"{model.__name__}.__computed_columns__"
                ),
                arguments=_arguments(where, arguments),
            )
        )
    return infos


def _computed_relations(info: ModelInfo, types: set[str]) -> dict[str, tuple[str, RootFunction]]:
    """A model's `__computed_relations__ = {"similar_posts": "Post"}`: connections over the rows
    a SQL function of the row returns, `<table>_<name>(<table>)` returning `SETOF` the named
    model's table (PostGraphile's computed columns that return sets). `("Post", {"limit":
    int})` adds arguments after the row. The function runs as the caller, its rows under Row
    Level Security; they are paged, filtered and ordered like the named model's."""
    model, table = info.model, info.table
    declared: dict[str, Any] = getattr(model, "__computed_relations__", {})
    if declared and getattr(model, "__read_view__", None):
        raise TypeError(f"{model.__name__}: computed relations need a model read from its table")
    relations = {}
    for name, spec in declared.items():
        where = f"{model.__name__}.__computed_relations__[{name!r}]"
        target, arguments = spec if isinstance(spec, tuple) else (spec, {})
        if target not in types:
            raise TypeError(f"{where}: {target!r} is not a table model's name")
        for argument in arguments:
            if camel(argument) in _CONNECTION_ARGUMENTS:
                raise TypeError(f"{where}[{argument!r}]: a connection's argument has this name")
        field_name = camel(name)
        if field_name in info.columns or field_name in info.relations:
            raise TypeError(f"{where}: {model.__name__} has a field {field_name} already")
        function = SqlFunction(
            table.schema, f"{table.name}_{name}", f"{model.__name__}.__computed_relations__"
        )
        relations[field_name] = (
            target,
            RootFunction(field_name, function, _arguments(where, arguments)),
        )
    return relations


# Arguments a connection has already, which a query function's may not be called.
_CONNECTION_ARGUMENTS = frozenset({"first", "after", "last", "before", "filter", "orderBy"})


def _root_functions(
    model: type[SQLModel], table: Table, attribute: str
) -> tuple[RootFunction, ...]:
    """A model's `__query_functions__ = {"search_posts": {"query": str}}` (or
    `__mutation_functions__`): root fields, each a SQL function in the table's schema (created
    by a migration) taking those arguments in that order and returning `SETOF` the table. The
    function runs as the caller, under Row Level Security. A query's rows are paged, filtered
    and ordered like the table's; a mutation's are returned as a list. An argument typed
    `X | None` is optional: left out, the function gets null. Declared with a column type
    first, `{"unread_count": (int, {"since": datetime})}`, the function returns one value of
    that type (a list: an array), and the field is that value (null when the function gives
    null)."""
    declared: dict[str, Any] = getattr(model, attribute, {})
    if declared and getattr(model, "__read_view__", None):
        raise TypeError(f"{model.__name__}.{attribute}: needs a model read from its table")
    ranks: dict[str, str] = {}
    if attribute == "__query_functions__":
        ranks = getattr(model, "__query_function_ranks__", {})
        for name in set(ranks) - set(declared):
            raise TypeError(f"{model.__name__}.__query_function_ranks__: no query function {name}")
    functions = []
    for name, declaration in declared.items():
        where = f"{model.__name__}.{attribute}[{name!r}]"
        returns = None
        arguments = declaration
        if isinstance(declaration, tuple):  # (the value's type, the arguments)
            result, arguments = declaration
            own = f"{model.__name__}.{attribute}"  # names `name` itself when the type is bad
            returns = replace(_arguments(own, {name: result})[0], nullable=True)
            if name in ranks:
                raise TypeError(f"{where}: a rank orders rows; this function returns a value")
        for argument in arguments:
            if camel(argument) in _CONNECTION_ARGUMENTS:
                raise TypeError(f"{where}[{argument!r}]: a connection's argument has this name")
        infos = _arguments(where, arguments)
        function = SqlFunction(table.schema, name, f"{model.__name__}.{attribute}")
        rank = None
        if name in ranks:
            rank = SqlFunction(
                table.schema, ranks[name], f"{model.__name__}.__query_function_ranks__"
            )
        functions.append(RootFunction(camel(name), function, infos, rank, returns))
    return tuple(functions)


def _arguments(where: str, arguments: dict[str, Any]) -> tuple[ColumnInfo, ...]:
    """A SQL function's arguments as the API takes them, from their Python types: a column
    type, or a list of one (an array: `ids: list[uuid.UUID]` is `uuid[]`); `X | None` is
    optional (left out, the function gets null)."""
    infos = []
    for argument, annotation in arguments.items():
        python_type = annotation
        if typing.get_origin(annotation) in (typing.Union, types.UnionType):
            given = [t for t in typing.get_args(annotation) if t is not type(None)]
            python_type = given[0] if len(given) == 1 else annotation
        array = typing.get_origin(python_type) is list
        item = typing.get_args(python_type)[0] if array else python_type
        if item not in _SCALARS:
            raise TypeError(f"{where}[{argument!r}]: not a column type, nor a list of one")
        # GraphQL's Int is 32 bits: an `integer` fits a function's integer or bigint
        sql_type = "integer" if item is int else _sql_type(item, DateTime(timezone=True))
        infos.append(
            ColumnInfo(
                name=argument,
                field=camel(argument),
                python_type=list if array else item,
                scalar=_SCALARS[item],
                sql_type=f"{sql_type}[]" if array else sql_type,
                nullable=python_type is not annotation,
                primary_key=False,
                private=False,
                touch_on_update=False,
                array=array,
            )
        )
    return tuple(infos)


def _python_type(type_: Any, annotation: Any) -> Any:
    try:
        python_type = type_.python_type
    except NotImplementedError:
        python_type = str
    # SQLModel's AutoString reports `object`; the model's annotation knows better.
    if python_type not in _SCALARS:
        python_type = next((t for t in _SCALARS if annotation is t), str)
    return python_type


_GRAPHQL_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]*")


def _enum_column(type_: Enum, common: dict[str, Any]) -> ColumnInfo:
    labels = tuple(type_.enums)
    bad = [label for label in labels if not _GRAPHQL_NAME.fullmatch(label)]
    if bad:
        raise TypeError(f"{common['name']}: enum values {bad} are not GraphQL names")
    enum_class = type_.enum_class
    graphql_name = (
        enum_class.__name__
        if enum_class
        else "".join(part.capitalize() for part in (type_.name or common["name"]).split("_"))
    )
    if type_.native_enum and type_.name:
        schema = f'"{type_.schema}".' if type_.schema else ""
        sql_type = f'{schema}"{type_.name}"'
    else:
        sql_type = "text"  # a VARCHAR with a CHECK constraint
    return ColumnInfo(
        python_type=str,
        scalar=graphql_name,
        sql_type=sql_type,
        labels=labels,
        enum_class=enum_class,
        **common,
    )


def _sql_type(python_type: type, type_: Any) -> str:
    if python_type is datetime:
        return "timestamptz" if getattr(type_, "timezone", False) else "timestamp"
    return {
        uuid.UUID: "uuid",
        date: "date",
        str: "text",
        bool: "boolean",
        int: "bigint",
        float: "double precision",
        Decimal: "numeric",
    }[python_type]


def _relations(mapper: Mapper[Any], by_class: dict[type, ModelInfo]) -> dict[str, RelationInfo]:
    relations: dict[str, RelationInfo] = {}
    for rel in mapper.relationships:
        target = by_class.get(rel.mapper.class_)
        if target is None:
            continue
        link = None
        if rel.secondary is not None:
            link = Link(
                table=_qualified(rel.secondary),
                local=tuple((own.name, on_link.name) for own, on_link in rel.synchronize_pairs),
                remote=tuple(
                    (theirs.name, on_link.name)
                    for theirs, on_link in rel.secondary_synchronize_pairs or ()
                ),
            )
        relations[camel(rel.key)] = RelationInfo(
            name=rel.key,
            field=camel(rel.key),
            target=target.type_name,
            to_many=rel.direction is not RelationshipDirection.MANYTOONE,
            pairs=() if link else tuple(_fk_pairs(rel)),
            link=link,
        )
    return relations


def _qualified(table: Any) -> str:
    schema = f'"{table.schema}".' if table.schema else ""
    return f'{schema}"{table.name}"'


def _fk_pairs(rel: Any) -> list[tuple[str, str]]:
    """(column on the relation's own table, column on the related table) for each join pair."""
    return [(local.name, remote.name) for local, remote in rel.local_remote_pairs]
