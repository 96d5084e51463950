"""full-text search of posts: a stored tsvector of each post and search_posts(query)

`searchPosts(query:)` in the API is a connection over search_posts(query), which returns the
posts whose title and content match a web-search style query (`"exact phrase" -word or other`,
English stemming: "benchmarks" finds "benchmarking"). The function runs as the caller, so
Row Level Security decides which of the matches they see.

The words are stored (a generated column) rather than computed per search: under Row Level
Security PostgreSQL cannot use an index for `@@`, whose function is not leakproof, so each
search reads every visible post; from the stored vector that took 8 ms for 20,000 posts, from
title and content 960 ms. Adding the column rewrites the table once.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "posts",
        sa.Column(
            "search_vector",
            postgresql.TSVECTOR(),
            sa.Computed(
                "to_tsvector('english'::regconfig, title || ' ' || content)", persisted=True
            ),
            nullable=True,
        ),
    )
    # SQL, STABLE and of one SELECT: PostgreSQL inlines it into the API's statement, so the
    # page's filter, order and LIMIT apply inside it.
    op.execute(
        """
        CREATE FUNCTION public.search_posts(query text) RETURNS SETOF public.posts
        LANGUAGE sql STABLE AS $$
            SELECT * FROM public.posts
            WHERE search_vector @@ websearch_to_tsquery('english'::regconfig, query)
        $$
        """
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION public.search_posts(text)")
    op.drop_column("posts", "search_vector")
