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

    def render(self, value: str) -> str:
        """As a GraphQL input literal, with the operand already rendered."""
        return f"{{{self.field}: {{{self.op}: {value}}}}}"

    def sql(self, rel: Any) -> Any:
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
            "includesInsensitive": lambda: column.icontains(value, autoescape=True),
            "endsWith": lambda: column.endswith(value, autoescape=True),
        }[self.op]()


@dataclass(frozen=True)
class Through:
    """A condition on related rows: the many-to-one row matches (`quantifier` None), or some,
    every or none of the one-to-many rows match. As SQL: EXISTS over the related relation."""

    field: str  # the relation's field
    quantifier: str | None
    target: Any  # the related model
    link: tuple[str, str]  # (column of this table, column of the related table)
    inner: Atom | Through

    def __repr__(self) -> str:
        return f"{self.field} {self.quantifier or 'is'} ({self.inner!r})"

    @property
    def variable_type(self) -> str:
        return self.inner.variable_type

    @property
    def api_value(self) -> Any:
        return self.inner.api_value

    def graphql(self) -> dict[str, Any]:
        inner = self.inner.graphql()
        return {self.field: inner if self.quantifier is None else {self.quantifier: inner}}

    def render(self, value: str) -> str:
        inner = self.inner.render(value)
        if self.quantifier is None:
            return f"{{{self.field}: {inner}}}"
        return f"{{{self.field}: {{{self.quantifier}: {inner}}}}}"

    def sql(self, rel: Any) -> Any:
        related = relation(self.target).alias()
        linked = related.c[self.link[1]] == rel.c[self.link[0]]
        condition = self.inner.sql(related)
        if self.quantifier == "every":
            return ~sa.exists().where(linked, condition.is_not(sa.true()))
        found = sa.exists().where(linked, condition)
        return ~found if self.quantifier == "none" else found


@dataclass(frozen=True)
class Counted:
    """How many one-to-many rows a row has, compared. As SQL: a count(*) sub-select."""

    field: str  # the relation's field
    target: Any  # the related model
    link: tuple[str, str]  # (column of this table, column of the related table)
    op: str  # eq, gte or lt
    api_value: int
    variable_type = "Int"

    def __repr__(self) -> str:
        return f"{self.field} count {self.op} {self.api_value}"

    def graphql(self) -> dict[str, Any]:
        return {self.field: {"count": {self.op: self.api_value}}}

    def render(self, value: str) -> str:
        return f"{{{self.field}: {{count: {{{self.op}: {value}}}}}}}"

    def sql(self, rel: Any) -> Any:
        related = relation(self.target).alias()
        count = (
            sa.select(sa.func.count())
            .where(related.c[self.link[1]] == rel.c[self.link[0]])
            .scalar_subquery()
        )
        return {"eq": count == self.api_value, "gte": count >= self.api_value}.get(
            self.op, count < self.api_value
        )


# One condition of a filter: on a column, through relations, or a count of related rows.
Condition = Atom | Through | Counted


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
        Atom("title", "title", "includesInsensitive", "ST 1", "ST 1", "String"),
        Atom("title", "title", "endsWith", "5", "5", "String"),
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

# Conditions through relations, per model: on the many-to-one row, or some / every / none of
# the one-to-many rows (two relations deep for users), or how many there are.
_COMMENTED_BEFORE_MARCH_12 = Atom(
    "createdAt", "created_at", "lt", *_at(datetime(2026, 3, 12, tzinfo=UTC)), "DateTime"
)
THROUGH: dict[str, tuple[Through | Counted, ...]] = {
    "Post": (
        Through(
            "author",
            None,
            User,
            ("author_id", "id"),
            Atom(
                "createdAt", "created_at", "lt", *_at(datetime(2026, 1, 2, tzinfo=UTC)), "DateTime"
            ),
        ),
        Through("comments", "some", Comment, ("id", "post_id"), _COMMENTED_BEFORE_MARCH_12),
        Through("comments", "every", Comment, ("id", "post_id"), _COMMENTED_BEFORE_MARCH_12),
        Through(
            "comments",
            "none",
            Comment,
            ("id", "post_id"),
            Atom("body", "body", "like", "Comment 3 on post 1_", "Comment 3 on post 1_", "String"),
        ),
        Counted("comments", Comment, ("id", "post_id"), "gte", 3),
    ),
    "Comment": (
        Through(
            "post",
            None,
            Post,
            ("post_id", "id"),
            Atom("title", "title", "startsWith", "Post 1", "Post 1", "String"),
        ),
        Through(
            "author",
            None,
            User,
            ("author_id", "id"),
            Atom("email", "email", "isNull", True, True, "String"),
        ),
    ),
    "User": (
        Through(
            "posts",
            "some",
            Post,
            ("id", "author_id"),
            Through(
                "comments",
                "some",
                Comment,
                ("id", "post_id"),
                Atom("body", "body", "eq", "Comment 1 on post 8", "Comment 1 on post 8", "String"),
            ),
        ),
        Through(
            "comments",
            "none",
            Comment,
            ("id", "author_id"),
            Atom("body", "body", "like", "Comment 2%", "Comment 2%", "String"),
        ),
        Counted("posts", Post, ("id", "author_id"), "lt", 13),
    ),
}


# A filter: None, an atom (Atom or Through), ("and"|"or", atom, atom) or ("not", atom).


def filters(kind: Kind) -> st.SearchStrategy[Any]:
    atom = st.sampled_from(kind.atoms + THROUGH[kind.type_name])
    return st.one_of(
        st.none(),
        atom,
        st.tuples(st.sampled_from(["and", "or"]), atom, atom),
        st.tuples(st.just("not"), atom),
    )


def filter_graphql(f: Any) -> dict[str, Any] | None:
    if f is None:
        return None
    if isinstance(f, Condition):
        return f.graphql()
    if f[0] == "not":
        return {"not": f[1].graphql()}
    return {f[0]: [f[1].graphql(), f[2].graphql()]}


def filter_sql(f: Any, rel: sa.TableClause) -> Any:
    if f is None:
        return sa.true()
    if isinstance(f, Condition):
        return f.sql(rel)
    if f[0] == "not":
        return sa.not_(f[1].sql(rel))
    join = sa.and_ if f[0] == "and" else sa.or_
    return join(f[1].sql(rel), f[2].sql(rel))


# An orderBy entry: a column's field, or a path through relations to a column or an
# aggregate, as its nested input names it: ("author", "email"), ("comments", "count"),
# ("comments", "max", "createdAt"), ("post", "author", "email").
OrderField = str | tuple[str, ...]

# The related sort values a case may use, per model (only values that inserts of the model's
# own rows leave unchanged: a comment inserted on post 3 would change post 3's comment count).
RELATED_ORDER: dict[str, tuple[tuple[str, ...], ...]] = {
    "Post": (
        ("author", "email"),
        ("author", "createdAt"),
        ("comments", "count"),
        ("comments", "max", "createdAt"),
        ("comments", "min", "body"),
        ("comments", "distinctCount", "authorId"),
    ),
    "User": (
        ("posts", "count"),
        ("comments", "count"),
        ("posts", "max", "createdAt"),
        ("posts", "min", "title"),
    ),
    "Comment": (
        ("post", "title"),
        ("post", "createdAt"),
        ("author", "email"),
        ("post", "author", "createdAt"),
    ),
}


def order_input(field: OrderField, direction: Any) -> dict[str, Any]:
    """One orderBy entry as the API takes it: {"author": {"email": "ASC"}}."""
    path = (field,) if isinstance(field, str) else field
    entry: Any = direction
    for name in reversed(path):
        entry = {name: entry}
    return dict(entry)


def order_value(kind: Kind, rel: Any, field: OrderField) -> Any:
    """The sorted value as SQL: a column, or a scalar sub-select per relation of the path."""
    path = (field,) if isinstance(field, str) else field
    name, rest = path[0], path[1:]
    if not rest:
        return rel.c[kind.columns[name]]
    if name in kind.to_one:
        target_name, local = kind.to_one[name]
        target = KINDS[target_name]
        related = relation(target.model).alias()
        inner = order_value(target, related, rest)
        return sa.select(inner).where(related.c.id == rel.c[local]).scalar_subquery()
    target_name, remote = kind.to_many[name]
    target = KINDS[target_name]
    related = relation(target.model).alias()
    function = rest[0]
    if function == "count":
        value = sa.func.count()
    elif function == "distinctCount":
        value = sa.func.count(related.c[target.columns[rest[1]]].distinct())
    else:
        value = getattr(sa.func, function)(related.c[target.columns[rest[1]]])
    return sa.select(value).where(related.c[remote] == rel.c.id).scalar_subquery()


# The API's sort directions; the placements of nulls they name.
DIRECTIONS = (
    "ASC",
    "DESC",
    "ASC_NULLS_FIRST",
    "ASC_NULLS_LAST",
    "DESC_NULLS_FIRST",
    "DESC_NULLS_LAST",
)


def order_sql(kind: Kind, rel: sa.TableClause, order: list[tuple[OrderField, str]]) -> list[Any]:
    """ORDER BY keys: the given ones (nulls where the direction puts them; PostgreSQL's
    default, last in ASC and first in DESC, where it names none), then the id."""
    keys = []
    for field, direction in order:
        value = order_value(kind, rel, field)
        key = value.desc() if direction.startswith("DESC") else value.asc()
        if direction.endswith("_NULLS_FIRST"):
            key = key.nulls_first()
        elif direction.endswith("_NULLS_LAST"):
            key = key.nulls_last()
        keys.append(key)
    if all(field != "id" for field, _ in order):
        keys.append(rel.c.id.asc())
    return keys
