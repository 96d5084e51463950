"""A validated operation → a plan tree: which rows, which columns, which pages, under which keys.

The planner walks graphql-core's AST with the generated schema beside it. It resolves fragments,
aliases, `@skip`/`@include` and arguments. Values that only fill in a statement (ids, cursors,
filter operands given as scalar variables) stay references into the request's variables, so one
plan (and one SQL text) serves every request with the same document and the same *structural*
variables (filters, orderings, booleans, page sizes) — see `structural_key`.

Page sizes are structural although they are scalars: a LIMIT that is a bound parameter makes
PostgreSQL plan the statement anew on every execution (its generic plan, costed for an unknown
limit, never looks cheaper), which took a fifth of Q2's database time; a literal LIMIT lets it
keep one plan. There are at most `max_page_size` + 1 of them per variable.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from graphql import (
    ArgumentNode,
    BooleanValueNode,
    DocumentNode,
    EnumValueNode,
    FieldNode,
    FloatValueNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    NullValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    StringValueNode,
    ValueNode,
    VariableNode,
    Visitor,
    get_named_type,
    get_nullable_type,
    visit,
)

from service.graphql.catalog import (
    ADJUSTMENTS,
    AGGREGATE_FUNCTIONS,
    Catalog,
    ColumnInfo,
    ModelInfo,
    RelationInfo,
    RootFunction,
    aggregate_type,
    enum_name,
)
from service.graphql.errors import BadUserInput, LimitExceeded

Variables = Mapping[str, Any]


# --- values known at execution time --------------------------------------------------------


@dataclass(frozen=True)
class Const:
    value: Any

    def __call__(self, variables: Variables) -> Any:
        return self.value


@dataclass(frozen=True)
class Var:
    name: str

    def __call__(self, variables: Variables) -> Any:
        return variables.get(self.name)


Ref = Const | Var

# A stream subscription's (`postsStream`) own values, under names no GraphQL name can have, so
# never a client's: the cursor it has reached (a variable of its later runs), and where its
# answer carries that cursor on (a part of its connection the service reads and removes).
STREAM_AFTER = "-after"
STREAM_INFO = "-stream"
# An input object whose leaves may be variables: dicts, lists and refs.
InputTree = Any


@dataclass
class Given:
    """An argument's value given as a tree of constants and variables (a list of them)."""

    tree: InputTree

    def __call__(self, variables: Variables) -> Any:
        return resolve_tree(self.tree, variables)


def resolve_tree(tree: InputTree, variables: Variables) -> Any:
    if callable(tree):  # Const, Var, a list or JSON literal holding variables
        return tree(variables)
    if isinstance(tree, dict):
        return {k: resolve_tree(v, variables) for k, v in tree.items()}
    if isinstance(tree, list):
        return [resolve_tree(v, variables) for v in tree]
    return tree


def is_structural(type_: GraphQLInputType) -> bool:
    """Does a variable of this type shape the SQL (rather than fill in a bound value)?"""
    # Scalars other than Boolean bind, also in lists (`in: $ids` binds as one array); inputs,
    # enums and Booleans (filters, orderings, `@skip`) shape the statement.
    named = get_named_type(type_)
    return not isinstance(named, GraphQLScalarType) or named.name == "Boolean"


def structural_variables(
    document: DocumentNode, variable_types: Mapping[str, GraphQLInputType]
) -> frozenset[str]:
    """The variables whose values shape the plan, once per document: those of structural
    types (see `is_structural`) and page sizes (see the module's docstring), except those
    used only in mutations' `input`: a write's values are bound, whatever their type
    (`createPost(input: $post)` would otherwise be planned anew for every post)."""
    typed = {name for name, type_ in variable_types.items() if is_structural(type_)}
    return frozenset((typed - _input_only_variables(document)) | page_size_variables(document))


# The arguments of createX / createXs / updateX holding the rows' values, the only arguments
# of these names in the generated schema: the planner reads them as values only (`_write`), so
# their variables can stay references. Another argument named so must be read the same way.
WRITE_INPUT_ARGUMENTS = frozenset(("input", "inputs", *ADJUSTMENTS))


def _input_only_variables(document: DocumentNode) -> set[str]:
    """Variables used in write input arguments and nowhere else."""
    in_input: set[str] = set()
    elsewhere: set[str] = set()
    depth = 0  # inside a write input argument

    class Collect(Visitor):
        def enter_variable_definition(self, *_: Any) -> Any:
            return self.SKIP  # `$x: T` declares, it does not use

        def enter_argument(self, node: ArgumentNode, *_: Any) -> None:
            nonlocal depth
            depth += node.name.value in WRITE_INPUT_ARGUMENTS

        def leave_argument(self, node: ArgumentNode, *_: Any) -> None:
            nonlocal depth
            depth -= node.name.value in WRITE_INPUT_ARGUMENTS

        def enter_variable(self, node: VariableNode, *_: Any) -> None:
            (in_input if depth else elsewhere).add(node.name.value)

    visit(document, Collect())
    return in_input - elsewhere


def structural_key(
    operation: OperationDefinitionNode, variables: Variables, structural: frozenset[str]
) -> tuple[Any, ...]:
    """What of the variables a cached plan depends on: structural values, and which are null."""
    parts: list[Any] = []
    for definition in operation.variable_definitions or ():
        name = definition.variable.name.value
        value = variables.get(name)
        parts.append((name, _freeze(value)) if name in structural else (name, value is None))
    return tuple(parts)


PAGE_SIZE_ARGUMENTS = ("first", "last")


def page_size_variables(document: DocumentNode) -> frozenset[str]:
    """The variables a document passes as `first` or `last`: page sizes (see above)."""
    names: set[str] = set()

    class Collect(Visitor):
        def enter_argument(self, node: ArgumentNode, *_: Any) -> None:
            if node.name.value in PAGE_SIZE_ARGUMENTS and isinstance(node.value, VariableNode):
                names.add(node.value.name.value)

    visit(document, Collect())
    return frozenset(names)


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple((k, _freeze(v)) for k, v in value.items())
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return getattr(value, "value", value)  # enums by value


# --- the plan tree -------------------------------------------------------------------------


@dataclass
class Typename:
    key: str
    name: str


@dataclass
class ColumnField:
    key: str
    column: ColumnInfo
    # a computed column's arguments besides the row, as given (`searchRank(query: $q)`)
    arguments: tuple[Ref | Given, ...] = ()


@dataclass
class NodeIdField:
    key: str


@dataclass
class ToOne:
    key: str
    relation: RelationInfo
    target: ObjectSelection


@dataclass
class ObjectSelection:
    model: ModelInfo
    fields: list[Any] = field(
        default_factory=list
    )  # ColumnField|NodeIdField|ToOne|Connection|Typename


@dataclass(frozen=True)
class OrderKey:
    """One sort key: a column of the row, or a value reached through its relations.

    `path` leads from the row through many-to-one relations to the row holding `column`; when
    its last relation is one-to-many, `function` aggregates that relation's rows (`count`, or
    min/max/sum/avg of `column`). Related rows are those the caller can see, so a hidden or
    missing one sorts as null. `value` is the sorted value as cursors and keyset comparisons
    see it: its type, and whether it can be null.
    """

    column: ColumnInfo | None  # None: `count`
    descending: bool
    path: tuple[RelationInfo, ...] = ()
    function: str | None = None
    # Nulls sort as the least value (ASC_NULLS_FIRST, DESC_NULLS_LAST), not the greatest.
    nulls_low: bool = False
    # a computed column's arguments besides the row (a query function's rank takes its
    # function's), as ColumnField's
    arguments: tuple[Ref | Given, ...] = field(default=(), compare=False, hash=False)

    @property
    def derived(self) -> bool:
        """Computed beside each row (through relations, or by a computed column's function)
        rather than read from it."""
        return bool(self.path) or (self.column is not None and self.column.computed is not None)

    @cached_property
    def value(self) -> ColumnInfo:
        if self.column is None or (
            self.function and AGGREGATE_FUNCTIONS[self.function][1] == "Int"
        ):  # counts: never null
            return COUNT
        if self.function and AGGREGATE_FUNCTIONS[self.function][1] == "Float":  # see sql.py
            return replace(
                self.column,
                python_type=float,
                scalar="Float",
                sql_type="float8",
                nullable=True,
                primary_key=False,
            )
        if self.path:  # a related row may be hidden, or a one-to-many relation have no rows
            return replace(self.column, nullable=True, primary_key=False)
        return self.column

    @property
    def label(self) -> str:
        """What the key sorts by, as its orderBy entry names it: `author.email`."""
        names = [r.field for r in self.path]
        names += [n for n in (self.function, self.column and self.column.field) if n]
        return ".".join(names)


COUNT = ColumnInfo(
    name="count",
    field="count",
    python_type=int,
    scalar="Int",
    sql_type="bigint",
    nullable=False,
    primary_key=False,
    private=False,
    touch_on_update=False,
)


def rank_column(function: RootFunction) -> ColumnInfo:
    """A query function's rank of a row, as a sort key sees it: a float, maybe null."""
    assert function.rank is not None
    return replace(
        COUNT,
        name="rank",
        field="rank",
        python_type=float,
        scalar="Float",
        sql_type="float8",
        nullable=True,
        computed=function.rank,
        arguments=function.arguments,
    )


@dataclass
class Compare:
    column: ColumnInfo
    operator: str
    value: Ref  # for isNull: a Const bool


@dataclass
class BoolOp:
    op: str  # "and" | "or" | "not"
    items: list[Any]


@dataclass
class RelatedRows:
    """A condition on a row's related rows, those the caller can see: some, every or none of
    them match. A many-to-one relation's filter is "some": its row exists and matches."""

    relation: RelationInfo
    quantifier: str  # "some" | "every" | "none"
    condition: Any  # Compare | BoolOp | RelatedRows | RelatedCount | None (any row)


@dataclass
class RelatedCount:
    """How many of a row's one-to-many related rows the caller can see, compared."""

    relation: RelationInfo
    compares: list[Compare]  # on COUNT


@dataclass
class Page:
    first: Const | None  # page sizes are known when planning
    last: Const | None
    after: Ref | None
    before: Ref | None

    @property
    def backward(self) -> bool:
        return self.last is not None


@dataclass
class Cursor:
    key: str


@dataclass
class EdgeNode:
    key: str
    selection: ObjectSelection


@dataclass
class Edges:
    key: str
    parts: list[Any]  # Cursor | EdgeNode | Typename


@dataclass
class Nodes:
    key: str
    selection: ObjectSelection


@dataclass
class PageInfoField:
    key: str
    parts: list[tuple[str, str]]  # (response key, hasNextPage|...|__typename)


@dataclass
class TotalCount:
    key: str


@dataclass
class AggregateCount:
    key: str


@dataclass
class AggregateValues:
    key: str
    function: str  # a key of AGGREGATE_FUNCTIONS
    parts: list[Any]  # (response key, ColumnInfo) | Typename


@dataclass
class Aggregates:
    """`aggregates` of a connection: over all its matching rows, not only the page."""

    key: str
    parts: list[Any]  # AggregateCount | AggregateValues | Typename


@dataclass
class GroupKeys:
    """`keys` of a group: the grouped values, by response key (null for others)."""

    key: str
    parts: list[Any]  # (response key, ColumnInfo) | Typename


@dataclass
class GroupedAggregates:
    """`groupedAggregates` of a connection: its matching rows grouped, aggregates per group."""

    key: str
    group_by: list[tuple[ColumnInfo, str | None]]  # a column, truncated to a unit or not
    # groups sorted by aggregates first: (function, its column or None for count, descending,
    # nulls low)
    order: list[tuple[str, ColumnInfo | None, bool, bool]]
    # which groups: (function, its column or None for count, a comparison of the value)
    having: list[tuple[str, ColumnInfo | None, Compare]]
    first: int  # groups at most, in that order and then the keys'
    parts: list[Any]  # AggregateCount | AggregateValues | GroupKeys | Typename


@dataclass
class RowFunction:
    function: RootFunction
    arguments: tuple[Ref | Given, ...]  # a Const(None) for an argument left out
    of_row: bool = False  # a computed relation's: called with its parent's row first


@dataclass
class FunctionValue:
    """A root field whose value is what a SQL function returns (`unreadCount: Int`)."""

    key: str
    source: RowFunction


@dataclass
class Connection:
    key: str
    model: ModelInfo
    relation: RelationInfo | None  # to the parent row, for nested connections
    page: Page
    condition: Any  # Compare | BoolOp | RelatedRows | RelatedCount | None
    order: list[OrderKey]
    # Nodes | Edges | PageInfoField | TotalCount | Aggregates | GroupedAggregates | Typename
    parts: list[Any]
    # A query function's connection: its rows are what the function returns for these values.
    source: RowFunction | None = None
    stream: bool = False  # a stream subscription's: its page moves on from run to run
    # `distinctOn`: only the first row (in `order`) of each distinct combination of these
    # values, each a column as it is or truncated (as `groupBy` names them)
    distinct: list[tuple[ColumnInfo, str | None]] = field(default_factory=list)

    @property
    def order_signature(self) -> str:
        # The type too: a cursor of another type's connection in the same order is refused.
        keys = ",".join(
            f"{k.label}:{'D' if k.descending else 'A'}{'n' if k.nulls_low else ''}"
            for k in self.order
        )
        return f"{self.model.type_name}/{keys}"


@dataclass
class ByKey:
    """One row by unique values: its id, a unique column's, or all of a key of several."""

    key: str
    model: ModelInfo
    match: tuple[tuple[ColumnInfo, Ref], ...]  # each column with its value
    selection: ObjectSelection


@dataclass
class NodeLookup:
    key: str
    node_id: Ref
    selections: dict[str, ObjectSelection]  # by type name


@dataclass
class EntityLookup:
    """Apollo Federation's `_entities`: the rows a router names by type and key (its
    `representations`), in their order; null where the caller sees no such row."""

    key: str
    representations: Given
    selections: dict[str, ObjectSelection]  # by type name


@dataclass
class Viewer:
    key: str
    selection: ObjectSelection


@dataclass
class Introspection:
    key: str
    nodes: list[FieldNode]


@dataclass
class Write:
    key: str
    kind: str  # "create" | "update" | "delete", or one of them with "_many"
    model: ModelInfo
    match: tuple[tuple[ColumnInfo, Ref], ...]  # updateX / deleteX: the row's key, by column
    input: InputTree | None
    selection: ObjectSelection
    condition: Any = None  # updateXs / deleteXs: the rows their filter matches
    conflict: ColumnInfo | None = None  # upsertX(s): the unique column naming an existing row
    source: RowFunction | None = None  # a mutation function: the call whose rows it returns
    # updates: changes other than values to set, by argument (ADJUSTMENTS: `increment`)
    adjust: dict[str, InputTree] = field(default_factory=dict)
    # Its SQL per set of columns written (execute.py fills it): input values are bound.
    compiled: dict[tuple[Any, ...], Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass
class OperationPlan:
    kind: OperationType
    root_type: str
    fields: list[Any]  # root fields in response order
    stream: str | None = None  # a stream subscription: its root field's response key

    # cached: a plan serves every request of its operation
    @cached_property
    def has_introspection(self) -> bool:
        return any(isinstance(f, Introspection) for f in self.fields)

    @cached_property
    def only_introspection(self) -> bool:
        return all(isinstance(f, Introspection | Typename) for f in self.fields)


# --- the planner ---------------------------------------------------------------------------


class Planner:
    def __init__(
        self,
        schema: GraphQLSchema,
        catalog: Catalog,
        *,
        default_page_size: int,
        max_depth: int,
    ) -> None:
        self.schema = schema
        self.catalog = catalog
        self.default_page_size = default_page_size
        self.max_depth = max_depth
        self.connection_types = {f"{m.type_name}Connection": m for m in catalog}
        self.mutations: dict[str, tuple[str, ModelInfo]] = {}
        # updateX / deleteX and updateXByY / deleteXByY: the columns naming their row
        self.named_by: dict[str, tuple[ColumnInfo, ...]] = {}
        for m in catalog:
            for kind, field_name in m.mutation_names.items():
                self.mutations[field_name] = (kind, m)
                if kind in ("update", "delete"):
                    self.named_by[field_name] = (m.primary_key,)
            for function in m.mutation_functions:
                self.mutations[function.field] = ("call", m)
            for field_name, (kind, columns) in m.writes_by_key.items():
                self.mutations[field_name] = (kind, m)
                self.named_by[field_name] = columns

    def plan(
        self,
        operation: OperationDefinitionNode,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: Variables,
        variable_types: Mapping[str, GraphQLInputType],
        *,
        resumed: bool = False,
    ) -> OperationPlan:
        """`resumed`: a stream's later runs, which read on from the cursor it reached."""
        ctx = _Context(fragments, variables, variable_types, self.schema)
        ctx.resumed = resumed
        root = self.schema.get_root_type(operation.operation)
        assert root is not None
        fields: list[Any] = []
        for key, nodes in ctx.collect(operation.selection_set, root.name).items():
            name = nodes[0].name.value
            if name == "__typename":
                fields.append(Typename(key, root.name))
            elif name.startswith("__") or name == "_service":
                # the schema's own description; a subgraph's SDL is one too
                fields.append(Introspection(key, nodes))
            elif operation.operation is OperationType.MUTATION:
                fields.append(self._write(ctx, key, nodes))
            else:
                fields.append(self._root_query_field(ctx, root, key, nodes))
        stream = next((f.key for f in fields if isinstance(f, Connection) and f.stream), None)
        return OperationPlan(operation.operation, root.name, fields, stream)

    # root fields

    def _root_query_field(
        self, ctx: _Context, root: GraphQLObjectType, key: str, nodes: list[FieldNode]
    ) -> Any:
        name = nodes[0].name.value
        args = nodes[0].arguments
        if name == "node":
            node_id = _required(ctx.scalar_ref(args, "nodeId"), "nodeId")
            selections = {
                m.type_name: self._object(ctx, m, nodes) for m in self.catalog if m.keyed_by_one
            }
            return NodeLookup(key, node_id, selections)
        if name == "_entities":
            arg_type = root.fields[name].args["representations"].type
            given = ctx.input_tree(args, "representations", arg_type, values_only=True)
            selections = {m.type_name: self._object(ctx, m, nodes) for m in self.catalog}
            return EntityLookup(key, Given(given), selections)
        if name == "viewer":
            viewer = next(m for m in self.catalog if m.table.fullname == "auth.users")
            return Viewer(key, self._object(ctx, viewer, nodes))
        for model in self.catalog:
            if name == model.single:
                pk = model.primary_key
                id_ref = _required(ctx.scalar_ref(args, pk.field), pk.field)
                return ByKey(key, model, ((pk, id_ref),), self._object(ctx, model, nodes))
            if name == model.plural:
                return self._connection(ctx, key, model, None, nodes)
            if name == f"{model.plural}Stream":
                return self._stream(ctx, key, model, nodes)
            for function in model.query_functions:
                if name == function.field:
                    given = self._arguments(ctx, root.name, name, function.arguments, args)
                    source = RowFunction(function, given)
                    if function.returns is not None:
                        return FunctionValue(key, source)
                    connection = self._connection(ctx, key, model, None, nodes)
                    connection.source = source
                    ordered = ctx.structural(args, "orderBy", f"[{model.type_name}OrderBy!]")
                    if function.rank is not None and not _plain(ordered):
                        # no order asked for: the function's best rows first
                        best = OrderKey(rank_column(function), True, arguments=given)
                        connection.order = [best, *connection.order]
                    return connection
            columns = model.lookups.get(name)
            if columns is not None:
                match = tuple(
                    (c, _required(ctx.scalar_ref(args, c.field), c.field)) for c in columns
                )
                return ByKey(key, model, match, self._object(ctx, model, nodes))
        raise AssertionError(f"unplanned root field {name}")  # the schema has no other fields

    def _write(self, ctx: _Context, key: str, nodes: list[FieldNode]) -> Write:
        name = nodes[0].name.value
        kind, model = self.mutations[name]
        args = nodes[0].arguments
        if kind == "call":
            function = next(f for f in model.mutation_functions if f.field == name)
            given = self._arguments(ctx, "Mutation", name, function.arguments, args)
            source = RowFunction(function, given)
            # a function's value has no selection of the model's
            selection = ObjectSelection(model)
            if function.returns is None:
                selection = self._object(ctx, model, nodes)
            return Write(key, kind, model, (), None, selection, source=source)
        match = tuple(
            (c, _required(ctx.scalar_ref(args, c.field), c.field))
            for c in self.named_by.get(name, ())
        )
        input_tree = None
        if kind not in ("delete", "delete_many"):
            argument = "inputs" if kind in ("create_many", "upsert_many") else "input"
            arg_type = self._argument_type(ctx, "Mutation", name, argument)
            input_tree = ctx.input_tree(args, argument, arg_type, values_only=True)
            _required(None if _plain(input_tree) is None else input_tree, argument)
        condition = None
        if kind in ("update_many", "delete_many"):
            given = ctx.structural(args, "filter", f"{model.type_name}Filter")
            _required(None if _plain(given) is None else given, "filter")  # `{}`: every row
            condition = self._condition(model, given)
        conflict = None
        if kind in ("upsert", "upsert_many"):
            conflict = self._upsert_key(ctx, model, args)
        adjust = {}
        for adjustment in ADJUSTMENTS if kind in ("update", "update_many") else ():
            if model.adjustable(adjustment):
                arg_type = self._argument_type(ctx, "Mutation", name, adjustment)
                adjust[adjustment] = ctx.input_tree(args, adjustment, arg_type, values_only=True)
        selection = self._object(ctx, model, nodes)
        return Write(
            key,
            kind,
            model,
            match,
            input_tree,
            selection,
            condition,
            conflict,
            adjust=adjust,
        )

    @staticmethod
    def _upsert_key(ctx: _Context, model: ModelInfo, args: Any) -> ColumnInfo:
        # An enum, so part of the plan's key: the conflict target is SQL text, not a value.
        given = ctx.known_ref(args, "onConflict")
        if given is None:
            return model.upsert_keys[0]  # the schema's default
        name = getattr(given.value, "name", given.value)  # a variable's enum member, or a name
        for column in model.upsert_keys:
            if enum_name(column) == name:
                return column
        raise BadUserInput(f"`onConflict`: no unique key {name}", field="onConflict")

    def _arguments(
        self,
        ctx: _Context,
        parent: str,
        field_name: str,
        arguments: tuple[ColumnInfo, ...],
        args: Any,
    ) -> tuple[Ref | Given, ...]:
        """A SQL function's arguments as given to its field (`field_name` of the type
        `parent`); one left out (or null) is passed as null."""
        values: list[Ref | Given] = []
        for a in arguments:
            if a.array:  # a list, whose items may be variables
                type_ = self._argument_type(ctx, parent, field_name, a.field)
                tree = ctx.input_tree(args, a.field, type_, values_only=True)
                values.append(Const(None) if tree is None else Given(tree))
            else:
                values.append(ctx.scalar_ref(args, a.field) or Const(None))
        return tuple(values)

    def _argument_type(self, ctx: _Context, type_name: str, field_name: str, arg: str) -> Any:
        parent = self.schema.get_type(type_name)
        assert isinstance(parent, GraphQLObjectType)
        return parent.fields[field_name].args[arg].type

    # objects and connections

    def _object(
        self, ctx: _Context, model: ModelInfo, nodes: Iterable[FieldNode]
    ) -> ObjectSelection:
        selection = ObjectSelection(model)
        for key, subnodes in ctx.collect_many(nodes, model.type_name).items():
            name = subnodes[0].name.value
            if name == "__typename":
                selection.fields.append(Typename(key, model.type_name))
            elif name == "nodeId":
                selection.fields.append(NodeIdField(key))
            elif name in model.columns:
                selection.fields.append(ColumnField(key, model.columns[name]))
            elif name in model.computed_calls:
                column = model.computed_calls[name]
                arguments = subnodes[0].arguments
                given = self._arguments(ctx, model.type_name, name, column.arguments, arguments)
                selection.fields.append(ColumnField(key, column, given))
            elif name in model.computed_relations:
                target_name, function = model.computed_relations[name]
                arguments = subnodes[0].arguments
                given = self._arguments(ctx, model.type_name, name, function.arguments, arguments)
                target = self.catalog[target_name]
                connection = self._connection(ctx, key, target, None, subnodes)
                connection.source = RowFunction(function, given, of_row=True)
                selection.fields.append(connection)
            else:
                relation = model.relations[name]
                target = self.catalog[relation.target]
                if relation.to_many:
                    selection.fields.append(self._connection(ctx, key, target, relation, subnodes))
                else:
                    selection.fields.append(
                        ToOne(key, relation, self._object(ctx, target, subnodes))
                    )
        return selection

    def _connection(
        self,
        ctx: _Context,
        key: str,
        model: ModelInfo,
        relation: RelationInfo | None,
        nodes: list[FieldNode],
    ) -> Connection:
        args = nodes[0].arguments
        # known when planning: part of the plan's key (see structural_variables)
        first = ctx.known_ref(args, "first")
        last = ctx.known_ref(args, "last")
        if first is not None and last is not None:
            raise BadUserInput("give either `first` or `last`, not both")
        if first is None and last is None:
            first = Const(self.default_page_size)
        page = Page(first, last, ctx.scalar_ref(args, "after"), ctx.scalar_ref(args, "before"))
        condition = self._condition(
            model, ctx.structural(args, "filter", f"{model.type_name}Filter")
        )
        order = self._order(model, ctx.structural(args, "orderBy", f"[{model.type_name}OrderBy!]"))
        distinct_on = ctx.structural(args, "distinctOn", f"[{model.type_name}GroupBy!]")
        distinct = _group_by(model, distinct_on, "distinctOn") if _plain(distinct_on) else []
        conn_type = f"{model.type_name}Connection"
        parts: list[Any] = []
        for part_key, subnodes in ctx.collect_many(nodes, conn_type).items():
            name = subnodes[0].name.value
            if name == "__typename":
                parts.append(Typename(part_key, conn_type))
            elif name == "nodes":
                parts.append(Nodes(part_key, self._object(ctx, model, subnodes)))
            elif name == "totalCount":
                parts.append(TotalCount(part_key))
            elif name == "aggregates":
                parts.append(Aggregates(part_key, self._aggregate_parts(ctx, model, subnodes)))
            elif name == "groupedAggregates":
                parts.append(self._grouped(ctx, part_key, model, subnodes))
            elif name == "pageInfo":
                info = [
                    (k, n[0].name.value) for k, n in ctx.collect_many(subnodes, "PageInfo").items()
                ]
                parts.append(PageInfoField(part_key, info))
            else:  # edges
                edge_type = f"{model.type_name}Edge"
                edge_parts: list[Any] = []
                for edge_key, edge_nodes in ctx.collect_many(subnodes, edge_type).items():
                    edge_field = edge_nodes[0].name.value
                    if edge_field == "cursor":
                        edge_parts.append(Cursor(edge_key))
                    elif edge_field == "node":
                        edge_parts.append(EdgeNode(edge_key, self._object(ctx, model, edge_nodes)))
                    else:
                        edge_parts.append(Typename(edge_key, edge_type))
                parts.append(Edges(part_key, edge_parts))
        return Connection(key, model, relation, page, condition, order, parts, distinct=distinct)

    def _stream(
        self, ctx: _Context, key: str, model: ModelInfo, nodes: list[FieldNode]
    ) -> Connection:
        """A stream subscription: the page after its cursor, which the service moves on to
        the last row it sent (so it also reads where the page ends and whether more follow)."""
        connection = self._connection(ctx, key, model, None, nodes)
        if ctx.resumed:
            connection.page.after = Var(STREAM_AFTER)
        end = [("endCursor", "endCursor"), ("hasNextPage", "hasNextPage")]
        connection.parts.append(PageInfoField(STREAM_INFO, end))
        connection.stream = True
        return connection

    def _grouped(
        self, ctx: _Context, key: str, model: ModelInfo, nodes: list[FieldNode]
    ) -> GroupedAggregates:
        args = nodes[0].arguments
        type_name = model.type_name
        group_by = _group_by(model, ctx.structural(args, "groupBy", f"[{type_name}GroupBy!]"))
        order = _group_order(
            model, ctx.structural(args, "orderBy", f"[{type_name}AggregatesOrderBy!]")
        )
        having = _having(model, ctx.structural(args, "having", f"{type_name}GroupHaving"))
        first = ctx.known_ref(args, "first")
        size = self.default_page_size if first is None else first.value
        parts = self._aggregate_parts(ctx, model, nodes, grouped=True)
        return GroupedAggregates(key, group_by, order, having, size, parts)

    def _aggregate_parts(
        self, ctx: _Context, model: ModelInfo, nodes: list[FieldNode], *, grouped: bool = False
    ) -> list[Any]:
        """The selection of `aggregates`, or of `groupedAggregates` (its groups' `keys` too)."""
        type_name = f"{model.type_name}{'Group' if grouped else 'Aggregates'}"
        parts: list[Any] = []
        for part_key, subnodes in ctx.collect_many(nodes, type_name).items():
            function = subnodes[0].name.value
            if function == "__typename":
                parts.append(Typename(part_key, type_name))
            elif function == "count":
                parts.append(AggregateCount(part_key))
            elif function == "keys":
                keys_type = f"{model.type_name}GroupKeys"
                parts.append(GroupKeys(part_key, _columns(ctx, model, subnodes, keys_type)))
            else:
                values_type = aggregate_type(model.type_name, function)
                values = _columns(ctx, model, subnodes, values_type)
                parts.append(AggregateValues(part_key, function, values))
        return parts

    def _order(self, model: ModelInfo, value: Any) -> list[OrderKey]:
        keys: list[OrderKey] = []
        for entry in _plain(value) or []:
            key = self._order_key(model, entry, ())
            if all(k.label != key.label for k in keys):
                keys.append(key)
        for column in model.key:  # the tie-breaker: the primary key, all its columns
            if all(k.label != column.field for k in keys):
                keys.append(OrderKey(column, False))
        return keys

    def _order_key(self, model: ModelInfo, entry: Any, path: tuple[RelationInfo, ...]) -> OrderKey:
        """One orderBy entry: a column, or a relation's entry, nested as deep as selections."""
        name, operand = _only_entry(entry)
        relation = model.relations.get(name)
        if relation is None:
            descending, nulls_low = _direction(operand)
            return OrderKey(model.columns[name], descending, path, nulls_low=nulls_low)
        if len(path) >= self.max_depth:
            raise LimitExceeded(f"an `orderBy` may go through at most {self.max_depth} relations")
        target = self.catalog[relation.target]
        path = (*path, relation)
        if not relation.to_many:
            return self._order_key(target, operand, path)
        function, operand = _only_entry(operand)
        if function == "count":
            descending, nulls_low = _direction(operand)
            return OrderKey(None, descending, path, function, nulls_low=nulls_low)
        field_name, direction = _only_entry(operand)
        descending, nulls_low = _direction(direction)
        column = target.columns[field_name]
        return OrderKey(column, descending, path, function, nulls_low=nulls_low)

    def _condition(self, model: ModelInfo, value: Any, hops: int = 0) -> Any:
        """The filter as a condition tree; `hops` counts the relations passed through, held to
        the depth limit of selections: each is a sub-select PostgreSQL plans and runs per row."""
        value = _plain(value)
        if not value:
            return None
        items: list[Any] = []
        for name, operand in value.items():
            operand = _plain(operand)
            if operand is None:
                continue
            if name == "and":
                items.append(
                    BoolOp(
                        "and",
                        [self._condition(model, v, hops) or BoolOp("and", []) for v in operand],
                    )
                )
            elif name == "or":
                items.append(
                    BoolOp(
                        "or",
                        [self._condition(model, v, hops) or BoolOp("and", []) for v in operand],
                    )
                )
            elif name == "not":
                inner = self._condition(model, operand, hops)
                items.append(BoolOp("not", [inner or BoolOp("and", [])]))
            elif name in model.relations:
                if hops >= self.max_depth:
                    raise LimitExceeded(
                        f"a filter may go through at most {self.max_depth} relations"
                    )
                relation = model.relations[name]
                target = self.catalog[relation.target]
                quantified = operand.items() if relation.to_many else [("some", operand)]
                for quantifier, inner in quantified:
                    inner = _plain(inner)
                    if inner is None:
                        continue
                    if quantifier == "count":
                        items.append(RelatedCount(relation, _compares(COUNT, inner)))
                    else:
                        condition = self._condition(target, inner, hops + 1)
                        items.append(RelatedRows(relation, quantifier, condition))
            else:
                items += _compares(model.columns[name], operand)
        if len(items) == 1:
            return items[0]
        return BoolOp("and", items)


class _Context:
    """One planning pass: fragments, variables and field collection."""

    def __init__(
        self,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: Variables,
        variable_types: Mapping[str, GraphQLInputType],
        schema: GraphQLSchema,
    ) -> None:
        self.fragments = fragments
        self.variables = variables
        self.variable_types = variable_types
        self.schema = schema
        self.resumed = False  # see Planner.plan

    # field collection (GraphQL spec CollectFields)

    def collect(
        self, selection_set: SelectionSetNode, type_name: str
    ) -> dict[str, list[FieldNode]]:
        fields: dict[str, list[FieldNode]] = {}
        self._collect_into(fields, selection_set, type_name, set())
        return fields

    def collect_many(
        self, nodes: Iterable[FieldNode], type_name: str
    ) -> dict[str, list[FieldNode]]:
        fields: dict[str, list[FieldNode]] = {}
        for node in nodes:
            if node.selection_set is not None:
                self._collect_into(fields, node.selection_set, type_name, set())
        return fields

    def _collect_into(
        self,
        fields: dict[str, list[FieldNode]],
        selection_set: SelectionSetNode,
        type_name: str,
        visited: set[str],
    ) -> None:
        for selection in selection_set.selections:
            if not self._included(selection):
                continue
            if isinstance(selection, FieldNode):
                key = selection.alias.value if selection.alias else selection.name.value
                fields.setdefault(key, []).append(selection)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                if condition is None or self._applies(condition.name.value, type_name):
                    self._collect_into(fields, selection.selection_set, type_name, visited)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if name in visited or fragment is None:
                    continue
                visited.add(name)
                if self._applies(fragment.type_condition.name.value, type_name):
                    self._collect_into(fields, fragment.selection_set, type_name, visited)

    def _applies(self, condition: str, type_name: str) -> bool:
        if condition == type_name:
            return True
        abstract = self.schema.get_type(condition)
        concrete = self.schema.get_type(type_name)
        if isinstance(concrete, GraphQLObjectType) and abstract is not None:
            return self.schema.is_sub_type(abstract, concrete)  # type: ignore[arg-type]
        return False

    def _included(self, selection: Any) -> bool:
        for directive in selection.directives or ():
            name = directive.name.value
            if name not in ("skip", "include"):
                continue
            value = directive.arguments[0].value
            flag = self._boolean(value)
            if (name == "skip" and flag) or (name == "include" and not flag):
                return False
        return True

    def _boolean(self, node: ValueNode) -> bool:
        if isinstance(node, VariableNode):
            return bool(_required(self.variables.get(node.name.value), "if"))
        return isinstance(node, BooleanValueNode) and node.value

    # arguments

    def _argument(self, arguments: Any, name: str) -> ValueNode | None:
        for argument in arguments or ():
            if argument.name.value == name:
                return argument.value
        return None

    def scalar_ref(self, arguments: Any, name: str) -> Ref | None:
        """A scalar argument as a reference; None when absent or null (known per plan)."""
        node = self._argument(arguments, name)
        return self._scalar_node_ref(node)

    def known_ref(self, arguments: Any, name: str) -> Const | None:
        """A scalar argument whose value is part of the plan's key, as a constant."""
        ref = self.scalar_ref(arguments, name)
        return None if ref is None else Const(ref(self.variables))

    def _scalar_node_ref(self, node: ValueNode | None) -> Ref | None:
        if node is None or isinstance(node, NullValueNode):
            return None
        if isinstance(node, VariableNode):
            name = node.name.value
            if self.variables.get(name) is None:
                return None
            return Var(name)
        return Const(_literal(node))

    def structural(self, arguments: Any, name: str, type_name: str) -> Any:
        """An input-object argument, with scalar leaves left as references."""
        node = self._argument(arguments, name)
        if node is None:
            return None
        listed = type_name.startswith("[")
        named = self.schema.get_type(type_name.strip("[!]"))
        assert named is not None
        return self._tree(node, GraphQLList(named) if listed else named)

    def input_tree(
        self, arguments: Any, name: str, type_: Any, *, values_only: bool = False
    ) -> InputTree:
        """An argument as a tree of constants and references to variables. `values_only`: the
        argument is only ever read as values (a mutation's input, validated and bound when it
        runs), so every variable in it stays a reference, input objects too."""
        node = self._argument(arguments, name)
        return None if node is None else self._tree(node, type_, values_only)

    def _tree(self, node: ValueNode, type_: Any, values_only: bool = False) -> Any:
        """`type_` is the input type at this place: GraphQL reads a single value given where
        a list is expected as a list of that one value (`orderBy: {title: ASC}`)."""
        type_ = get_nullable_type(type_)
        if isinstance(node, VariableNode):
            var_name = node.name.value
            value = self.variables.get(var_name)
            var_type = self.variable_types.get(var_name)
            if values_only or (var_type is not None and not is_structural(var_type)):
                return Var(var_name) if value is not None else Const(None)
            return _wrap_leaves(value, var_type)
        if isinstance(type_, GraphQLList) and not isinstance(node, ListValueNode | NullValueNode):
            return self._tree(ListValueNode(values=(node,)), type_, values_only)
        if isinstance(type_, GraphQLScalarType) and isinstance(
            node, ObjectValueNode | ListValueNode
        ):
            # a JSON literal: one value, whose leaves may be variables
            return _JsonRef(self._tree(node, None, values_only))
        if isinstance(node, ObjectValueNode):
            fields = type_.fields if isinstance(type_, GraphQLInputObjectType) else {}
            return {
                f.name.value: self._tree(f.value, _field_type(fields, f.name.value), values_only)
                for f in node.fields
            }
        if isinstance(node, ListValueNode):
            # a list of scalars binds as one array value
            item_type = type_.of_type if isinstance(type_, GraphQLList) else None
            items = [self._tree(v, item_type, values_only) for v in node.values]
            if all(isinstance(i, Const) for i in items):
                return Const([i.value for i in items])
            if all(not isinstance(i, dict) for i in items):
                return _ListRef(tuple(items))
            return items
        return Const(_literal(node))  # enum values too, by name


@dataclass(frozen=True)
class _JsonRef:
    """A JSON object or list literal, bound as one value: `contains: {tags: [$tag]}`."""

    tree: Any

    def __call__(self, variables: Variables) -> Any:
        return resolve_tree(self.tree, variables)


@dataclass(frozen=True)
class _ListRef:
    """A list literal mixing constants and variables (`in: [$a, "b"]`): one array value."""

    items: tuple[Any, ...]

    def __call__(self, variables: Variables) -> Any:
        return [item(variables) for item in self.items]


def _field_type(fields: Mapping[str, Any], name: str) -> Any:
    found = fields.get(name)
    return None if found is None else found.type


def _group_by(
    model: ModelInfo, given: Any, argument: str = "groupBy"
) -> list[tuple[ColumnInfo, str | None]]:
    """`groupBy` (or `distinctOn`): each column once, as it is or truncated."""
    choices = model.group_choices()
    group_by: list[tuple[ColumnInfo, str | None]] = []
    for value in _required(_plain(given), argument):
        name = getattr(_plain(value), "name", _plain(value))  # a variable's member, or a name
        column, unit = choices[name]
        if any(c is column for c, _ in group_by):
            raise BadUserInput(
                f"`{argument}`: name {column.field} once (as it is, or truncated)",
                field=argument,
            )
        group_by.append((column, unit))
    if not group_by:
        raise BadUserInput(f"`{argument}`: name at least one value", field=argument)
    return group_by


def _group_order(model: ModelInfo, given: Any) -> list[tuple[str, ColumnInfo | None, bool, bool]]:
    """A group's `orderBy`: (function, its column or None for count, descending, nulls low)
    each."""
    order: list[tuple[str, ColumnInfo | None, bool, bool]] = []
    for entry in _plain(given) or []:
        function, operand = _only_entry(entry)
        if function == "count":
            order.append((function, None, *_direction(operand)))
        else:
            field_name, direction = _only_entry(operand)
            order.append((function, model.columns[field_name], *_direction(direction)))
    return order


def _having(model: ModelInfo, given: Any) -> list[tuple[str, ColumnInfo | None, Compare]]:
    """`having`: (function, its column or None for count, a comparison of its value) each."""
    having: list[tuple[str, ColumnInfo | None, Compare]] = []
    for function, operand in (_plain(given) or {}).items():
        operand = _plain(operand) or {}
        if function == "count":
            having += [(function, None, c) for c in _compares(COUNT, operand)]
            continue
        for field_name, operators in operand.items():
            column = model.columns[field_name]
            value = OrderKey(column, False, (), function).value  # the aggregate's type
            having += [(function, column, c) for c in _compares(value, _plain(operators) or {})]
    return having


def _compares(column: ColumnInfo, operators: dict[str, Any]) -> list[Compare]:
    """A column's filter: each operator given (one given as null places no condition)."""
    return [
        Compare(column, operator, ref)
        for operator, ref in operators.items()
        if not (isinstance(ref, Const) and ref.value is None)
    ]


def _columns(ctx: _Context, model: ModelInfo, nodes: list[FieldNode], type_name: str) -> list[Any]:
    """A selection of an object whose fields are the model's columns (one aggregate's values,
    a group's keys): (response key, column) pairs, and __typename."""
    selected: list[Any] = []
    for key, subnodes in ctx.collect_many(nodes, type_name).items():
        name = subnodes[0].name.value
        if name == "__typename":
            selected.append(Typename(key, type_name))
        else:
            selected.append((key, model.columns[name]))
    return selected


def _required(value: Any, name: str) -> Any:
    """A non-null argument's value. Validation refuses null literals and nullable variables
    there, except a variable with a default that the request sets to null explicitly."""
    if value is None:
        raise BadUserInput(f"`{name}` must not be null", field=name)
    return value


def _only_entry(value: Any) -> tuple[str, Any]:
    entry = _plain(value)
    if not isinstance(entry, dict) or len(entry) != 1:
        raise BadUserInput("each `orderBy` entry names exactly one field")
    ((name, operand),) = entry.items()
    return name, operand


def _direction(direction: Any) -> tuple[bool, bool]:
    """A SortDirection as (descending, nulls low): ASC_NULLS_FIRST is (False, True)."""
    direction = _plain(direction)
    name = str(getattr(direction, "value", direction))
    descending = name.startswith("DESC")
    return descending, name in ("ASC_NULLS_FIRST", "DESC_NULLS_LAST")


def _plain(value: Any) -> Any:
    """An input object, list or null given whole as one constant (`filter: $f` with $f null,
    `orderBy: []`, `and: []`, `title: null`) read as the value itself."""
    return value.value if isinstance(value, Const) else value


def _wrap_leaves(value: Any, type_: Any) -> Any:
    """A structural variable's value, already coerced, as a tree: its input objects and lists
    of them as dicts and lists, every other value (scalars, enum values, lists of them, JSON)
    one constant."""
    type_ = get_nullable_type(type_)
    if isinstance(type_, GraphQLInputObjectType) and isinstance(value, dict):
        return {k: _wrap_leaves(v, _field_type(type_.fields, k)) for k, v in value.items()}
    if isinstance(type_, GraphQLList) and isinstance(value, list):
        item = get_nullable_type(type_.of_type)
        if isinstance(item, GraphQLInputObjectType | GraphQLList):
            return [_wrap_leaves(v, item) for v in value]
    return Const(value)


def _literal(node: ValueNode) -> Any:
    # Validation has checked the literal against its type; read it as the scalar's Python value.
    if isinstance(node, IntValueNode):
        return int(node.value)
    if isinstance(node, FloatValueNode):
        return float(node.value)
    if isinstance(node, StringValueNode):
        return node.value
    if isinstance(node, BooleanValueNode):
        return node.value
    if isinstance(node, EnumValueNode):
        return node.value
    if isinstance(node, NullValueNode):
        return None
    raise AssertionError(f"unexpected literal {node.kind}")
