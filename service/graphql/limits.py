"""Request limits: on the parsed document (depth, aliases and repeated fields, before
validation) and on its plan (how many rows its connections may return, before any SQL runs).

Strawberry's depth and alias rules walk a fragment again at every spread, so a few hundred bytes
of fragments that spread each other twice cost minutes of CPU; they also fail on empty selection
sets and unknown fragments. These walks remember each fragment's result and stop at the limits.
Repeated fields are limited because validation compares every pair of fields with the same
response key (OverlappingFieldsCanBeMerged): 300 copies of one field already cost seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)

from service.graphql.plan import (
    ByKey,
    Connection,
    EdgeNode,
    Edges,
    EntityLookup,
    GroupedAggregates,
    NodeLookup,
    Nodes,
    ObjectSelection,
    OperationPlan,
    PageInfoField,
    ToOne,
    Viewer,
    Write,
)

# Honest documents repeat a field a few times (fragments that share `id`); far below this.
MAX_FIELD_REPEATS = 50
# Fields visited with every fragment spread expanded, as the planner will: bounded by the schema
# for a valid document of limited depth, but say so rather than loop when it is not.
MAX_EXPANDED_FIELDS = 50_000


def check_size(document: DocumentNode, *, max_depth: int, max_aliases: int) -> list[GraphQLError]:
    """Depth and aliases past the limits; works on any parsed document, valid or not."""
    walk = _Walk(document, max_depth)
    errors = []
    for operation in walk.operations:
        if walk.depth(operation.selection_set) > max_depth:
            name = operation.name.value if operation.name else "anonymous"
            errors.append(
                GraphQLError(
                    f"'{name}' exceeds maximum operation depth of {max_depth}", [operation]
                )
            )
    aliases = sum(walk.aliases(o.selection_set) for o in walk.operations)
    if aliases > max_aliases:
        errors.append(GraphQLError(f"{aliases} aliases found. Allowed: {max_aliases}"))
    return errors


def check_merges(document: DocumentNode, *, max_depth: int) -> list[GraphQLError]:
    """Fields repeated where they merge, for a document that passed validation otherwise
    (its fields exist, its fragments are known and acyclic) and `check_size`."""
    walk = _Walk(document, max_depth)
    try:
        for operation in walk.operations:
            walk.repeated([operation.selection_set], 0)
    except _TooMany as error:
        return [GraphQLError(str(error))]
    return []


class _TooMany(Exception):
    pass


class _Walk:
    def __init__(self, document: DocumentNode, max_depth: int) -> None:
        self.fragments: Mapping[str, FragmentDefinitionNode] = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.operations = [
            d for d in document.definitions if isinstance(d, OperationDefinitionNode)
        ]
        self.max_depth = max_depth
        self.expanded = 0
        self._depths: dict[str, int] = {}
        self._aliases: dict[str, int] = {}

    def _fragment(self, spread: FragmentSpreadNode) -> FragmentDefinitionNode | None:
        return self.fragments.get(spread.name.value)

    def depth(self, selection_set: SelectionSetNode | None) -> int:
        """Nesting of fields with selections; introspection fields do not count."""
        if selection_set is None:
            return 0
        deepest = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                if selection.selection_set is None or selection.name.value.startswith("__"):
                    continue
                deepest = max(deepest, 1 + self.depth(selection.selection_set))
            elif isinstance(selection, InlineFragmentNode):
                deepest = max(deepest, self.depth(selection.selection_set))
            elif isinstance(selection, FragmentSpreadNode):
                deepest = max(deepest, self._fragment_value(selection, self._depths, self.depth))
            if deepest > self.max_depth:
                break
        return deepest

    def aliases(self, selection_set: SelectionSetNode | None) -> int:
        """Aliases, counting a fragment's once per spread (as if the spreads were expanded)."""
        if selection_set is None:
            return 0
        count = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                count += (selection.alias is not None) + self.aliases(selection.selection_set)
            elif isinstance(selection, InlineFragmentNode):
                count += self.aliases(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                count += self._fragment_value(selection, self._aliases, self.aliases)
        return count

    def _fragment_value(
        self,
        spread: FragmentSpreadNode,
        memo: dict[str, int],
        measure: Callable[[SelectionSetNode | None], int],
    ) -> int:
        name = spread.name.value
        if name not in memo:
            fragment = self._fragment(spread)
            memo[name] = 0  # a cycle (validation reports it) adds nothing
            memo[name] = measure(fragment.selection_set) if fragment is not None else 0
        return memo[name]

    def repeated(self, selection_sets: Iterable[SelectionSetNode], level: int) -> None:
        """Raise _TooMany when a response key is selected too often where fields merge (as
        execution collects them: a fragment once per selection set), at any level."""
        if level > self.max_depth:
            return
        groups: dict[str, list[FieldNode]] = {}
        for selection_set in selection_sets:
            self._collect(selection_set, groups, set())
        for key, fields in groups.items():
            if len(fields) > MAX_FIELD_REPEATS:
                raise _TooMany(
                    f"the field '{key}' is selected more than {MAX_FIELD_REPEATS} times "
                    "in one place: limit exceeded"
                )
            self.expanded += len(fields)
            if self.expanded > MAX_EXPANDED_FIELDS:
                raise _TooMany(
                    f"the document selects more than {MAX_EXPANDED_FIELDS} fields with its "
                    "fragments expanded: limit exceeded"
                )
        for fields in groups.values():
            children = [f.selection_set for f in fields if f.selection_set is not None]
            if children:
                self.repeated(children, level + 1)

    def _collect(
        self, selection_set: SelectionSetNode, groups: dict[str, list[FieldNode]], seen: set[str]
    ) -> None:
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                key = selection.alias.value if selection.alias else selection.name.value
                groups.setdefault(key, []).append(selection)
            elif isinstance(selection, InlineFragmentNode):
                self._collect(selection.selection_set, groups, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self._fragment(selection)
                if fragment is not None and name not in seen:
                    seen.add(name)
                    self._collect(fragment.selection_set, groups, seen)


def connection_rows(plan: OperationPlan, *, max_page_size: int) -> int:
    """The most rows the operation's connections may return: each connection's page size
    times the rows it is nested under (GitHub's node limit counts the same way). Depth alone
    does not bound this: three nested pages of 100 are a million rows in one statement.

    A connection that selects only `totalCount` counts one row per parent: it returns one
    number. A page larger than the maximum counts as the maximum (it is refused on its own).
    """
    return sum(_rows_under(f, 1, max_page_size) for f in plan.fields)


def rows_each(lookup: EntityLookup, *, max_page_size: int) -> int:
    """The most rows one representation of `_entities` may return under its row."""
    return _rows_under(lookup, 1, max_page_size)


def _rows_under(item: object, parents: int, max_page_size: int) -> int:
    if isinstance(item, Connection):
        return _connection_rows(item, parents, max_page_size)
    if isinstance(item, ObjectSelection):
        return sum(_rows_under(f, parents, max_page_size) for f in item.fields)
    if isinstance(item, ToOne):
        return _rows_under(item.target, parents, max_page_size)
    if isinstance(item, Write) and item.kind.endswith("_many"):
        # up to a page of rows (more inputs, or more rows matched, are refused), each with its
        # selection
        rows = parents * max_page_size
        return rows + _rows_under(item.selection, rows, max_page_size)
    if isinstance(item, ByKey | Viewer | Write):
        return _rows_under(item.selection, parents, max_page_size)
    if isinstance(item, NodeLookup | EntityLookup):  # one of its types answers (each time)
        return max(
            (_rows_under(s, parents, max_page_size) for s in item.selections.values()), default=0
        )
    return 0  # columns, cursors, counts, __typename, introspection


def _connection_rows(c: Connection, parents: int, max_page_size: int) -> int:
    groups = sum(  # a page of groups each (a wrong size is refused later)
        parents * min(max(p.first, 0), max_page_size)
        for p in c.parts
        if isinstance(p, GroupedAggregates)
    )
    if not any(isinstance(p, Nodes | Edges | PageInfoField) for p in c.parts):
        return parents + groups
    size_ref = c.page.last if c.page.backward else c.page.first
    size = size_ref.value if size_ref is not None else 0
    rows = parents * (min(size, max_page_size) if isinstance(size, int) and size > 0 else 0)
    nested = 0
    for part in c.parts:
        if isinstance(part, Nodes):
            nested += _rows_under(part.selection, rows, max_page_size)
        elif isinstance(part, Edges):
            for edge_part in part.parts:
                if isinstance(edge_part, EdgeNode):
                    nested += _rows_under(edge_part.selection, rows, max_page_size)
    return rows + nested + groups
