"""Post: `public.posts`, with the Create/Update shapes that define its API inputs."""

import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Index
from sqlmodel import Field, Relationship, SQLModel

from service.models.columns import created_at, owner_id, updated_at, uuid_primary_key

if TYPE_CHECKING:
    from service.models.comment import Comment
    from service.models.user import User


class PostBase(SQLModel):
    title: str = Field(max_length=255)
    content: str
    published: bool = False


class Post(PostBase, table=True):
    __tablename__ = "posts"
    # The newest-first page is the common read; the id makes it a keyset for cursors.
    __table_args__ = (Index("ix_posts_created_at_id", "created_at", "id"),)

    id: uuid.UUID = uuid_primary_key()
    author_id: uuid.UUID = owner_id()
    created_at: datetime = created_at()
    updated_at: datetime = updated_at()

    author: "User" = Relationship(back_populates="posts")
    comments: list["Comment"] = Relationship(
        back_populates="post", sa_relationship_kwargs={"passive_deletes": True}
    )


class PostCreate(PostBase):
    pass


class PostUpdate(SQLModel):
    title: str | None = Field(default=None, max_length=255)
    content: str | None = None
    published: bool | None = None
