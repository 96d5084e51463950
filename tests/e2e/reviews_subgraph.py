"""A second federation subgraph for tests/e2e/federation.spec.mjs: reviews of the service's posts.

Written with Strawberry's own federation support, as another team's subgraph would be. It knows
posts only by id: their titles and authors come from the service through Apollo Gateway, which
calls the service's `_entities`; the gateway in turn asks this subgraph for `Post.reviews`.
One review per post id given, in order ("Review 1", "Review 2", ...); `reviewPage` pages them with
a PageInfo of its own, which composes with the service's because both are @shareable.
    python tests/e2e/reviews_subgraph.py PORT POST_ID [POST_ID ...]
"""

from __future__ import annotations

import sys
import uuid

import strawberry
import uvicorn
from strawberry.asgi import GraphQL


@strawberry.federation.type(keys=["id"])
class Post:
    id: uuid.UUID

    @strawberry.field
    def reviews(self) -> list[Review]:
        return [review for review in REVIEWS if review.post_id == self.id]

    @classmethod
    def resolve_reference(cls, id: str) -> Post:
        return cls(id=uuid.UUID(id))


@strawberry.type
class Review:
    body: str
    post_id: strawberry.Private[uuid.UUID]

    @strawberry.field
    def post(self) -> Post | None:
        # Nullable: the service answers null for a post the caller may not see (RLS).
        return Post(id=self.post_id)


# Relay's PageInfo, as most subgraphs have it; the service has one too, so both are @shareable.
@strawberry.federation.type(shareable=True)
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class ReviewPage:
    nodes: list[Review]
    page_info: PageInfo


@strawberry.type
class Query:
    @strawberry.field
    def reviews(self) -> list[Review]:
        return REVIEWS

    @strawberry.field
    def review_page(self, first: int) -> ReviewPage:
        """The first `first` reviews; cursors are positions, enough for a test."""
        nodes = REVIEWS[:first]
        return ReviewPage(
            nodes=nodes,
            page_info=PageInfo(
                has_next_page=len(REVIEWS) > first,
                has_previous_page=False,
                start_cursor="0" if nodes else None,
                end_cursor=str(len(nodes) - 1) if nodes else None,
            ),
        )


REVIEWS: list[Review] = []

if __name__ == "__main__":
    port, *post_ids = sys.argv[1:]
    REVIEWS.extend(
        Review(body=f"Review {n}", post_id=uuid.UUID(post_id))
        for n, post_id in enumerate(post_ids, start=1)
    )
    schema = strawberry.federation.Schema(query=Query)
    uvicorn.run(GraphQL(schema), host="127.0.0.1", port=int(port), log_level="warning")
