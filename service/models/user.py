"""User: the `auth.users` table of Supabase's layout (the service does not sign users up)."""

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

from sqlmodel import Field, Relationship, SQLModel

from service.models.columns import created_at, uuid_primary_key

if TYPE_CHECKING:
    from service.models.comment import Comment
    from service.models.post import Post


class User(SQLModel, table=True):
    """A user (Supabase's `auth.users`). Everyone sees a user's id and creation time; only the
    user themself sees their email."""

    __tablename__ = "users"
    __table_args__ = {"schema": "auth"}
    # Reads go through this view (migration 0003): it shows a user's email only to that user.
    __read_view__: ClassVar[str] = "public.visible_users"
    # That view shows every user's row (id, created_at) to every role: a reference to a user
    # can be answered from the foreign key alone when only the id is asked for.
    __every_row_visible__: ClassVar[bool] = True
    __private_columns__: ClassVar[frozenset[str]] = frozenset({"email"})

    id: uuid.UUID = uuid_primary_key()
    email: str | None = Field(
        default=None, max_length=255, description="Null for everyone but the user themself."
    )
    created_at: datetime = created_at()

    posts: list["Post"] = Relationship(back_populates="author")
    comments: list["Comment"] = Relationship(back_populates="author")
