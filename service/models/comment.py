"""Comment: `public.comments`, deleted with their post."""

import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Index
from sqlmodel import Field, Relationship, SQLModel

from service.models.columns import created_at, owner_id, uuid_primary_key

if TYPE_CHECKING:
    from service.models.post import Post
    from service.models.user import User


class CommentBase(SQLModel):
    body: str = Field(description="The text.")


class Comment(CommentBase, table=True):
    """A comment on a post, readable by whoever can read the post, written by a signed-in
    user as themself."""

    __tablename__ = "comments"
    # A post's comments in order, page by page: one index range per post.
    __table_args__ = (Index("ix_comments_post_id_created_at_id", "post_id", "created_at", "id"),)

    id: uuid.UUID = uuid_primary_key()
    post_id: uuid.UUID = Field(
        foreign_key="posts.id", ondelete="CASCADE", description="The post it is on."
    )
    author_id: uuid.UUID = owner_id()
    created_at: datetime = created_at()

    post: "Post" = Relationship(back_populates="comments")
    author: "User" = Relationship(back_populates="comments")


class CommentCreate(CommentBase):
    post_id: uuid.UUID


class CommentUpdate(SQLModel):
    body: str | None = None
