"""The SQLModel table models. Every table model imported here gets its whole GraphQL API."""

from service.models.comment import Comment, CommentBase, CommentCreate, CommentUpdate
from service.models.post import Post, PostBase, PostCreate, PostUpdate
from service.models.user import User

__all__ = [
    "Comment",
    "CommentBase",
    "CommentCreate",
    "CommentUpdate",
    "Post",
    "PostBase",
    "PostCreate",
    "PostUpdate",
    "User",
]
