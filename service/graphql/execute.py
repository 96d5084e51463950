"""Run a GraphQL request: parse and validate (cached), plan and compile (cached), one SQL statement.

The response body is assembled from the JSON that PostgreSQL returns, without decoding it.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar

import asyncpg
import orjson
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInputType,
    GraphQLSchema,
    InlineFragmentNode,
    NoSchemaIntrospectionCustomRule,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    execute,
    parse,
    specified_rules,
    validate,
)
from graphql.execution.get_variable_signature import (
    GraphQLVariableSignature,
    get_variable_signature,
)
from graphql.execution.values import get_variable_values, input_is_nested_too_deeply
from graphql.pyutils import Undefined
from graphql.utilities import coerce_input_value
from graphql.validation import OverlappingFieldsCanBeMergedRule
from strawberry.schema.validation_rules.one_of import OneOfInputValidationRule

from service.graphql.catalog import Catalog, ColumnInfo
from service.graphql.errors import ApiError, BadUserInput, Code, LimitExceeded, from_database
from service.graphql.inputs import InputShape, NewRows
from service.graphql.limits import check_merges, check_size, connection_rows, rows_each
from service.graphql.plan import (
    STREAM_AFTER,
    STREAM_INFO,
    ByKey,
    Connection,
    EntityLookup,
    FunctionValue,
    Introspection,
    NodeLookup,
    OperationPlan,
    Planner,
    Typename,
    Variables,
    Viewer,
    Write,
    resolve_tree,
    structural_key,
    structural_variables,
)
from service.graphql.schema import GeneratedSchema
from service.graphql.sql import (
    WRITE_ADJUSTMENTS,
    WRITE_VALUES,
    WRITTEN,
    Emitter,
    NestedCreate,
    Statement,
    nested_create,
)

log = logging.getLogger("service.graphql")

K = TypeVar("K")
V = TypeVar("V")


class LRU(Generic[K, V]):
    def __init__(self, size: int) -> None:
        self.size = size
        self.items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self.items.get(key)
        if value is not None:
            self.items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self.items[key] = value
        if len(self.items) > self.size:
            self.items.popitem(last=False)


@dataclass
class Limits:
    default_page_size: int = 20
    max_page_size: int = 100
    max_depth: int = 12
    max_rows: int = 50_000  # see limits.connection_rows
    max_aliases: int = 30
    max_tokens: int = 5_000
    # Off in production: `__schema` and `__type` are then validation errors.
    introspection: bool = True


@dataclass
class Document:
    """A parsed, validated operation of a document; or the errors that stopped it."""

    document: DocumentNode | None = None
    operation: OperationDefinitionNode | None = None
    fragments: dict[str, FragmentDefinitionNode] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    source: tuple[str, str | None] = ("", None)  # the query text and operation name: its key
    # the operation's variables, each with its schema type (None: one is not an input type)
    variables: tuple[GraphQLVariableSignature, ...] | None = ()
    variable_types: dict[str, GraphQLInputType] = field(default_factory=dict)  # by name
    structural: frozenset[str] = frozenset()  # variables whose values shape the plan

    @property
    def operation_label(self) -> str:
        """For logs and metrics: the operation's name, never the query text."""
        if self.operation is None:
            return "invalid"
        return self.operation.name.value if self.operation.name else "anonymous"

    @property
    def is_mutation(self) -> bool:
        return self.operation is not None and self.operation.operation is OperationType.MUTATION

    @property
    def is_subscription(self) -> bool:
        operation = self.operation
        return operation is not None and operation.operation is OperationType.SUBSCRIPTION


@dataclass
class Compiled:
    plan: OperationPlan
    read: Statement | None  # queries: the one statement


@dataclass
class Result:
    body: bytes
    # "ok", "request_error" (nothing ran: parse/validation/variables) or "field_error"
    outcome: str = "ok"
    # a stream subscription's run: the cursor of its last row (None: no rows came) and
    # whether more rows follow already
    stream: tuple[str | None, bool] | None = None
    # a mutation's, with a read replica: how far the primary's WAL went once it committed
    # (db/wal.py), for the caller's next reads
    written: int | None = None


class Runner:
    """Runs work on a connection as the caller; `atomic` work gets one transaction."""

    async def __call__(
        self, work: Callable[[asyncpg.Connection], Awaitable[Any]], *, atomic: bool
    ) -> Any:
        raise NotImplementedError


class Executor:
    """Executes operations against the generated schema; shared by all requests of a process."""

    def __init__(self, generated: GeneratedSchema, limits: Limits) -> None:
        self.schema: GraphQLSchema = generated.schema._schema
        self.catalog: Catalog = generated.catalog
        self.limits = limits
        self.stream_fields = {f"{m.plural}Stream" for m in self.catalog}
        self.planner = Planner(
            self.schema,
            self.catalog,
            default_page_size=limits.default_page_size,
            max_depth=limits.max_depth,
        )
        # OverlappingFieldsCanBeMerged compares fields pairwise: it runs last, once limits.py
        # has bounded how many fields merge (see _validate).
        self.rules = [r for r in specified_rules if r is not OverlappingFieldsCanBeMergedRule]
        if not limits.introspection:
            self.rules.append(NoSchemaIntrospectionCustomRule)
        # strawberry's oneOf rule expects declared variables: on an otherwise valid document
        self.final_rules = [OverlappingFieldsCanBeMergedRule, OneOfInputValidationRule]
        self.documents: LRU[tuple[str, str | None], Document] = LRU(1024)
        self.plans: LRU[tuple[Any, ...], Compiled] = LRU(2048)
        self.input_shapes: dict[tuple[str, str], InputShape] = {}

    # parse + validate

    def prepare(self, query: str, operation_name: str | None) -> Document:
        key = (query, operation_name)
        cached = self.documents.get(key)
        if cached is None:
            cached = replace(self._prepare(query, operation_name), source=key)
            self.documents.put(key, cached)
        return cached

    def _prepare(self, query: str, operation_name: str | None) -> Document:
        try:
            document = parse(query, max_tokens=self.limits.max_tokens)
        except GraphQLError as error:
            return Document(errors=[_graphql_error(error)])
        errors = self._validate(document)
        if errors:
            return Document(errors=errors)
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        if operation_name is None:
            if len(operations) != 1:
                return Document(errors=[_bad("the document has several operations: name one")])
            operation = operations[0]
        else:
            found = [o for o in operations if o.name and o.name.value == operation_name]
            if not found:
                return Document(errors=[_bad(f"no operation named {operation_name!r}")])
            operation = found[0]
        fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        signatures = _signatures(self.schema, operation)
        types = {s.name: s.type for s in signatures or ()}
        return Document(
            document=document,
            operation=operation,
            fragments=fragments,
            variables=signatures,
            variable_types=types,
            structural=structural_variables(document, types),
        )

    def _validate(self, document: DocumentNode) -> list[dict[str, Any]]:
        limits = self.limits
        too_big = check_size(document, max_depth=limits.max_depth, max_aliases=limits.max_aliases)
        if too_big:
            return [_graphql_error(e, Code.LIMIT_EXCEEDED) for e in too_big]
        invalid = validate(self.schema, document, self.rules)
        if invalid:
            return [_graphql_error(e) for e in invalid]
        too_many = check_merges(document, max_depth=limits.max_depth)
        if too_many:
            return [_graphql_error(e, Code.LIMIT_EXCEEDED) for e in too_many]
        return [_graphql_error(e) for e in validate(self.schema, document, self.final_rules)]

    # run

    async def run(
        self,
        prepared: Document,
        variables: dict[str, Any] | None,
        run_in_transaction: Runner,
        *,
        anonymous: bool = True,
        after: str | None = None,
    ) -> Result:
        """`after`: a stream subscription's cursor, where its run reads on from."""
        if prepared.errors:
            return Result(_errors_body(prepared.errors), "request_error")
        operation = prepared.operation
        assert operation is not None
        coerced: dict[str, Any] = {}
        if operation.variable_definitions:
            values = self._coerce_variables(prepared, variables or {})
            if isinstance(values, list):
                return Result(_errors_body([_graphql_error(e) for e in values]), "request_error")
            coerced = values
        if after is not None:
            coerced = {**coerced, STREAM_AFTER: after}
        try:
            compiled = self._compile(prepared, coerced, resumed=after is not None)
        except ApiError as error:
            return Result(_errors_body([error.to_dict()]), "request_error")

        plan = compiled.plan
        if plan.only_introspection:
            return self._introspect(prepared, variables, plan)
        try:
            if plan.kind is OperationType.MUTATION:
                return await self._mutate(plan, coerced, run_in_transaction, anonymous)
            assert compiled.read is not None
            params = compiled.read.bind(coerced)
            sql = compiled.read.sql
            data: bytes = await run_in_transaction(lambda c: c.fetchval(sql, *params), atomic=False)
        except ApiError as error:
            return Result(_errors_body([error.to_dict()], data_null=True), "field_error")
        except asyncpg.PostgresError as error:
            api_error = _for_caller(from_database(error), anonymous)
            return Result(_errors_body([api_error.to_dict()], data_null=True), "field_error")
        if plan.has_introspection:
            return self._merge_introspection(prepared, variables, plan, data)
        if plan.stream is not None:
            return _stream_result(data, plan.stream)
        return Result(b'{"data":' + data + b"}")

    def is_stream(self, prepared: Document) -> bool:
        """A stream subscription (`postsStream`): each subscriber reads on from a cursor of
        its own, so no two share a poll."""
        if not prepared.is_subscription or prepared.errors:
            return False
        assert prepared.operation is not None
        names = _root_fields(prepared.operation.selection_set, prepared.fragments)
        return any(name in self.stream_fields for name in names)

    def _coerce_variables(
        self, prepared: Document, inputs: dict[str, Any]
    ) -> dict[str, Any] | list[GraphQLError]:
        given = _given_variables(prepared, inputs)
        if given is not None:
            return given
        assert prepared.operation is not None
        definitions = prepared.operation.variable_definitions or ()
        values = get_variable_values(self.schema, definitions, inputs)
        return values if isinstance(values, list) else values.coerced

    def _compile(
        self, prepared: Document, coerced: dict[str, Any], *, resumed: bool = False
    ) -> Compiled:
        operation = prepared.operation
        assert operation is not None
        structure = structural_key(operation, coerced, prepared.structural)
        key = (*prepared.source, structure, resumed)
        compiled = self.plans.get(key)
        if compiled is not None:
            return compiled
        plan = self.planner.plan(
            operation, prepared.fragments, coerced, prepared.variable_types, resumed=resumed
        )
        self._check_rows(plan)
        read = None
        if plan.kind is not OperationType.MUTATION:  # a query, or a live query's each run
            emitter = Emitter(self.catalog, max_page_size=self.limits.max_page_size)
            pairs = []
            for f in plan.fields:
                if isinstance(f, Typename):
                    pairs.append((f.key, "'" + f.name + "'"))
                elif isinstance(f, Introspection):
                    continue
                else:
                    pairs.append((f.key, _root_sql(emitter, f)))
                if isinstance(f, EntityLookup):
                    emitter.statement.checks.append(self._entity_rows_check(f))
            emitter.statement.sql = f"SELECT {emitter.json_object(pairs)}"
            read = emitter.statement
            # once per document and shape of its variables: what a developer reads to see the
            # SQL behind an operation (its plan: X-Explain, db/explain.py)
            log.debug("operation %s compiled to: %s", prepared.operation_label, read.sql)
        compiled = Compiled(plan, read)
        self.plans.put(key, compiled)
        return compiled

    def _entity_rows_check(self, f: EntityLookup) -> Callable[[Variables], None]:
        """`_check_rows` for `_entities`, whose rows are as many as the representations
        a request brings: each representation counts as its row and the rows under it."""
        each = 1 + rows_each(f, max_page_size=self.limits.max_page_size)
        limit = self.limits.max_rows

        def check(variables: Variables) -> None:
            representations = f.representations(variables)
            rows = each * len(representations) if isinstance(representations, list) else 0
            if rows > limit:
                raise LimitExceeded(
                    f"the {len(representations)} representations may return {rows} rows; at "
                    f"most {limit} are allowed: ask for fewer entities at once"
                )

        return check

    def _check_rows(self, plan: OperationPlan) -> None:
        # Before any SQL: PostgreSQL would build the whole response before the statement
        # timeout could stop it, holding a connection and a core meanwhile.
        limit = self.limits.max_rows
        rows = connection_rows(plan, max_page_size=self.limits.max_page_size)
        if rows > limit:
            raise LimitExceeded(
                f"the operation may return {rows} rows through its connections (page sizes "
                f"multiplied through their nesting); at most {limit} are allowed: ask for "
                "smaller pages or fewer nested connections"
            )

    async def _mutate(
        self, plan: OperationPlan, coerced: dict[str, Any], run: Runner, anonymous: bool
    ) -> Result:
        # Each mutation field is one statement; all of an operation's fields share a transaction
        # and a failure rolls all of them back, so a client never sees half an operation applied.
        statements: list[tuple[str, Statement | None, Statement | None]] = []
        bound: dict[str, dict[str, Any]] = {}  # each field's variables and validated input
        # updateXs / deleteXs and mutation functions, held to a page of rows: what to say past it
        counted: dict[str, str] = {}
        nested: dict[str, NestedCreate] = {}  # creates with related rows in their input
        for f in plan.fields:
            if isinstance(f, Typename):
                statements.append((f.key, None, None))
                continue
            assert isinstance(f, Write)
            values = self._validated_input(f, coerced)
            visible: Statement | None
            if isinstance(values, NewRows):
                nested[f.key] = creates = self._nested_create(f, values)
                write, visible = creates.levels[0][1], None
            else:
                adjusted = self._adjustments(f, coerced, values)
                how = tuple((name, adjustment) for name, (adjustment, _) in adjusted.items())
                write, visible = self._write_statements(f, tuple(values), how)
            statements.append((f.key, write, visible))
            bound[f.key] = {**coerced, WRITE_VALUES: values}
            if f.adjust:
                bound[f.key][WRITE_ADJUSTMENTS] = {n: v for n, (_, v) in adjusted.items()}
            if f.kind in ("update_many", "delete_many"):
                counted[f.key] = _TOO_MANY
            elif f.kind == "call" and f.source is not None and f.source.function.returns is None:
                counted[f.key] = _TOO_MANY_RETURNED
        limit = self.limits.max_page_size

        async def work(connection: asyncpg.Connection) -> list[bytes]:
            out = []
            for key, statement, visible in statements:
                if statement is None:
                    out.append(orjson.dumps(plan.root_type))
                    continue
                try:
                    variables = bound[key]
                    if key in nested:
                        out.append(await _create_nested(connection, nested[key], variables))
                        continue
                    if key in counted:
                        value, rows = await connection.fetchrow(
                            statement.sql, *statement.bind(variables)
                        )
                        if rows > limit:  # raised in the transaction: it rolls back
                            too_many = counted[key].format(rows, limit)
                            raise _AtField(key, LimitExceeded(too_many))
                        out.append(value)
                        continue
                    value = await connection.fetchval(statement.sql, *statement.bind(variables))
                    if (
                        value is None
                        and visible is not None
                        and await connection.fetchval(visible.sql, *visible.bind(variables))
                    ):
                        raise _AtField(key, ApiError(_NOT_YOURS, code=Code.FORBIDDEN))
                except asyncpg.PostgresError as error:
                    raise _AtField(key, from_database(error)) from None
                out.append(b"null" if value is None else value)
            return out

        try:
            writes = sum(1 for _, statement, _ in statements if statement is not None)
            values = await run(work, atomic=writes > 1 or bool(counted) or bool(nested))
        except _AtField as failed:
            error = _for_caller(failed.error, anonymous)
            return Result(
                _errors_body([error.to_dict([failed.key])], data_null=True), "field_error"
            )
        parts = [
            orjson.dumps(key) + b":" + value
            for (key, _, _), value in zip(statements, values, strict=True)
        ]
        return Result(b'{"data":{' + b",".join(parts) + b"}}")

    def _nested_create(self, write: Write, rows: NewRows) -> NestedCreate:
        """A nested create's statements, compiled once per shape of the nesting."""
        shape = ("\x00nested", rows.shape())
        compiled = write.compiled.get(shape)
        if compiled is None:
            limit = self.limits.max_page_size
            compiled = nested_create(self.catalog, write, rows, max_page_size=limit)
            write.compiled[shape] = compiled
        return compiled

    def _write_statements(
        self,
        write: Write,
        columns: tuple[str, ...],
        adjusted: tuple[tuple[str, str], ...] = (),
    ) -> tuple[Statement, Statement | None]:
        """The write's statement for these columns (and those adjusted, each with how),
        compiled once (and the visibility check that runs only when an update or delete
        matched nothing: absent, or not ours?)."""
        key = (columns, adjusted) if adjusted else columns
        compiled = write.compiled.get(key)
        if compiled is None:
            emitter = Emitter(self.catalog, max_page_size=self.limits.max_page_size)
            emitter.statement.sql = emitter.write(write, columns, adjusted)
            visible = None
            if write.kind in ("update", "delete"):
                checker = Emitter(self.catalog, max_page_size=self.limits.max_page_size)
                checker.statement.sql = checker.exists(write)
                visible = checker.statement
            log.debug(
                "%s of %s compiled to: %s", write.kind, write.model.type_name, emitter.statement.sql
            )
            compiled = write.compiled[key] = (emitter.statement, visible)
        return compiled

    @staticmethod
    def _adjustments(
        write: Write, coerced: dict[str, Any], values: dict[str, Any]
    ) -> dict[str, tuple[str, Any]]:
        """An update's changes other than values to set, by column: (how, by what). A null
        amount (or list, or object) changes nothing."""
        adjusted: dict[str, tuple[str, Any]] = {}
        for adjustment, tree in write.adjust.items():
            given = resolve_tree(tree, coerced) or {}
            for column in write.model.adjustable(adjustment):
                value = given.get(column.field)
                if value is None:
                    continue
                if column.name in values:
                    raise BadUserInput(
                        f"`{column.field}` is both set and changed by `{adjustment}`: give one",
                        field=column.field,
                    )
                if column.name in adjusted:
                    raise BadUserInput(
                        f"`{column.field}` is changed by both `{adjusted[column.name][0]}` and "
                        f"`{adjustment}`: give one",
                        field=column.field,
                    )
                adjusted[column.name] = (adjustment, value)
        return adjusted

    def _validated_input(self, write: Write, coerced: dict[str, Any]) -> dict[str, Any] | NewRows:
        """The columns to write and their values (for createXs, each column's list of them);
        for a create whose input nests related rows, those rows level by level."""
        if write.kind in ("delete", "delete_many", "call"):
            return {}
        # an upsert's input is a create's
        kind = "create" if write.conflict is not None else write.kind.removesuffix("_many")
        key = (write.model.type_name, kind)
        shape = self.input_shapes.get(key)
        if shape is None:
            shape = self.input_shapes[key] = InputShape(write.model, kind, self.catalog)
        given = resolve_tree(write.input, coerced)
        limit = self.limits.max_page_size
        if write.kind not in ("create_many", "upsert_many"):
            if shape.nested and given and shape.has_nested(given):
                return shape.new_rows([("", given)], limit=limit)
            return shape.validate(given or {})  # one row's values, also for updateXs
        if len(given) > limit:
            raise LimitExceeded(f"`inputs`: at most {limit} rows at once (MAX_PAGE_SIZE)")
        if shape.nested and any(shape.has_nested(item) for item in given):
            new = shape.new_rows(
                [(f"inputs[{i}]", item) for i, item in enumerate(given)], limit=limit
            )
            if write.conflict is not None:
                keys = new.columns.get(write.conflict.name, [_THE_CALLER] * len(given))
                _one_input_per_key(keys, write.conflict)
            return new
        rows = []
        for i, item in enumerate(given):
            try:
                rows.append(shape.validate(item))
            except BadUserInput as error:
                raise BadUserInput(f"inputs[{i}]: {error.message}", **error.extensions) from None
        if write.conflict is not None:
            name = write.conflict.name
            _one_input_per_key([row.get(name, _THE_CALLER) for row in rows], write.conflict)
        # a create's validation gives every column of its class: the same ones for every row
        return {column: [row[column] for row in rows] for column in (rows[0] if rows else ())}

    # introspection runs on graphql-core: it reads the schema only

    def _introspect(
        self, prepared: Document, variables: dict[str, Any] | None, plan: OperationPlan
    ) -> Result:
        assert prepared.document is not None and prepared.operation is not None
        # Only the introspection root fields, also those from fragments (as the plan collected
        # them): the data fields have no resolvers.
        nodes = tuple(n for f in plan.fields if isinstance(f, Introspection) for n in f.nodes)
        operation = replace(prepared.operation, selection_set=SelectionSetNode(selections=nodes))
        document = DocumentNode(definitions=(operation, *prepared.fragments.values()))
        result = execute(self.schema, document, variable_values=variables)
        assert not isinstance(result, Awaitable)
        introspected = result.data or {}
        data = {
            f.key: plan.root_type if isinstance(f, Typename) else introspected.get(f.key)
            for f in plan.fields
            if isinstance(f, Introspection | Typename)
        }
        body: dict[str, Any] = {"data": data}
        if result.errors:
            body["errors"] = [_graphql_error(e) for e in result.errors]
        return Result(orjson.dumps(body))

    def _merge_introspection(
        self, prepared: Document, variables: dict[str, Any] | None, plan: OperationPlan, data: bytes
    ) -> Result:
        introspected = orjson.loads(self._introspect(prepared, variables, plan).body)["data"]
        selected = orjson.loads(data)
        merged = {
            f.key: introspected.get(f.key) if isinstance(f, Introspection) else selected.get(f.key)
            for f in plan.fields
        }
        return Result(orjson.dumps({"data": merged}))


_NOT_YOURS = "not allowed to change this row"


_TOO_MANY = (
    "the filter matches {} rows you may change; at most {} change at once (MAX_PAGE_SIZE): "
    "nothing was changed, narrow the filter"
)
_TOO_MANY_RETURNED = (
    "the function returned {} rows; at most {} are returned at once (MAX_PAGE_SIZE): nothing "
    "was changed"
)


async def _create_nested(
    connection: asyncpg.Connection, creates: NestedCreate, variables: dict[str, Any]
) -> bytes:
    """A nested create's levels one after another, each given the rows of those before."""
    written: dict[tuple[str, ...], list[Any]] = {}
    given = {**variables, WRITTEN: written}
    for path, statement in creates.levels:
        written[path] = await connection.fetch(statement.sql, *statement.bind(given))
    answer: bytes = await connection.fetchval(creates.answer.sql, *creates.answer.bind(given))
    return answer


def _one_input_per_key(values: list[Any], key: ColumnInfo) -> None:
    """PostgreSQL cannot update one row twice in a statement: say which inputs collide. A key
    its default fills with the caller's id (`_THE_CALLER`, not in the input) is the same for
    every input: one row per caller."""
    seen: dict[Any, int] = {}
    for i, value in enumerate(values):
        if value is None:  # NULLs are distinct: each is a new row
            continue
        if not isinstance(value, Hashable):  # a JSON or array key
            value = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        first = seen.setdefault(value, i)
        if first != i:
            whose = " (the caller's id)" if value is _THE_CALLER else ""
            raise BadUserInput(
                f"inputs[{i}]: the same `{key.field}` as inputs[{first}]{whose}; one row takes "
                "one input per upsert",
                field=key.field,
            )


_THE_CALLER = object()  # the value of a key its default fills with the caller's id


def _for_caller(error: ApiError, anonymous: bool) -> ApiError:
    # What an anonymous caller may not do, a signed-in one might: say so.
    if anonymous and error.code is Code.FORBIDDEN:
        return ApiError("sign in to do this", code=Code.UNAUTHENTICATED)
    return error


class _AtField(Exception):
    def __init__(self, key: str, error: ApiError) -> None:
        self.key = key
        self.error = error


def _signatures(
    schema: GraphQLSchema, operation: OperationDefinitionNode
) -> tuple[GraphQLVariableSignature, ...] | None:
    signatures = []
    for definition in operation.variable_definitions or ():
        signature = get_variable_signature(schema, definition)
        if not isinstance(signature, GraphQLVariableSignature):
            return None  # not an input type: get_variable_values words the error
        signatures.append(signature)
    return tuple(signatures)


def _given_variables(prepared: Document, inputs: dict[str, Any]) -> dict[str, Any] | None:
    """The variables coerced by graphql-core when each one is given and valid, the usual case;
    None otherwise, for `get_variable_values` to apply defaults or word the errors.

    The same coercion as `get_variable_values`, minus rebuilding each variable's type from the
    document on every request.
    """
    if prepared.variables is None:
        return None
    coerced = {}
    for variable in prepared.variables:
        value = inputs.get(variable.name, Undefined)
        if value is Undefined or input_is_nested_too_deeply(value, variable.type):
            return None
        try:
            value = coerce_input_value(value, variable.type)
        except GraphQLError:  # some scalars and oneOf inputs raise rather than say Undefined
            return None
        if value is Undefined:
            return None
        coerced[variable.name] = value
    return coerced


def _root_sql(emitter: Emitter, f: Any) -> str:
    if isinstance(f, Connection):
        return emitter.connection(f, None)
    if isinstance(f, FunctionValue):
        return emitter.function_value(f.source)
    if isinstance(f, ByKey):
        return emitter.by_key(f)
    if isinstance(f, NodeLookup):
        return emitter.node_lookup(f)
    if isinstance(f, EntityLookup):
        return emitter.entities(f)
    if isinstance(f, Viewer):
        return emitter.viewer(f)
    raise AssertionError(f"no SQL for {f!r}")


def _graphql_error(error: GraphQLError, code: Code = Code.BAD_USER_INPUT) -> dict[str, Any]:
    out: dict[str, Any] = {"message": error.message}
    if error.locations:
        out["locations"] = [{"line": loc.line, "column": loc.column} for loc in error.locations]
    if "Document contains more than" in error.message or "nested too deeply" in error.message:
        code = Code.LIMIT_EXCEEDED
    out["extensions"] = {"code": code.value}
    return out


def _bad(message: str) -> dict[str, Any]:
    return BadUserInput(message).to_dict()


def _stream_result(data: bytes, key: str) -> Result:
    """A stream's run: its answer without the part the service reads, where the page ended
    and whether more rows follow."""
    answer = orjson.loads(data)
    info = answer[key].pop(STREAM_INFO)
    return Result(orjson.dumps({"data": answer}), stream=(info["endCursor"], info["hasNextPage"]))


def _root_fields(
    selections: SelectionSetNode, fragments: dict[str, FragmentDefinitionNode]
) -> Iterator[str]:
    """The names of an operation's root fields, through its fragments."""
    for selection in selections.selections:
        if isinstance(selection, FieldNode):
            yield selection.name.value
        elif isinstance(selection, InlineFragmentNode):
            yield from _root_fields(selection.selection_set, fragments)
        elif isinstance(selection, FragmentSpreadNode):
            fragment = fragments.get(selection.name.value)
            if fragment is not None:
                yield from _root_fields(fragment.selection_set, fragments)


def _errors_body(errors: list[dict[str, Any]], *, data_null: bool = False) -> bytes:
    body: dict[str, Any] = {"errors": errors}
    if data_null:
        body["data"] = None
    return orjson.dumps(body)
