"""Post: `public.posts`, with the Create/Update shapes that define its API inputs."""

import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Column, Computed, Index
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlmodel import Field, Relationship, SQLModel

from service.models.columns import created_at, owner_id, updated_at, uuid_primary_key

if TYPE_CHECKING:
    from service.models.comment import Comment
    from service.models.user import User


# English words (stemmed, stop words dropped) of a post, stored beside it for searching.
SEARCH_VECTOR = "to_tsvector('english'::regconfig, title || ' ' || content)"


class PostBase(SQLModel):
    title: str = Field(max_length=255, description="The headline, at most 255 characters.")
    content: str = Field(description="The text.")
    published: bool = Field(
        default=False,
        description="Readable by everyone when true; when false a draft, which only its "
        "author sees.",
    )


class Post(PostBase, table=True):
    """A post: published for everyone to read, or a draft only its author sees."""

    __tablename__ = "posts"
    # The newest-first page is the common read; the id makes it a keyset for cursors.
    __table_args__ = (Index("ix_posts_created_at_id", "created_at", "id"),)
    # searchPosts(query:): the rows search_posts(text) returns (migration 0006), best first
    # by posts_search_rank(posts, text) unless the client orders them (0007); that rank is
    # also a post's searchRank(query:)
    __query_functions__ = {"search_posts": {"query": str}}
    __query_function_ranks__ = {"search_posts": "posts_search_rank"}
    __computed_columns__ = {"search_rank": (float, {"query": str})}

    id: uuid.UUID = uuid_primary_key()
    author_id: uuid.UUID = owner_id()
    created_at: datetime = created_at()
    updated_at: datetime = updated_at()
    # The words of the title and content, kept by PostgreSQL for search_posts; not in the API.
    search_vector: str | None = Field(
        default=None,
        exclude=True,
        sa_column=Column(TSVECTOR, Computed(SEARCH_VECTOR, persisted=True)),
    )

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
