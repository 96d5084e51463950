"""Latency of the heavier features on the rig's data: each operation sent alone (nothing else in
flight) through the ASGI app in-process, against a real database; the README's figures for
search, grouped aggregates, counts and orders by related rows come from here.

    DATABASE_URL=postgres://... JWT_SECRET=... .venv/bin/python bench/feature_latency.py

The database needs our schema and the rig's data (`bench_ours` after a rig run: 20,000 posts,
200,000 comments). Requests are anonymous: every post there is published. Prints, per
operation, the median and the fastest of `--runs` requests after one warm-up, in ms.
"""

from __future__ import annotations

import argparse
import statistics
import time

import orjson
import uvloop
from asgi_cpu import post_graphql, send_one  # (bench/, the script's folder)

from service.app import create_app
from service.settings import get_settings

OPERATIONS = {
    "search: a phrase in one post": '{ searchPosts(query: "\\"post 17\\"") { nodes { id } } }',
    "search: a word in every post, best first, counted": """{ searchPosts(query: "lorem",
        first: 20) { totalCount nodes { id } } }""",
    "search: a word in every post, newest first": """{ searchPosts(query: "lorem", first: 20,
        orderBy: {createdAt: DESC}) { nodes { id } } }""",
    "posts ordered by their comment count": """{ posts(first: 10,
        orderBy: {comments: {count: DESC}}) { nodes { id } } }""",
    "top ten posts by comments (grouped)": """{ comments { groupedAggregates(groupBy: POST_ID,
        orderBy: {count: DESC}, first: 10) { keys { postId } count } } }""",
    "distinct commenters and commented posts": """{ comments { aggregates {
        distinctCount { authorId postId } } } }""",
    "posts with at least 12 comments": """{ posts(filter: {comments: {count: {gte: 12}}})
        { totalCount } }""",
    "posts per month": """{ posts { groupedAggregates(groupBy: CREATED_AT_TRUNCATED_TO_MONTH)
        { keys { createdAt } count } } }""",
}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="timed requests per operation")
    args = parser.parse_args()
    settings = get_settings()
    assert settings.database_url, "set DATABASE_URL to the rig's database (bench_ours)"
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        for name, query in OPERATIONS.items():
            body = orjson.dumps({"query": query})
            scope = post_graphql(body)
            answer = orjson.loads(await send_one(app, scope, body))  # the warm-up
            assert "errors" not in answer, (name, answer["errors"])
            times = []
            for _ in range(args.runs):
                started = time.perf_counter()
                await send_one(app, scope, body)
                times.append((time.perf_counter() - started) * 1e3)
            median = statistics.median(times)
            print(f"{name}: {median:.1f} ms (fastest {min(times):.1f})")


if __name__ == "__main__":
    uvloop.run(main())  # the service's event loop
