"""Column helpers shared by the models: timezone-aware timestamps and database-side defaults."""

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, func, text
from sqlmodel import Field


def utcnow() -> datetime:
    return datetime.now(UTC)


def uuid_primary_key() -> Any:
    # The database default lets compiled INSERTs omit the id; the Python default serves ORM use.
    return Field(
        default_factory=uuid.uuid4,
        primary_key=True,
        description="The row's id (made by the database).",
        sa_column_kwargs={"server_default": text("gen_random_uuid()")},
    )


def created_at() -> Any:
    return Field(
        default_factory=utcnow,
        description="When the row was created, by the database's clock.",
        sa_type=DateTime(timezone=True),  # type: ignore[call-overload]
        sa_column_kwargs={"server_default": func.now(), "nullable": False},
    )


def updated_at() -> Any:
    return Field(
        default_factory=utcnow,
        description="When the row last changed: set by every update.",
        sa_type=DateTime(timezone=True),  # type: ignore[call-overload]
        sa_column_kwargs={"server_default": func.now(), "onupdate": func.now(), "nullable": False},
    )


def owner_id(*, unique: bool = False) -> Any:
    """The author of a row: the caller's id from the token (`auth.uid()`), never client input.
    `unique`: one row per user (their settings, say), which `upsertX` then finds by it."""
    return Field(
        description="The user who created the row: the caller, from their token, never input.",
        foreign_key="auth.users.id",
        index=True,
        unique=unique,
        sa_column_kwargs={"server_default": text("auth.uid()")},
    )
