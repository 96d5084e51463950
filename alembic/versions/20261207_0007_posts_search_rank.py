"""posts_search_rank(post, query): how well a post matches a search, for the best first

`searchPosts(query:)` without an `orderBy` lists the best matches first: PostgreSQL's ts_rank
of the post's stored words against the query (more of its words, and more often, rank
higher), then the id. The rank is a keyset of the page like any sort key, so cursors stay
stable. It is also the computed column `searchRank(query:)` of a post, named as PostGraphile
names a row's functions (`<table>_<column>`).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION public.posts_search_rank(post public.posts, query text) RETURNS real
        LANGUAGE sql STABLE AS $$
            SELECT ts_rank(post.search_vector, websearch_to_tsquery('english'::regconfig, query))
        $$
        """
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION public.posts_search_rank(public.posts, text)")
