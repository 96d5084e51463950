"""A plan tree → one SQL statement whose single value is the response's `data`, as JSON.

PostgreSQL builds the JSON (json_build_object / json_agg), so Python never decodes rows. Every
relation is a correlated sub-select: many-to-one by primary key, one-to-many as a keyset page
per parent row. Values are bind parameters, passed as text and cast to the column's type.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

import orjson

from service.graphql.catalog import (
    AGGREGATE_FUNCTIONS,
    TEXT_MATCHES,
    Catalog,
    ColumnInfo,
    ModelInfo,
    RelationInfo,
    SqlFunction,
    api_fields,
)
from service.graphql.errors import BadUserInput, LimitExceeded
from service.graphql.inputs import NewRows
from service.graphql.plan import (
    AggregateCount,
    Aggregates,
    AggregateValues,
    BoolOp,
    ByKey,
    ColumnField,
    Compare,
    Connection,
    Cursor,
    EdgeNode,
    Edges,
    EntityLookup,
    GroupedAggregates,
    GroupKeys,
    NodeIdField,
    NodeLookup,
    Nodes,
    ObjectSelection,
    OrderKey,
    PageInfoField,
    Ref,
    RelatedCount,
    RelatedRows,
    RowFunction,
    ToOne,
    TotalCount,
    Typename,
    Variables,
    Viewer,
    Write,
)

Getter = Callable[[Variables], Any]
# What one statement may bind: asyncpg's limit (the protocol counts them in 16 bits).
MAX_BOUND_VALUES = 32767


@dataclass
class Statement:
    sql: str
    params: list[Getter] = field(default_factory=list)
    # validations of arguments that the SQL does not need (a page size beside totalCount alone)
    checks: list[Getter] = field(default_factory=list)

    def bind(self, variables: Variables) -> list[Any]:
        for check in self.checks:
            check(variables)
        return [get(variables) for get in self.params]


def as_text(value: Any) -> str | None:
    """A Python value as the text PostgreSQL parses back into the column's type."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime) and abs(value.utcoffset() or _NO_OFFSET) > _MAX_OFFSET:
        # ISO 8601 (and Python) allow offsets up to 23:59, PostgreSQL up to 15:59:59
        try:
            value = value.astimezone(UTC)
        except OverflowError:
            raise BadUserInput("a date or time is out of range") from None
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(getattr(value, "value", value))


def json_text(value: Any) -> str | None:
    """A JSON column's value as text: any JSON value, strings too, is written as JSON."""
    return None if value is None else orjson.dumps(value, default=str).decode()


def _to_text(column: ColumnInfo) -> Callable[[Any], str | None]:
    # JSON, and an array column's value in a list of rows (createXs): written as JSON
    return json_text if column.scalar == "JSON" or column.array else as_text


def _texts(ref: Getter) -> Getter:
    """A list of values as texts (JSONB keys to remove)."""
    return lambda variables: [str(item) for item in ref(variables)]


def _array_texts(value: Any) -> list[str | None] | None:
    return None if value is None else [as_text(item) for item in value]


_NO_OFFSET = timedelta(0)
_MAX_OFFSET = timedelta(hours=15, minutes=59, seconds=59)


def _join(relation: RelationInfo, related: str, alias: str) -> str:
    """The related table's rows of the row at `alias`: `pairs` are (column of the row's own
    table, column of the related table); a many-to-many relation's pass through its link
    table (each related row once, however many links it has)."""
    if relation.link is not None:
        link, through = relation.link, f"{related}_link"
        on = [f"{through}.{_quote(lc)} = {alias}.{_quote(c)}" for c, lc in link.local]
        on += [f"{through}.{_quote(lc)} = {related}.{_quote(c)}" for c, lc in link.remote]
        return f"EXISTS (SELECT FROM {link.table} {through} WHERE {' AND '.join(on)})"
    return " AND ".join(
        f"{related}.{_quote(remote)} = {alias}.{_quote(local)}" for local, remote in relation.pairs
    )


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# --- global ids and cursors ----------------------------------------------------------------


def encode_node_id(type_name: str, key: str) -> str:
    return base64.b64encode(f"{type_name}:{key}".encode()).decode()


def decode_node_id(catalog: Catalog, value: Any) -> tuple[str, str]:
    try:
        type_name, _, key = base64.b64decode(str(value), validate=True).decode().partition(":")
        model = catalog.models[type_name]
        if not model.keyed_by_one:
            raise KeyError(type_name)  # not a Node: no id of ours names its rows
        return type_name, _check_value(model.primary_key, key)
    except (binascii.Error, UnicodeDecodeError, KeyError, ValueError):
        raise BadUserInput("invalid nodeId", field="nodeId") from None


def entity_keys(catalog: Catalog, representations: Any) -> str:
    """A router's representations (`{"__typename": "Post", "id": ...}`) checked against the
    models, as the JSON list `[["Post", "<id>"], ...]` that `Emitter.entities` reads: each
    type name, then the values of its key's columns in their order, as text."""
    if not isinstance(representations, list):
        raise BadUserInput("representations must be a list", field="representations")
    keys: list[list[str]] = []
    for index, representation in enumerate(representations):
        where = f"representations[{index}]"
        if not isinstance(representation, dict):
            raise BadUserInput(f"{where} must be an object", field="representations")
        type_name = representation.get("__typename")
        model = catalog.models.get(type_name) if isinstance(type_name, str) else None
        if model is None:
            raise BadUserInput(
                f"{where}: __typename must name an entity of this subgraph, not {type_name!r}",
                field="representations",
            )
        entry = [model.type_name]
        for column in model.key:
            value = representation.get(column.field)
            try:
                if value is None or isinstance(value, dict | list | bool):
                    raise ValueError
                entry.append(_check_value(column, value))
            except ValueError:
                raise BadUserInput(
                    f"{where}: {model.type_name}'s key needs a valid {column.field!r}",
                    field="representations",
                ) from None
        keys.append(entry)
    return orjson.dumps(keys).decode()


def _check_value(column: ColumnInfo, value: Any) -> str:
    """Validate a key value from a client-held token (cursor, nodeId) for its column."""
    text = str(value)
    if column.labels and text not in column.labels:
        raise ValueError("not one of the enum's values")
    if column.python_type is uuid.UUID:
        uuid.UUID(text)
    elif column.python_type is datetime:
        datetime.fromisoformat(text)
    elif column.python_type is int:
        int(text)
    elif column.python_type is float:
        float(text)
    elif column.python_type is Decimal and not _finite_number(text):
        raise ValueError("not a number")
    return text


def _finite_number(text: str) -> bool:
    try:
        return Decimal(text).is_finite()
    except ArithmeticError:  # decimal.InvalidOperation: not a number at all
        return False


def _aggregated(part: Any) -> bool:
    """Does this part of `aggregates` call an aggregate function over the rows?"""
    if isinstance(part, AggregateCount):
        return True
    return isinstance(part, AggregateValues) and not all(
        isinstance(v, Typename) for v in part.parts
    )


@lru_cache(maxsize=4096)
def _decode_cursor(cursor: str, signature: str, columns: tuple[ColumnInfo, ...]) -> tuple[Any, ...]:
    try:
        payload = orjson.loads(base64.b64decode(cursor, validate=True))
        if not isinstance(payload, list) or payload[0] != signature:
            raise ValueError("cursor of another ordering")
        values = payload[1:]
        if len(values) != len(columns):
            raise ValueError("wrong length")
        return tuple(_cursor_value(c, v) for c, v in zip(columns, values, strict=True))
    except (binascii.Error, orjson.JSONDecodeError, ValueError, TypeError, IndexError):
        raise BadUserInput(
            "invalid cursor: use a cursor this connection returned, with the same orderBy"
        ) from None


def _cursor_value(column: ColumnInfo, value: Any) -> str | None:
    # As json_build_array wrote it: a number for numeric columns, true/false for booleans, a
    # string for the rest, null only where the column has nulls.
    if value is None:
        if column.nullable:
            return None
        raise ValueError("null for a column without nulls")
    kind = _JSON_KINDS.get(column.python_type, (str,))
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in kind):
        raise ValueError("a value of another type")
    return _check_value(column, value)


_JSON_KINDS: dict[type, tuple[type, ...]] = {
    int: (int,),
    float: (int, float),
    Decimal: (str,),  # see Emitter._cursor_expr
    bool: (bool,),
}


# --- the emitter ---------------------------------------------------------------------------


class Emitter:
    """Renders plan nodes into one statement, collecting its bind parameters."""

    def __init__(self, catalog: Catalog, *, max_page_size: int) -> None:
        self.catalog = catalog
        self.max_page_size = max_page_size
        self.statement = Statement("")
        self._aliases = 0
        # Aliases of page rows, whose whole table row is a column of theirs (see `value`).
        self._whole_rows: dict[str, str] = {}

    def alias(self) -> str:
        self._aliases += 1
        return f"t{self._aliases}"

    def bind(self, getter: Getter, cast: str) -> str:
        if len(self.statement.params) == MAX_BOUND_VALUES:
            raise LimitExceeded(
                f"the operation needs more than {MAX_BOUND_VALUES} values (filter terms, ids, "
                "cursors): split it, or use `in` for lists"
            )
        self.statement.params.append(getter)
        return f"${len(self.statement.params)}::{cast}"

    def bind_value(self, column: ColumnInfo, ref: Getter) -> str:
        if column.array:  # a list, bound as one array of texts, cast item by item
            placeholder = self.bind(lambda v: _array_texts(ref(v)), "text[]")
            return (
                placeholder if column.sql_type == "text[]" else f"{placeholder}::{column.sql_type}"
            )
        text = _to_text(column)
        placeholder = self.bind(lambda v: text(ref(v)), "text")
        return placeholder if column.sql_type == "text" else f"{placeholder}::{column.sql_type}"

    def bind_array(self, column: ColumnInfo, ref: Any) -> str:
        text = _to_text(column)
        placeholder = self.bind(lambda v: [text(x) for x in ref(v) or []], "text[]")
        if column.array or column.sql_type == "text":  # arrays: JSON texts (see `write`)
            return placeholder
        return f"{placeholder}::{column.sql_type}[]"

    def value(self, column: ColumnInfo, alias: str, arguments: tuple[Getter, ...] = ()) -> str:
        """A column's value in the row `alias` names; a computed column's, its function of
        the whole row (which a connection's page carries as `_row`) and of its `arguments`."""
        if column.computed is None:
            return f"{alias}.{_quote(column.name)}"
        row = self._whole_rows.get(alias, alias)
        call = self._call(column.computed, column.arguments, arguments, row)
        # as the model declares it: a function's `real` read back from a cursor as the
        # declared `double precision` would no longer equal itself
        return f"{call}::{column.sql_type}"

    # objects

    def json_object(self, pairs: list[tuple[str, str]]) -> str:
        if len(pairs) <= 50:  # json_build_object takes at most 100 arguments
            args = ", ".join(f"{_literal(k)}, {v}" for k, v in pairs)
            return f"json_build_object({args})"
        columns = ", ".join(f"{v} AS {_quote(k)}" for k, v in pairs)
        return f"(SELECT row_to_json(_wide) FROM (SELECT {columns}) _wide)"

    def object(self, selection: ObjectSelection, alias: str) -> str:
        model = selection.model
        pairs: list[tuple[str, str]] = []
        for f in selection.fields:
            if isinstance(f, ColumnField):
                pairs.append((f.key, self.value(f.column, alias, f.arguments)))
            elif isinstance(f, NodeIdField):
                pk = f"{alias}.{_quote(model.primary_key.name)}::text"
                prefix = _literal(model.type_name + ":")
                pairs.append((f.key, _base64(f"{prefix} || {pk}")))
            elif isinstance(f, Typename):
                pairs.append((f.key, _literal(f.name)))
            elif isinstance(f, ToOne):
                target = self.catalog[f.relation.target]
                by_key = self._to_one_from_key(f, model, target, alias)
                if by_key is not None:
                    pairs.append((f.key, by_key))
                    continue
                inner = self.alias()
                pairs.append(
                    (
                        f.key,
                        f"(SELECT {self.object(f.target, inner)} FROM {target.read_from} "
                        f"{inner} WHERE {_join(f.relation, inner, alias)})",
                    )
                )
            elif isinstance(f, Connection):
                pairs.append((f.key, self.connection(f, alias)))
        return self.json_object(pairs)

    def _to_one_from_key(
        self, f: ToOne, model: ModelInfo, target: ModelInfo, alias: str
    ) -> str | None:
        """`author { id }` straight from the foreign key, without reading the user's row.

        Only when every caller sees every row of the target (so the key proves the row is
        visible) and only the key, the type name or the global id are asked for.
        """
        if not target.every_row_visible or len(f.relation.pairs) != 1:
            return None
        (local, remote), pk = f.relation.pairs[0], target.primary_key
        if remote != pk.name:
            return None
        key = f"{alias}.{_quote(local)}"
        pairs: list[tuple[str, str]] = []
        for field_ in f.target.fields:
            if isinstance(field_, ColumnField) and field_.column is pk:
                pairs.append((field_.key, key))
            elif isinstance(field_, NodeIdField):
                pairs.append(
                    (field_.key, _base64(f"{_literal(target.type_name + ':')} || {key}::text"))
                )
            elif isinstance(field_, Typename):
                pairs.append((field_.key, _literal(field_.name)))
            else:
                return None
        value = self.json_object(pairs)
        if model.column(local).nullable:
            return f"CASE WHEN {key} IS NULL THEN NULL ELSE {value} END"
        return value

    # connections

    def connection(self, c: Connection, parent: str | None) -> str:
        a = self.alias()
        backward = c.page.backward
        size_ref = c.page.last if backward else c.page.first
        assert size_ref is not None
        # A literal LIMIT, checked now: PostgreSQL keeps one plan for the statement (plan.py).
        size = str(self._page_size(size_ref.value, "last" if backward else "first"))
        if not any(isinstance(p, Nodes | Edges | PageInfoField) for p in c.parts):
            # totalCount alone reads no page; its arguments must still be valid
            for bound in (c.page.after, c.page.before):
                if bound is not None:
                    self.statement.checks.append(_cursor_check(bound, c))
            return f"(SELECT {self.json_object(self._count_only(c, parent))})"
        base = self._base_conditions(c, a, parent)
        page_conditions = list(base)
        # The sort keys' values over the table's rows; `sorted_as` reads them back from the
        # page's rows.
        rows, values = self._sorted_rows(c, a, parent)
        related = [i for i, k in enumerate(c.order) if k.derived]
        extra = "".join(f", {values[i]} AS _s{i}" for i in related)
        if c.model.has_computed:
            extra += f", {a} AS _row"  # for computed columns of the page's rows
        sorted_as = [f"{a}._s{i}" if i in related else v for i, v in enumerate(values)]
        if c.page.after is not None:
            page_conditions.append(self._keyset(c, values, c.page.after, after=True))
        if c.page.before is not None:
            page_conditions.append(self._keyset(c, values, c.page.before, after=False))
        order = _order_by(c.order, values, reverse=backward)
        where = " AND ".join(page_conditions) or "true"
        natural = "DESC" if backward else "ASC"
        reverse = "ASC" if backward else "DESC"
        cursor = self._cursor_expr(c, sorted_as)
        if any(isinstance(p, PageInfoField) for p in c.parts):
            # pageInfo needs one row past the page (is there more?) and the rows' positions.
            page_rows = (
                f"SELECT {a}.*{extra}, row_number() OVER (ORDER BY {order}) AS _rn "
                f"FROM {rows} WHERE {where} ORDER BY {order} LIMIT {size} + 1"
            )
            in_page = f"{a}._rn <= {size}"

            def agg(value: str) -> str:
                return self._agg(value, a, natural, in_page)
        else:
            # Just the rows: no extra row, no window function (a quarter of Q1's SQL time).
            page_rows = (
                f"SELECT {a}.*{extra} FROM {rows} WHERE {where} ORDER BY {order} LIMIT {size}"
            )
            in_page = "true"
            in_order = _order_by(c.order, sorted_as)

            def agg(value: str) -> str:
                return f"coalesce(json_agg({value} ORDER BY {in_order}), '[]'::json)"

        if c.model.has_computed:
            # from here on `a` is the page (its rows carry the whole table row as `_row`)
            self._whole_rows[a] = f"{a}._row"
        pairs: list[tuple[str, str]] = []
        for part in c.parts:
            if isinstance(part, Nodes):
                pairs.append((part.key, agg(self.object(part.selection, a))))
            elif isinstance(part, Edges):
                edge_pairs: list[tuple[str, str]] = []
                for edge_part in part.parts:
                    if isinstance(edge_part, Cursor):
                        edge_pairs.append((edge_part.key, cursor))
                    elif isinstance(edge_part, EdgeNode):
                        edge_pairs.append((edge_part.key, self.object(edge_part.selection, a)))
                    else:
                        edge_pairs.append((edge_part.key, _literal(edge_part.name)))
                pairs.append((part.key, agg(self.json_object(edge_pairs))))
            elif isinstance(part, TotalCount):
                pairs.append((part.key, self._total_count(c, parent)))
            elif isinstance(part, Aggregates):
                pairs.append((part.key, self._aggregates(c, parent, part)))
            elif isinstance(part, GroupedAggregates):
                pairs.append((part.key, self._groups(c, parent, part)))
            elif isinstance(part, PageInfoField):
                info: list[tuple[str, str]] = []
                more = f"count(*) > {size}"
                for key, name in part.parts:
                    if name == "__typename":
                        info.append((key, "'PageInfo'"))
                    elif name == "hasNextPage":
                        info.append(
                            (key, self._beyond(c, parent, before=False) if backward else more)
                        )
                    elif name == "hasPreviousPage":
                        info.append(
                            (key, more if backward else self._beyond(c, parent, before=True))
                        )
                    elif name == "startCursor":
                        # `natural` is the page's order as returned (also for `last`)
                        info.append((key, self._pick(cursor, a, natural, in_page)))
                    else:  # endCursor
                        info.append((key, self._pick(cursor, a, reverse, in_page)))
                pairs.append((part.key, self.json_object(info)))
            elif isinstance(part, Typename):
                pairs.append((part.key, _literal(part.name)))
        # GROUP BY (): exactly one row, also when the page is empty
        return f"(SELECT {self.json_object(pairs)} FROM ({page_rows}) {a} GROUP BY ())"

    def _over_matching_rows(
        self, c: Connection, parent: str | None, select: Callable[[str], str]
    ) -> str:
        """A sub-select over every row the connection matches, the page's bounds aside:
        `select` gets the rows' alias."""
        t = self.alias()
        conditions = " AND ".join(self._base_conditions(c, t, parent)) or "true"
        return f"(SELECT {select(t)} FROM {self._rows_of(c, parent)} {t} WHERE {conditions})"

    def _total_count(self, c: Connection, parent: str | None) -> str:
        return self._over_matching_rows(c, parent, lambda t: "count(*)")

    def _aggregates(self, c: Connection, parent: str | None, part: Aggregates) -> str:
        if not any(_aggregated(p) for p in part.parts):
            # `aggregates { __typename }`: nothing to read (over the rows, with no aggregate
            # function, it would be a value per row, not one)
            return self.json_object(self._aggregate_pairs(part.parts, "", {}))
        return self._over_matching_rows(
            c, parent, lambda t: self.json_object(self._aggregate_pairs(part.parts, t, {}))
        )

    def _aggregate_pairs(
        self, parts: list[Any], t: str, grouped: dict[ColumnInfo, str]
    ) -> list[tuple[str, str]]:
        """Aggregates over the rows `t` (all matching, or a group's), and a group's keys:
        `grouped` holds the value of each column grouped by."""
        pairs: list[tuple[str, str]] = []
        for p in parts:
            if isinstance(p, AggregateCount):
                pairs.append((p.key, "count(*)"))
            elif isinstance(p, AggregateValues | GroupKeys):
                values: list[tuple[str, str]] = []
                for v in p.parts:
                    if isinstance(v, Typename):
                        values.append((v.key, _literal(v.name)))
                    elif isinstance(p, GroupKeys):  # null: not grouped by
                        values.append((v[0], grouped.get(v[1], "null")))
                    else:
                        values.append((v[0], self._aggregate_value(p.function, v[1], t)))
                pairs.append((p.key, self.json_object(values)))
            elif isinstance(p, Typename):
                pairs.append((p.key, _literal(p.name)))
        return pairs

    def _groups(self, c: Connection, parent: str | None, part: GroupedAggregates) -> str:
        """The matching rows grouped: a JSON list of the first groups in `orderBy`'s order,
        then the keys'."""
        size = self._page_size(part.first, "first")
        t = self.alias()
        keys = {column: self._group_key(column, unit, t) for column, unit in part.group_by}
        conditions = " AND ".join(self._base_conditions(c, t, parent)) or "true"
        group = self.json_object(self._aggregate_pairs(part.parts, t, keys))
        # the sort values: the aggregates orderBy names, then the keys (nulls last)
        values = [
            (self._aggregate_value(function, column, t), _sort(descending, nulls_low))
            for function, column, descending, nulls_low in part.order
        ]
        values += [(key, "ASC") for key in keys.values()]
        having = " AND ".join(
            self._compare(compare, self._aggregate_value(function, column, t))
            for function, column, compare in part.having
        )
        g = self.alias()
        columns = "".join(f", {v} AS _o{i}" for i, (v, _) in enumerate(values))
        inner = ", ".join(f"_o{i} {d}" for i, (_, d) in enumerate(values))
        outer = ", ".join(f"{g}._o{i} {d}" for i, (_, d) in enumerate(values))
        return (
            f"(SELECT coalesce(json_agg({g}._group ORDER BY {outer}), '[]'::json) "
            f"FROM (SELECT {group} AS _group{columns} FROM {self._rows_of(c, parent)} {t} "
            f"WHERE {conditions} GROUP BY {', '.join(keys.values())} "
            f"{f'HAVING {having} ' if having else ''}ORDER BY {inner} LIMIT {size}) {g})"
        )

    def _aggregate_value(self, function: str, column: ColumnInfo | None, t: str) -> str:
        """An aggregate over the rows `t`: count(*) without a column."""
        return "count(*)" if column is None else _aggregate(function, self.value(column, t))

    def _group_key(self, column: ColumnInfo, unit: str | None, t: str) -> str:
        value = self.value(column, t)
        if unit is None:
            return value
        if column.scalar == "Date":
            return f"date_trunc({_literal(unit)}, {value})::date"
        if column.sql_type == "timestamptz":  # days begin at midnight UTC, whatever TimeZone
            return f"date_trunc({_literal(unit)}, {value}, 'UTC')"
        return f"date_trunc({_literal(unit)}, {value})"

    def _count_only(self, c: Connection, parent: str | None) -> list[tuple[str, str]]:
        pairs = []
        for part in c.parts:
            if isinstance(part, TotalCount):
                pairs.append((part.key, self._total_count(c, parent)))
            elif isinstance(part, Aggregates):
                pairs.append((part.key, self._aggregates(c, parent, part)))
            elif isinstance(part, GroupedAggregates):
                pairs.append((part.key, self._groups(c, parent, part)))
            elif isinstance(part, Typename):
                pairs.append((part.key, _literal(part.name)))
        return pairs

    @staticmethod
    def _agg(value: str, a: str, direction: str, in_page: str) -> str:
        return (
            f"coalesce(json_agg({value} ORDER BY {a}._rn {direction}) "
            f"FILTER (WHERE {in_page}), '[]'::json)"
        )

    @staticmethod
    def _pick(value: str, a: str, direction: str, in_page: str) -> str:
        return f"(array_agg({value} ORDER BY {a}._rn {direction}) FILTER (WHERE {in_page}))[1]"

    def _beyond(self, c: Connection, parent: str | None, *, before: bool) -> str:
        """Are there rows on the far side of the `after` (or `before`) cursor?"""
        bound = c.page.after if before else c.page.before
        if bound is None:
            return "false"
        t = self.alias()
        conditions = self._base_conditions(c, t, parent)
        # rows not after `after` are before it (or it); rows not before `before` follow it
        rows, values = self._sorted_rows(c, t, parent)
        conditions.append(f"NOT {self._keyset(c, values, bound, after=before)}")
        return f"EXISTS (SELECT FROM {rows} WHERE {' AND '.join(conditions)})"

    def _rows_of(self, c: Connection, parent: str | None = None) -> str:
        """What the connection's rows are read from: the model's table (or view), or its query
        function called with the request's values (a computed relation's: with the parent's
        whole row first)."""
        if c.source is None:
            return c.model.read_from
        if c.source.of_row:
            assert parent is not None
            row = self._whole_rows.get(parent, parent)
            function = c.source.function
            return self._call(function.function, function.arguments, c.source.arguments, row)
        return self._called(c.source)

    def function_value(self, source: RowFunction) -> str:
        """A function's value, as the type its declaration names (JSON like a column's)."""
        returns = source.function.returns
        assert returns is not None
        return f"{self._called(source)}::{returns.sql_type}"

    def _called(self, source: RowFunction) -> str:
        return self._call(source.function.function, source.function.arguments, source.arguments)

    def _call(
        self,
        function: SqlFunction,
        arguments: tuple[ColumnInfo, ...],
        given: tuple[Getter, ...],
        *before: str,
    ) -> str:
        """A SQL function called with the request's values bound (after `before`, a row)."""
        bound = [self.bind_value(a, ref) for a, ref in zip(arguments, given, strict=True)]
        return f"{function.sql_name}({', '.join([*before, *bound])})"

    def _base_conditions(self, c: Connection, a: str, parent: str | None) -> list[str]:
        """Which rows the connection has, its page aside: those of its parent that match its
        filter (and, with `distinctOn`, the first of each kind)."""
        conditions = self._filtered(c, a, parent)
        if c.distinct:
            conditions.append(self._first_of_each(c, a, parent))
        return conditions

    def _filtered(self, c: Connection, a: str, parent: str | None) -> list[str]:
        conditions = []
        if c.relation is not None and parent is not None:
            conditions.append(_join(c.relation, a, parent))
        if c.condition is not None:
            conditions.append(self.condition(c.condition, a))
        return conditions

    def _first_of_each(self, c: Connection, a: str, parent: str | None) -> str:
        """`distinctOn`: the row is the first in the connection's order of the matching rows
        with its values (PostgreSQL's DISTINCT ON), found by its key. A condition rather than
        another FROM, so the rows stay the table's (computed columns take them whole) and
        pages, counts and aggregates all read the same rows."""
        t = self.alias()
        values = ", ".join(self._group_key(column, unit, t) for column, unit in c.distinct)
        order = _order_by(c.order, [self._sort_value(k, k.path, t) for k in c.order])
        where = " AND ".join(self._filtered(c, t, parent)) or "true"
        key = ", ".join(self.value(column, a) for column in c.model.key)
        key_t = ", ".join(self.value(column, t) for column in c.model.key)
        return (
            f"({key}) IN (SELECT DISTINCT ON ({values}) {key_t} "
            f"FROM {self._rows_of(c, parent)} {t} WHERE {where} ORDER BY {values}, {order})"
        )

    def _page_size(self, size: Any, name: str) -> int:
        limit = self.max_page_size
        if not isinstance(size, int) or size < 0:
            raise BadUserInput(f"`{name}` must be zero or more", field=name)
        if size > limit:
            raise BadUserInput(f"`{name}` may be at most {limit}", field=name)
        return size

    def _sorted_rows(self, c: Connection, a: str, parent: str | None) -> tuple[str, list[str]]:
        """The FROM of the connection's rows (alias `a`), and its sort keys' values there.

        A value through relations (a sub-select) or of a computed column (its function) is
        computed in a LATERAL beside each row;
        OFFSET 0 keeps PostgreSQL from folding it back into every place it is used (the keyset
        names each key up to three times), so it runs once a row.
        """
        values = [self._sort_value(k, k.path, a) for k in c.order]
        rows = f"{self._rows_of(c, parent)} {a}"
        if not any(k.derived for k in c.order):
            return rows, values
        s = self.alias()
        related = [i for i, k in enumerate(c.order) if k.derived]
        computed = ", ".join(f"{values[i]} AS _s{i}" for i in related)
        for i in related:
            values[i] = f"{s}._s{i}"
        return f"{rows} CROSS JOIN LATERAL (SELECT {computed} OFFSET 0) {s}", values

    def _sort_value(self, key: OrderKey, path: tuple[RelationInfo, ...], a: str) -> str:
        """A sub-select per relation of the path, over the rows the caller can see."""
        if not path:
            assert key.column is not None
            return self.value(key.column, a, key.arguments)
        relation, rest = path[0], path[1:]
        r = self.alias()
        if rest or key.function is None:
            value = self._sort_value(key, rest, r)
        else:
            value = self._aggregate_value(key.function, key.column, r)
        target = self.catalog[relation.target]
        return f"(SELECT {value} FROM {target.read_from} {r} WHERE {_join(relation, r, a)})"

    def _cursor_expr(self, c: Connection, sorted_as: list[str]) -> str:
        # numeric as text: a JSON number of more digits than a float holds would come back
        # from the client's cursor rounded, and the page would start at the wrong row
        values = ", ".join(
            f"{v}::text" if k.value.python_type is Decimal else v
            for k, v in zip(c.order, sorted_as, strict=True)
        )
        return _base64(f"json_build_array({_literal(c.order_signature)}, {values})::text")

    def _keyset(self, c: Connection, columns: list[str], cursor: Ref, *, after: bool) -> str:
        """Rows strictly after (or before) the cursor's row in the connection's order;
        `columns` are the sort keys' values over the rows."""
        signature = c.order_signature
        cols = tuple(k.value for k in c.order)
        params = []
        for i, key in enumerate(c.order):

            def get(variables: Variables, i: int = i) -> Any:
                return _decode_cursor(str(cursor(variables)), signature, cols)[i]

            p = self.bind(get, "text")
            cast = key.value.sql_type
            params.append(p if cast == "text" else f"{p}::{cast}")
        nullable = any(k.value.nullable for k in c.order)
        directions = {k.descending for k in c.order}
        if not nullable and len(directions) == 1:
            # One direction and no nulls: a row comparison, which an index on the keys serves.
            greater = after != c.order[0].descending
            op = ">" if greater else "<"
            return f"(({', '.join(columns)}) {op} ({', '.join(params)}))"
        terms = []
        for i, key in enumerate(c.order):
            equal = [_equal(columns[j], params[j], c.order[j]) for j in range(i)]
            greater = after != key.descending
            step = _follows(columns[i], params[i], key, greater)
            terms.append(" AND ".join([*equal, step]))
        return "(" + " OR ".join(f"({t})" for t in terms) + ")"

    # filters

    def condition(self, cond: Any, a: str) -> str:
        if isinstance(cond, RelatedRows):
            return self._related_rows(cond, a)
        if isinstance(cond, RelatedCount):
            r = self.alias()
            read_from = self.catalog[cond.relation.target].read_from
            count = f"(SELECT count(*) FROM {read_from} {r} WHERE {_join(cond.relation, r, a)})"
            return " AND ".join(self._compare(c, count) for c in cond.compares) or "true"
        if isinstance(cond, BoolOp):
            parts = [self.condition(item, a) for item in cond.items]
            if cond.op == "not":
                return f"NOT ({parts[0]})"
            if not parts:
                return "true" if cond.op == "and" else "false"
            return "(" + f" {cond.op.upper()} ".join(parts) + ")"
        assert isinstance(cond, Compare)
        return self._compare(cond, self.value(cond.column, a))

    def _compare(self, cond: Compare, column: str) -> str:
        """A comparison of the value `column` (SQL) with the filter's operand."""
        op = cond.operator
        if op == "isNull":
            return f"{column} IS NULL" if cond.value(()) else f"{column} IS NOT NULL"  # type: ignore[arg-type]
        if op in ("in", "nin"):
            test = f"{column} = ANY({self.bind_array(cond.column, cond.value)})"
            return test if op == "in" else f"NOT ({test})"
        if cond.column.array and op in _ARRAY_OPERATORS:
            # the column cast too: a varchar[] has no @> with a text[]
            value = self.bind_value(cond.column, cond.value)
            return f"{column}::{cond.column.sql_type} {_ARRAY_OPERATORS[op]} {value}"
        if op in _JSON_OPERATORS:  # JSON's, as jsonb also for a json column
            ref, sql_op = cond.value, _JSON_OPERATORS[op]
            if op == "hasKey":
                value = self.bind(lambda v: as_text(ref(v)), "text")
            elif op in ("hasKeysAny", "hasKeysAll"):
                value = self.bind(lambda v: [as_text(key) for key in ref(v)], "text[]")
            else:
                value = self.bind(lambda v: json_text(ref(v)), "text") + "::jsonb"
            return f"{column}::jsonb {sql_op} {value}"
        if op in TEXT_MATCHES:  # the text itself, no pattern: `50%` finds "50%"
            ref, (before, after, sql_op) = cond.value, TEXT_MATCHES[op]
            pattern = self.bind(lambda v: _literal_pattern(as_text(ref(v)), before, after), "text")
            return f"{column} {sql_op} {pattern}"
        if op in ("like", "ilike"):
            # PostgreSQL refuses a trailing escape only when matching reaches it: check first,
            # so the answer does not depend on the rows
            ref = cond.value
            value = self.bind(lambda v: _like_pattern(as_text(ref(v))), "text")
        else:
            value = self.bind_value(cond.column, cond.value)
        if op == "startsWith":
            return f"starts_with({column}, {value})"
        sql_op = {
            "eq": "=",
            "neq": "<>",
            "lt": "<",
            "lte": "<=",
            "gt": ">",
            "gte": ">=",
            "like": "LIKE",
            "ilike": "ILIKE",
        }[op]
        return f"{column} {sql_op} {value}"

    def _related_rows(self, cond: RelatedRows, a: str) -> str:
        """EXISTS over the related rows the caller can see (the sub-select reads under RLS).

        `every` asks that no related row fails the condition; a NULL (a comparison with a null
        column) fails it, as it does for `some`. Written `NOT coalesce(...)` rather than
        `IS NOT TRUE`: PostgreSQL estimates the latter from the test's own selectivity, which
        under RLS can come out at a handful of rows and choose a nested loop over every related
        row (16 s against 0.2 s on the rig's 200,000 comments).
        """
        if cond.quantifier == "every" and cond.condition is None:
            return "true"
        r = self.alias()
        where = _join(cond.relation, r, a)
        if cond.condition is not None:
            test = self.condition(cond.condition, r)
            every = cond.quantifier == "every"
            where += f" AND NOT coalesce({test}, false)" if every else f" AND {test}"
        read_from = self.catalog[cond.relation.target].read_from
        found = f"EXISTS (SELECT FROM {read_from} {r} WHERE {where})"
        return found if cond.quantifier == "some" else f"NOT {found}"

    # root fields

    def by_key(self, f: ByKey) -> str:
        a = self.alias()
        where = self._matching(f.match, a)
        return f"(SELECT {self.object(f.selection, a)} FROM {f.model.read_from} {a} WHERE {where})"

    def _matching(self, match: tuple[tuple[ColumnInfo, Ref], ...], a: str) -> str:
        """The row a lookup, update or delete names: each of its key columns equal to its
        bound value."""
        return " AND ".join(f"{a}.{_quote(c.name)} = {self.bind_value(c, ref)}" for c, ref in match)

    def viewer(self, f: Viewer) -> str:
        a = self.alias()
        pk = f.selection.model.primary_key
        return (
            f"(SELECT {self.object(f.selection, a)} FROM {f.selection.model.read_from} {a} "
            f"WHERE {a}.{_quote(pk.name)} = auth.uid())"
        )

    def node_lookup(self, f: NodeLookup) -> str:
        catalog = self.catalog
        type_param = self.bind(lambda v: decode_node_id(catalog, f.node_id(v))[0], "text")
        key_param = self.bind(lambda v: decode_node_id(catalog, f.node_id(v))[1], "text")
        branches = []
        for type_name, selection in f.selections.items():
            model = catalog[type_name]
            a = self.alias()
            pk = model.primary_key
            key = key_param if pk.sql_type == "text" else f"{key_param}::{pk.sql_type}"
            branches.append(
                f"WHEN {_literal(type_name)} THEN (SELECT {self.object(selection, a)} "
                f"FROM {model.read_from} {a} WHERE {a}.{_quote(pk.name)} = {key})"
            )
        return f"(CASE {type_param} {' '.join(branches)} END)"

    def entities(self, f: EntityLookup) -> str:
        """Each representation's row, or null, in the representations' order."""
        catalog = self.catalog
        keys = self.bind(lambda v: entity_keys(catalog, f.representations(v)), "text")
        r = self.alias()
        branches = []
        for type_name, selection in f.selections.items():
            model = catalog[type_name]
            a = self.alias()
            match = " AND ".join(
                f"{a}.{_quote(c.name)} = "
                + (f"{r}.e->>{i}" if c.sql_type == "text" else f"({r}.e->>{i})::{c.sql_type}")
                for i, c in enumerate(model.key, start=1)
            )
            branches.append(
                f"WHEN {_literal(type_name)} THEN (SELECT {self.object(selection, a)} "
                f"FROM {model.read_from} {a} WHERE {match})"
            )
        return (
            f"(SELECT coalesce(json_agg(CASE {r}.e->>0 {' '.join(branches)} END "
            f"ORDER BY {r}.i), '[]'::json) "
            f"FROM jsonb_array_elements({keys}::jsonb) WITH ORDINALITY AS {r}(e, i))"
        )

    def exists(self, w: Write) -> str:
        """Is the row an update or delete names visible to the caller?"""
        a = self.alias()
        return (
            f"SELECT EXISTS (SELECT FROM {w.model.read_from} {a} "
            f"WHERE {self._matching(w.match, a)})"
        )

    # writes: one statement each, the write and the returned selection together

    def write(
        self, w: Write, columns: tuple[str, ...], adjusted: tuple[tuple[str, str], ...] = ()
    ) -> str:
        """The write and its returned selection; the columns' values are bound from the
        request's validated input (`WRITE_VALUES` in the variables), so the SQL is reusable;
        so are an update's other changes, `adjusted` as (column, how) (`WRITE_ADJUSTMENTS`).

        The selection is the write's RETURNING clause: sub-selects there read the other
        tables as they were when the statement began, as they would from a WITH around it.
        """
        model = w.model
        a = self.alias()
        table = model.qualified_table
        if w.source is not None and w.source.function.returns is not None:
            return f"SELECT to_json({self.function_value(w.source)})"  # a mutation's value
        if w.source is not None:
            # A mutation function: its rows in the order it returns them, and how many
            # (execute.py refuses more than a page, rolling back, as for updateXs).
            return (
                f"SELECT coalesce(json_agg({self.object(w.selection, a)}), '[]'::json), "
                f"count(*) FROM {self._called(w.source)} {a}"
            )
        if w.kind in ("create_many", "upsert_many"):
            if not columns:
                return "SELECT '[]'::json"  # no rows given
            names = ", ".join(_quote(n) for n in columns)
            arrays = ", ".join(self.bind_array(model.column(n), _Input(n)) for n in columns)
            u = self.alias()
            values = ", ".join(_unnested(model.column(n), f"{u}.{_quote(n)}") for n in columns)
            # RETURNING yields the rows as they were written: for an INSERT from unnest, one by
            # one in the arrays' order, which is the inputs' order.
            return (
                f"WITH written AS (INSERT INTO {table} AS {a} ({names}) "
                f"SELECT {values} FROM unnest({arrays}) AS {u}({names})"
                f"{self._on_conflict(w, columns, a)} "
                f"RETURNING {self.object(w.selection, a)} AS _row) "
                "SELECT coalesce(json_agg(written._row), '[]'::json) FROM written"
            )
        if w.kind in ("update_many", "delete_many"):
            where = "true" if w.condition is None else self.condition(w.condition, a)
            if w.kind == "delete_many":
                change = f"DELETE FROM {table} AS {a} WHERE {where}"
            else:
                sets = self._sets(w, columns, a, adjusted)
                change = f"UPDATE {table} AS {a} SET {sets} WHERE {where}"
            # the primary key as one value (a row of its columns when there are several)
            key = ", ".join(f"{a}.{_quote(c.name)}" for c in model.key)
            key = key if model.keyed_by_one else f"ROW({key})"
            # the rows and how many (execute.py refuses more than a page, rolling back)
            return (
                f"WITH changed AS ({change} RETURNING {key} AS _key, "
                f"{self.object(w.selection, a)} AS _row) "
                "SELECT coalesce(json_agg(changed._row ORDER BY changed._key), '[]'::json), "
                "count(*) FROM changed"
            )
        if w.kind in ("create", "upsert"):
            if columns:
                names = ", ".join(_quote(n) for n in columns)
                binds = ", ".join(self.bind_value(model.column(n), _Input(n)) for n in columns)
                change = f"INSERT INTO {table} AS {a} ({names}) VALUES ({binds})"
            else:
                change = f"INSERT INTO {table} AS {a} DEFAULT VALUES"
            change += self._on_conflict(w, columns, a)
        else:
            match = self._matching(w.match, a)  # by the key, a unique column or a link's key
            if w.kind == "delete":
                change = f"DELETE FROM {table} AS {a} WHERE {match}"
            else:
                sets = self._sets(w, columns, a, adjusted)
                change = f"UPDATE {table} AS {a} SET {sets} WHERE {match}"
        return f"{change} RETURNING {self.object(w.selection, a)}"

    # a create with rows nested in its input: a statement per level, then its answer

    def new_rows(
        self,
        model: ModelInfo,
        rows: NewRows,
        path: tuple[str, ...],
        parent: ModelInfo | None,
        w: Write | None,
    ) -> str:
        """One level of a nested create: its rows, each below the top with its foreign key
        from its parent (the level above, written by the statement before); gives back, in
        the inputs' order, what the next level needs of them (RETURNING yields the rows of an
        INSERT from an ordered SELECT in that order)."""
        a, u = self.alias(), self.alias()
        names = tuple(rows.columns)
        arrays = [self.bind_array(model.column(n), _Level(path, n)) for n in names]
        values = [_unnested(model.column(n), f"{u}.{_quote(n)}") for n in names]
        targets = [_quote(n) for n in names]
        labels = list(targets)
        join = ""
        if parent is not None:
            assert rows.relation is not None
            arrays.insert(0, self.bind(_Level(path, None), "int[]"))
            labels.insert(0, "_parent")
            p = self.alias()
            pairs = rows.relation.pairs
            theirs = [
                self.bind(_Written(path[:-1], mine), f"{parent.column(mine).sql_type}[]")
                for mine, _ in pairs
            ]
            parent_labels = ", ".join(_quote(mine) for mine, _ in pairs)
            join = (
                f" JOIN unnest({', '.join(theirs)}) WITH ORDINALITY AS {p}({parent_labels}, _n) "
                f"ON {p}._n = {u}._parent"
            )
            targets += [_quote(child_column) for _, child_column in pairs]
            values += [f"{p}.{_quote(mine)}" for mine, _ in pairs]
        conflict = self._on_conflict(w, names, a) if w is not None else ""
        kept = {model.primary_key.name}
        for child in rows.children.values():
            assert child.relation is not None
            kept.update(mine for mine, _ in child.relation.pairs)
        written = self.alias()
        return (
            f"WITH {written} AS (INSERT INTO {model.qualified_table} AS {a} "
            f"({', '.join(targets)}) SELECT {', '.join(values)} "
            f"FROM unnest({', '.join(arrays)}) WITH ORDINALITY AS {u}({', '.join(labels)}, _i)"
            f"{join} ORDER BY {u}._i{conflict} "
            f"RETURNING {', '.join(f'{a}.{_quote(c)}' for c in sorted(kept))}) "
            f"SELECT * FROM {written}"
        )

    def read_back(self, w: Write) -> str:
        """A nested create's answer: its rows by the keys it gave, in their order, as the
        caller sees them now (with the rows created under them)."""
        model = w.model
        a = self.alias()
        key = model.primary_key
        keys = self.bind(_Written((), key.name), f"{key.sql_type}[]")
        row = self.object(w.selection, a)
        if w.kind in ("create", "upsert"):
            return (
                f"SELECT {row} FROM {model.qualified_table} {a} "
                f"WHERE {a}.{_quote(key.name)} = ({keys})[1]"
            )
        return (
            f"SELECT coalesce(json_agg({row} ORDER BY _k._i), '[]'::json) "
            f"FROM unnest({keys}) WITH ORDINALITY AS _k(_key, _i) "
            f"JOIN {model.qualified_table} {a} ON {a}.{_quote(key.name)} = _k._key"
        )

    def _on_conflict(self, w: Write, columns: tuple[str, ...], a: str) -> str:
        """An upsert's way to the existing row: update it with what an update may change.

        Row Level Security holds both ways: the new row passes the insert's checks, and an
        existing one the update's (PostgreSQL raises, never skips, when it does not)."""
        key = w.conflict
        if key is None:
            return ""
        model = w.model
        assert model.update_model is not None
        changeable = api_fields(model.update_model)
        sets = [f"{_quote(n)} = excluded.{_quote(n)}" for n in columns if n in changeable]
        sets += [f"{_quote(c.name)} = now()" for c in model.columns.values() if c.touch_on_update]
        if not sets:  # still an update, so that RETURNING has the row
            sets = [f"{_quote(key.name)} = {a}.{_quote(key.name)}"]
        return f" ON CONFLICT ({_quote(key.name)}) DO UPDATE SET {', '.join(sets)}"

    def _sets(
        self, w: Write, columns: tuple[str, ...], a: str, adjusted: tuple[tuple[str, str], ...] = ()
    ) -> str:
        """An update's SET: the given columns, bound; the adjusted ones changed from their
        value as the statement finds the row (so concurrent increments, appends and removals
        all count); and those every update touches."""
        model = w.model
        sets = [f"{_quote(n)} = {self.bind_value(model.column(n), _Input(n))}" for n in columns]
        for n, adjustment in adjusted:
            column, now = model.column(n), f"{a}.{_quote(n)}"
            if adjustment == "remove" and not column.array:  # JSONB: keys taken out
                keys = self.bind(_texts(_Adjustment(n)), "text[]")
                sets.append(f"{_quote(n)} = {now} - {keys}")
                continue
            given = self.bind_value(column, _Adjustment(n))
            if adjustment == "increment":  # a null number stays null
                sets.append(f"{_quote(n)} = {now} + {given}")
            elif adjustment == "remove":  # the other elements, in order; null stays null
                u = self.alias()
                kept = (
                    f"SELECT coalesce(array_agg({u}.e ORDER BY {u}.i), '{{}}') "
                    f"FROM unnest({now}) WITH ORDINALITY AS {u}(e, i) WHERE NOT EXISTS "
                    f"(SELECT FROM unnest({given}) AS r(e) WHERE r.e IS NOT DISTINCT FROM {u}.e)"
                )
                sets.append(f"{_quote(n)} = CASE WHEN {now} IS NULL THEN NULL ELSE ({kept}) END")
            elif column.array:  # elements appended; to a null array, they are the array
                sets.append(f"{_quote(n)} = {now} || {given}")
            else:  # JSONB: keys merged (an array's elements appended); a null one takes it
                sets.append(f"{_quote(n)} = coalesce({now} || {given}, {given})")
        sets += [f"{_quote(c.name)} = now()" for c in model.columns.values() if c.touch_on_update]
        if not sets:
            pk = _quote(model.primary_key.name)
            sets = [f"{pk} = {a}.{pk}"]
        return ", ".join(sets)


# Where a write's validated input values travel among the variables: no GraphQL variable
# name can contain a NUL.
WRITE_VALUES = "\x00input"


# An update's changes other than values to set (amounts to add, elements to append or
# remove), by column (see `_sets`).
WRITE_ADJUSTMENTS = "\x00adjust"


@dataclass(frozen=True)
class _Adjustment:
    column: str

    def __call__(self, variables: Variables) -> Any:
        return variables[WRITE_ADJUSTMENTS][self.column]


@dataclass(frozen=True)
class _Input:
    """A written column's value, from the request's validated input."""

    column: str

    def __call__(self, variables: Variables) -> Any:
        return variables[WRITE_VALUES][self.column]


@dataclass
class NestedCreate:
    """A create whose input nests related rows: a statement per level and relation, each
    after the one it takes its foreign keys from (a statement does not see its own writes, so
    Row Level Security could not see the new parent of a row inserted beside it), then the
    statement reading the answer."""

    levels: list[tuple[tuple[str, ...], Statement]]  # (the input fields down to it, its SQL)
    answer: Statement


def nested_create(catalog: Catalog, w: Write, rows: NewRows, *, max_page_size: int) -> NestedCreate:
    levels: list[tuple[tuple[str, ...], Statement]] = []

    def add(
        model: ModelInfo, level: NewRows, path: tuple[str, ...], parent: ModelInfo | None
    ) -> None:
        emitter = Emitter(catalog, max_page_size=max_page_size)
        top = w if parent is None else None
        emitter.statement.sql = emitter.new_rows(model, level, path, parent, top)
        levels.append((path, emitter.statement))
        for name, child in level.children.items():
            assert child.relation is not None
            add(catalog[child.relation.target], child, (*path, name), model)

    add(w.model, rows, (), None)
    reader = Emitter(catalog, max_page_size=max_page_size)
    reader.statement.sql = reader.read_back(w)
    return NestedCreate(levels, reader.statement)


# Where a nested create's levels put the rows they wrote, by path, for the levels below and
# the answer (see `nested_create`).
WRITTEN = "\x00written"


@dataclass(frozen=True)
class _Written:
    """A column of the rows a level of a nested create wrote, in their order."""

    path: tuple[str, ...]
    column: str

    def __call__(self, variables: Variables) -> Any:
        return [row[self.column] for row in variables[WRITTEN][self.path]]


@dataclass(frozen=True)
class _Level:
    """A column's values at one level of a nested create (`path`: the input fields down to
    it), or with no column, each row's parent among the level above."""

    path: tuple[str, ...]
    column: str | None

    def __call__(self, variables: Variables) -> Any:
        rows = variables[WRITE_VALUES]
        for name in self.path:
            rows = rows.children[name]
        return rows.parents if self.column is None else rows.columns[self.column]


_ARRAY_OPERATORS = {"contains": "@>", "containedBy": "<@", "overlaps": "&&"}
_JSON_OPERATORS = {
    "contains": "@>",
    "containedBy": "<@",
    "hasKey": "?",
    "hasKeysAny": "?|",
    "hasKeysAll": "?&",
}


def _aggregate(function: str, column: str) -> str:
    """An aggregate of a column, typed as the schema says (a sum of Ints is a Float)."""
    if function == "distinctCount":
        return f"count(DISTINCT {column})"
    cast = "::float8" if AGGREGATE_FUNCTIONS[function][1] == "Float" else ""
    return f"{function}({column}){cast}"


def _unnested(column: ColumnInfo, value: str) -> str:
    """A column's value in one row of createXs' unnest. An array column's arrive as JSON
    texts (unnest would flatten an array of arrays), made arrays again in their order."""
    if not column.array:
        return value
    items = (
        f"ARRAY(SELECT _e FROM jsonb_array_elements_text({value}::jsonb) WITH ORDINALITY "
        f"AS _items(_e, _i) ORDER BY _i)::{column.sql_type}"
    )
    return f"CASE WHEN {value} IS NULL THEN NULL ELSE {items} END"


def _base64(text_expr: str) -> str:
    # encode() wraps base64 at 76 characters; ids and cursors are single tokens
    return f"translate(encode(convert_to({text_expr}, 'UTF8'), 'base64'), E'\\n', '')"


def _literal_pattern(text: str | None, before: str, after: str) -> str | None:
    """A LIKE pattern matching `text` literally (its %, _ and \\ escaped) within before/after."""
    if text is None:
        return None
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return before + escaped + after


def _like_pattern(pattern: str | None) -> str | None:
    if pattern is not None and (len(pattern) - len(pattern.rstrip("\\"))) % 2 == 1:
        raise BadUserInput("a LIKE pattern must not end with the escape character `\\`")
    return pattern


def _cursor_check(cursor: Ref, c: Connection) -> Getter:
    columns = tuple(k.value for k in c.order)
    return lambda v: _decode_cursor(str(cursor(v)), c.order_signature, columns)


def _equal(column: str, param: str, key: OrderKey) -> str:
    if key.value.nullable:
        return f"{column} IS NOT DISTINCT FROM {param}"
    return f"{column} = {param}"


def _follows(column: str, param: str, key: OrderKey, greater: bool) -> str:
    """`column` sorts strictly after `param`; nulls count as the greatest value (PostgreSQL's),
    or the least with `nulls_low`."""
    op = ">" if greater else "<"
    if not key.value.nullable:
        return f"{column} {op} {param}"
    if greater != key.nulls_low:  # toward the nulls' end: a null follows every value
        return f"({param} IS NOT NULL AND ({column} {op} {param} OR {column} IS NULL))"
    return f"({column} IS NOT NULL AND ({param} IS NULL OR {column} {op} {param}))"


def _order_by(keys: list[OrderKey], values: list[str], *, reverse: bool = False) -> str:
    """ORDER BY terms: each sort key's value in its direction (all turned round: `last`)."""
    return ", ".join(
        f"{value} {_sort(key.descending != reverse, key.nulls_low)}"
        for key, value in zip(keys, values, strict=True)
    )


def _sort(descending: bool, nulls_low: bool) -> str:
    """An ORDER BY direction; nulls where PostgreSQL puts them unless they sort low."""
    if not nulls_low:
        return "DESC" if descending else "ASC"
    return "DESC NULLS LAST" if descending else "ASC NULLS FIRST"
