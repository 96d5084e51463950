"""The reference the API is compared with: plain SQLAlchemy Core over the same relations.

Nothing here uses the service's planner or SQL emitter. It knows the schema's naming rules
(API.md) and the seeded data of conftest.py, and reads what the API reads: a model's table,
or the view the model names for reading (`__read_view__`), as a plain SQL relation.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from hypothesis import strategies as st

from service.models import Comment, Post, User

ALICE = "00000000-0000-0000-0000-000000000001"
BOB = "00000000-0000-0000-0000-000000000002"
T0 = datetime(2026, 2, 1, tzinfo=UTC)

# More users than the seed's two, so that users.email (nullable) has nulls and duplicates.
EXTRA_USERS = """
INSERT INTO auth.users (id, email, created_at) VALUES
    ('00000000-0000-0000-0000-000000000003', NULL, '2026-01-01T00:00:00Z'),
    ('00000000-0000-0000-0000-000000000004', 'carol@example.com', '2026-01-03T00:00:00Z'),
    ('00000000-0000-0000-0000-000000000005', NULL, '2026-01-03T00:00:00Z'),
    ('00000000-0000-0000-0000-000000000006', 'carol@example.com', '2026-01-01T00:00:00Z'),
    ('00000000-0000-0000-0000-000000000007', 'aaron@example.com', '2026-01-02T00:00:00Z'),
    ('00000000-0000-0000-0000-000000000008', NULL, '2026-01-02T00:00:00Z');
"""
USER_IDS = [f"00000000-0000-0000-0000-{i:012d}" for i in range(1, 9)]


def comment_id(post: int, n: int) -> str:
    return f"20000000-0000-0000-{post:04d}-{n:012d}"


def relation(model: Any) -> sa.TableClause:
    """What the API reads for a model, as a plain SQL relation: its read view, or its table."""
    table = model.__table__
    view = getattr(model, "__read_view__", None)
    schema, name = view.split(".") if view else (table.schema, table.name)
    return sa.table(name, *(sa.column(c.name, c.type) for c in table.columns), schema=schema)


@dataclass(frozen=True)
class Atom:
    """One filter condition, as the API takes it and as SQL."""

    field: str
    column: str
    op: str
    api_value: Any
    py_value: Any
    scalar: str  # the GraphQL scalar of the operand, for a variable's type

    def __repr__(self) -> str:
        return f"{self.field} {self.op} {self.api_value!r}"

    @property
    def variable_type(self) -> str:
        if self.op in ("in", "nin"):
            return f"[{self.scalar}!]"
        return "Boolean" if self.op == "isNull" else self.scalar

    def graphql(self) -> dict[str, Any]:
        return {self.field: {self.op: self.api_value}}

    def sql(self, rel: sa.TableClause) -> Any:
        column = rel.c[self.column]
        value = self.py_value
        if self.op == "isNull":
            return column.is_(None) if value else column.is_not(None)
        return {
            "eq": lambda: column == value,
            "neq": lambda: column != value,
            "lt": lambda: column < value,
            "gte": lambda: column >= value,
            "in": lambda: column.in_(value),
            "startsWith": lambda: column.startswith(value, autoescape=True),
            "like": lambda: column.like(value),
            "ilike": lambda: column.ilike(value),
        }[self.op]()


def _at(moment: datetime) -> tuple[str, datetime]:
    return moment.isoformat(), moment


@dataclass(frozen=True)
class Kind:
    """A model as the API shows it: names, columns, relations, and conditions to filter by."""

    type_name: str
    model: Any
    root: str  # the root connection
    single: str  # the root lookup by id
    columns: dict[str, str]  # GraphQL field -> column
    to_one: dict[str, tuple[str, str]]  # field -> (target type, column on this table)
    to_many: dict[str, tuple[str, str]]  # field -> (target type, column on the target)
    atoms: tuple[Atom, ...]

    def __repr__(self) -> str:
        return self.type_name


POST = Kind(
    "Post",
    Post,
    "posts",
    "post",
    {
        "id": "id",
        "title": "title",
        "content": "content",
        "published": "published",
        "authorId": "author_id",
        "createdAt": "created_at",
        "updatedAt": "updated_at",
    },
    {"author": ("User", "author_id")},
    {"comments": ("Comment", "post_id")},
    (
        Atom("published", "published", "eq", True, True, "Boolean"),
        Atom("published", "published", "eq", False, False, "Boolean"),
        Atom("title", "title", "startsWith", "Post 1", "Post 1", "String"),
        Atom("title", "title", "lt", "Post 13", "Post 13", "String"),
        Atom(
            "title",
            "title",
            "in",
            ["Post 02", "Post 13", "Zebra"],
            ["Post 02", "Post 13", "Zebra"],
            "String",
        ),
        Atom("title", "title", "ilike", "%POST 2%", "%POST 2%", "String"),
        Atom("createdAt", "created_at", "gte", *_at(T0 + timedelta(hours=5)), "DateTime"),
        Atom("authorId", "author_id", "eq", ALICE, uuid.UUID(ALICE), "UUID"),
        Atom("authorId", "author_id", "neq", ALICE, uuid.UUID(ALICE), "UUID"),
    ),
)
USER = Kind(
    "User",
    User,
    "users",
    "user",
    {"id": "id", "email": "email", "createdAt": "created_at"},
    {},
    {"posts": ("Post", "author_id"), "comments": ("Comment", "author_id")},
    (
        Atom("email", "email", "isNull", True, True, "String"),
        Atom("email", "email", "isNull", False, False, "String"),
        Atom("email", "email", "eq", "carol@example.com", "carol@example.com", "String"),
        Atom("createdAt", "created_at", "lt", *_at(datetime(2026, 1, 3, tzinfo=UTC)), "DateTime"),
        Atom("id", "id", "in", USER_IDS[:3], [uuid.UUID(u) for u in USER_IDS[:3]], "UUID"),
    ),
)
COMMENT = Kind(
    "Comment",
    Comment,
    "comments",
    "comment",
    {
        "id": "id",
        "body": "body",
        "postId": "post_id",
        "authorId": "author_id",
        "createdAt": "created_at",
    },
    {"post": ("Post", "post_id"), "author": ("User", "author_id")},
    {},
    (
        Atom("body", "body", "like", "Comment 1%", "Comment 1%", "String"),
        Atom("authorId", "author_id", "eq", BOB, uuid.UUID(BOB), "UUID"),
        Atom("createdAt", "created_at", "lt", *_at(datetime(2026, 3, 12, tzinfo=UTC)), "DateTime"),
    ),
)
KINDS = {k.type_name: k for k in (POST, USER, COMMENT)}


# A filter: None, an Atom, ("and"|"or", Atom, Atom) or ("not", Atom).


def filters(kind: Kind) -> st.SearchStrategy[Any]:
    atom = st.sampled_from(kind.atoms)
    return st.one_of(
        st.none(),
        atom,
        st.tuples(st.sampled_from(["and", "or"]), atom, atom),
        st.tuples(st.just("not"), atom),
    )


def filter_graphql(f: Any) -> dict[str, Any] | None:
    if f is None:
        return None
    if isinstance(f, Atom):
        return f.graphql()
    if f[0] == "not":
        return {"not": f[1].graphql()}
    return {f[0]: [f[1].graphql(), f[2].graphql()]}


def filter_sql(f: Any, rel: sa.TableClause) -> Any:
    if f is None:
        return sa.true()
    if isinstance(f, Atom):
        return f.sql(rel)
    if f[0] == "not":
        return sa.not_(f[1].sql(rel))
    join = sa.and_ if f[0] == "and" else sa.or_
    return join(f[1].sql(rel), f[2].sql(rel))


def order_sql(kind: Kind, rel: sa.TableClause, order: list[tuple[str, str]]) -> list[Any]:
    """ORDER BY keys: the given ones (PostgreSQL's default null placement), then the id."""
    keys = []
    for field, direction in order:
        column = rel.c[kind.columns[field]]
        keys.append(column.desc() if direction == "DESC" else column.asc())
    if all(field != "id" for field, _ in order):
        keys.append(rel.c.id.asc())
    return keys
