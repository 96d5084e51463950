"""Mutation input, validated by the model's own `XCreate` / `XUpdate` pydantic class.

The class is the input's contract: its fields are the GraphQL input's fields, its validators
(lengths, types) decide what is accepted, and for an update only the fields the client sent
are written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError, create_model

from service.graphql.catalog import Catalog, ModelInfo, RelationInfo, api_fields, camel
from service.graphql.errors import BadUserInput, LimitExceeded


class InputShape:
    """One model's create or update input, prepared once per process."""

    def __init__(
        self,
        model: ModelInfo,
        kind: str,
        catalog: Catalog | None = None,
        *,
        without: frozenset[str] = frozenset(),
    ) -> None:
        shape = model.create_model if kind == "create" else model.update_model
        assert shape is not None, f"{model.type_name} has no {kind} class"
        self.partial = kind == "update"  # absent fields stay as they are
        self.catalog = catalog
        # Rows nested in a create (see NewRows), by input field; their shapes made when needed.
        self.nested: dict[str, RelationInfo] = {}
        if kind == "create" and catalog is not None:
            self.nested = catalog.nested_creates(model)
        self._nested_shapes: dict[str, InputShape] = {}
        self.without = without
        if without:
            # A nested row's foreign key comes from its parent, written after validation: the
            # class validates everything else, the key optional and left out of the values.
            annotations: dict[str, Any] = {n: shape.model_fields[n].annotation for n in without}
            optional: Any = {n: (type_ | None, None) for n, type_ in annotations.items()}
            shape = create_model(f"{shape.__name__}Nested", __base__=shape, **optional)
        fields = [name for name in api_fields(shape) if name not in without]
        self.attribute = {camel(name): name for name in fields}
        self.not_null = tuple(name for name in fields if not model.column(name).nullable)
        # enum columns: GraphQL gives the stored values, the class takes its enum's members
        self.enums = {name: model.column(name) for name in fields if model.column(name).labels}
        # pydantic-core's own entry points: the class's whole validation (fields and
        # validators), run once. Through `model_validate` SQLModel's __init__ runs it twice.
        self.shape = shape
        self.validator = shape.__pydantic_validator__
        self.serializer = shape.__pydantic_serializer__

    def validate(self, raw: dict[str, Any]) -> dict[str, Any]:
        """The columns to write, by attribute name; `BadUserInput` naming the first bad field."""
        data = {self.attribute[k]: v for k, v in raw.items() if k in self.attribute}
        for name, column in self.enums.items():
            if name in data:
                data[name] = column.member(data[name])
        try:
            validated = self.shape.__new__(self.shape)
            self.validator.validate_python(data, self_instance=validated)
        except ValidationError as error:
            raise BadUserInput(_describe(error), field=_first_field(error)) from None
        values: dict[str, Any] = self.serializer.to_python(validated, exclude_unset=self.partial)
        for name in self.without:
            del values[name]
        for name, column in self.enums.items():
            if name in values:
                values[name] = column.label(values[name])
        for name in self.not_null:
            if name in values and values[name] is None:
                raise BadUserInput(f"`{camel(name)}` cannot be null", field=camel(name))
        return values

    def has_nested(self, raw: dict[str, Any]) -> bool:
        """Does a create's input carry related rows (a non-empty list of them)?"""
        return any(raw.get(name) for name in self.nested)

    def new_rows(self, items: list[tuple[str, dict[str, Any]]], *, limit: int) -> NewRows:
        """Validated rows of creates, each given with its path in the request (`inputs[2]`,
        "" for a lone input), and the rows nested in them, level by level: at most `limit`
        rows per relation. `BadUserInput` names a bad row by its path."""
        rows = NewRows()
        self._collect(rows, items, None, limit)
        return rows

    def _collect(
        self,
        rows: NewRows,
        items: list[tuple[str, dict[str, Any]]],
        parents: list[int] | None,
        limit: int,
    ) -> None:
        for i, (path, item) in enumerate(items):
            try:
                values = self.validate(item)
            except BadUserInput as error:
                prefix = f"{path}: " if path else ""
                raise BadUserInput(prefix + error.message, **error.extensions) from None
            for name, value in values.items():
                rows.columns.setdefault(name, []).append(value)
            if parents is not None:
                rows.parents.append(parents[i])
        for name, rel in self.nested.items():
            given = [
                (position, f"{path}.{name}[{j}]" if path else f"{name}[{j}]", child)
                for position, (path, item) in enumerate(items, 1)
                for j, child in enumerate(item.get(name) or ())
            ]
            if not given:
                continue
            if len(given) > limit:
                raise LimitExceeded(
                    f"`{name}`: at most {limit} {rel.target} rows in one mutation (MAX_PAGE_SIZE)"
                )
            shape = self._nested_shapes.get(name)
            if shape is None:
                assert self.catalog is not None
                foreign = frozenset(theirs for _, theirs in rel.pairs)
                shape = InputShape(
                    self.catalog[rel.target], "create", self.catalog, without=foreign
                )
                self._nested_shapes[name] = shape
            child_rows = rows.children.setdefault(name, NewRows(relation=rel))
            shape._collect(
                child_rows, [(p, c) for _, p, c in given], [n for n, _, _ in given], limit
            )


@dataclass
class NewRows:
    """The rows one level of a nested create writes: each column's values (one per row), and
    below the top, each row's parent (its position, from 1, among the level above)."""

    relation: RelationInfo | None = None  # from the level above; None at the top
    columns: dict[str, list[Any]] = field(default_factory=dict)
    parents: list[int] = field(default_factory=list)
    children: dict[str, NewRows] = field(default_factory=dict)  # by input field

    def shape(self) -> tuple[Any, ...]:
        """What of them the statement's text depends on: the columns at each level."""
        return (tuple(self.columns), tuple((name, c.shape()) for name, c in self.children.items()))


def _describe(error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        where = ".".join(camel(str(p)) for p in item["loc"]) or "input"
        problems.append(f"{where}: {item['msg']}")
    return "invalid input: " + "; ".join(problems)


def _first_field(error: ValidationError) -> str | None:
    for item in error.errors():
        if item["loc"]:
            return camel(str(item["loc"][0]))
    return None
