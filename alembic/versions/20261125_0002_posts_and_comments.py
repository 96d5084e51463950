"""posts and comments, their indexes, Row Level Security policies and grants

Policies (API.md): a user manages their own rows; everyone reads published posts and the
comments on posts they can read; only an authenticated user creates comments, as themselves.
`(select auth.uid())` lets PostgreSQL evaluate the caller's id once per statement.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


POLICIES_AND_GRANTS = [
    """
    ALTER TABLE posts ENABLE ROW LEVEL SECURITY
    """,
    """
    ALTER TABLE comments ENABLE ROW LEVEL SECURITY
    """,
    """
    CREATE POLICY posts_read ON posts FOR SELECT
        USING (published OR (SELECT auth.uid()) = author_id)
    """,
    """
    CREATE POLICY posts_insert_own ON posts FOR INSERT TO authenticated
        WITH CHECK ((SELECT auth.uid()) = author_id)
    """,
    """
    CREATE POLICY posts_update_own ON posts FOR UPDATE TO authenticated
        USING ((SELECT auth.uid()) = author_id)
        WITH CHECK ((SELECT auth.uid()) = author_id)
    """,
    """
    CREATE POLICY posts_delete_own ON posts FOR DELETE TO authenticated
        USING ((SELECT auth.uid()) = author_id)
    """,
    """
    -- The sub-select on posts runs under posts' own policies: readable post, readable comments.
    CREATE POLICY comments_read ON comments FOR SELECT
        USING (
        (SELECT auth.uid()) = author_id
        OR EXISTS (SELECT FROM posts WHERE posts.id = comments.post_id)
        )
    """,
    """
    CREATE POLICY comments_insert_own ON comments FOR INSERT TO authenticated
        WITH CHECK (
        (SELECT auth.uid()) = author_id
        AND EXISTS (SELECT FROM posts WHERE posts.id = comments.post_id)
        )
    """,
    """
    CREATE POLICY comments_update_own ON comments FOR UPDATE TO authenticated
        USING ((SELECT auth.uid()) = author_id)
        WITH CHECK ((SELECT auth.uid()) = author_id)
    """,
    """
    CREATE POLICY comments_delete_own ON comments FOR DELETE TO authenticated
        USING ((SELECT auth.uid()) = author_id)
    """,
    """
    GRANT USAGE ON SCHEMA public TO anon, authenticated
    """,
    """
    GRANT SELECT ON posts, comments TO anon
    """,
    """
    GRANT SELECT, INSERT, UPDATE, DELETE ON posts, comments TO authenticated
    """,
]


def upgrade() -> None:
    op.create_table(
        "posts",
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("content", sa.String(), nullable=False),
        sa.Column("published", sa.Boolean(), nullable=False),
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("author_id", sa.Uuid(), server_default=sa.text("auth.uid()"), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(["author_id"], ["auth.users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_posts_author_id", "posts", ["author_id"])
    op.create_table(
        "comments",
        sa.Column("body", sa.String(), nullable=False),
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("post_id", sa.Uuid(), nullable=False),
        sa.Column("author_id", sa.Uuid(), server_default=sa.text("auth.uid()"), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(["author_id"], ["auth.users.id"]),
        sa.ForeignKeyConstraint(["post_id"], ["posts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_comments_post_id", "comments", ["post_id"])
    op.create_index("ix_comments_author_id", "comments", ["author_id"])

    # asyncpg runs one statement per execute.
    for statement in POLICIES_AND_GRANTS:
        op.execute(statement)


def downgrade() -> None:
    op.execute("REVOKE ALL ON posts, comments FROM anon, authenticated")
    op.drop_index("ix_comments_author_id", table_name="comments")
    op.drop_index("ix_comments_post_id", table_name="comments")
    op.drop_table("comments")  # its policies go with it
    op.drop_index("ix_posts_author_id", table_name="posts")
    op.drop_table("posts")
