"""Mutation input, validated by the model's own `XCreate` / `XUpdate` pydantic class.

The class is the input's contract: its fields are the GraphQL input's fields, its validators
(lengths, types) decide what is accepted, and for an update only the fields the client sent
are written.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from service.graphql.catalog import ModelInfo, api_fields, camel
from service.graphql.errors import BadUserInput


class InputShape:
    """One model's create or update input, prepared once per process."""

    def __init__(self, model: ModelInfo, kind: str) -> None:
        shape = model.create_model if kind == "create" else model.update_model
        assert shape is not None, f"{model.type_name} has no {kind} class"
        self.partial = kind == "update"  # absent fields stay as they are
        fields = api_fields(shape)
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
        for name, column in self.enums.items():
            if name in values:
                values[name] = column.label(values[name])
        for name in self.not_null:
            if name in values and values[name] is None:
                raise BadUserInput(f"`{camel(name)}` cannot be null", field=camel(name))
        return values


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
