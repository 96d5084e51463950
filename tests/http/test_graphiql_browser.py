"""Runs tests/e2e/graphiql.spec.mjs: GraphiQL in headless Chromium with every other host blocked.

Against a running service when GRAPHIQL_E2E_BASE_URL is set (plus GRAPHIQL_E2E_TOKEN etc., see the
script); otherwise against a small Starlette app started here on 127.0.0.1 (uvicorn, a real HTTP
server) that serves the real page and assets and a small Strawberry schema shaped like ours.
Skipped only when node or chromium is missing.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from enum import Enum
from pathlib import Path

import pytest
import strawberry
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from starlette.types import Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.types import Info

from service.http.graphiql import (
    ASSETS_PATH,
    BUILD_COMMAND,
    assets_built,
    assets_missing_message,
    graphiql_assets_app,
    graphiql_response,
    wants_graphiql,
)

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "tests" / "e2e" / "graphiql.spec.mjs"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
NODE = shutil.which("node")
TOKEN = "e2e-token"
EMAIL = "e2e@example.com"

pytestmark = pytest.mark.skipif(
    NODE is None or not os.access(CHROMIUM, os.X_OK),
    reason=f"needs node and Chromium at {CHROMIUM} (Debian: apt-get install nodejs chromium)",
)


# A stand-in for the service's schema: the same field shapes the default query uses.
@strawberry.enum
class OrderDirection(Enum):
    ASC = "ASC"
    DESC = "DESC"


@strawberry.input
class PostOrderBy:
    created_at: OrderDirection | None = None


@strawberry.type
class User:
    id: strawberry.ID
    email: str | None


@strawberry.type
class Comment:
    body: str


@strawberry.type
class CommentConnection:
    nodes: list[Comment]


@strawberry.type
class Post:
    id: strawberry.ID
    title: str
    created_at: str
    author: User | None

    @strawberry.field
    def comments(self, first: int = 20) -> CommentConnection:
        return CommentConnection(nodes=[Comment(body=f"A comment on {self.title}")][:first])


@strawberry.type
class PostConnection:
    nodes: list[Post]


AUTHOR = User(id=strawberry.ID("7f1c0a52-0000-4000-8000-000000000001"), email=None)
POSTS = [
    Post(
        id=strawberry.ID(f"7f1c0a52-0000-4000-8000-00000000010{i}"),
        title=f"Offline post {i}",
        created_at=f"2026-11-2{i}T10:00:00+00:00",
        author=AUTHOR,
    )
    for i in range(1, 4)
]


@strawberry.type
class Query:
    @strawberry.field
    def posts(self, first: int = 20, order_by: list[PostOrderBy] | None = None) -> PostConnection:
        nodes = POSTS
        if order_by and order_by[0].created_at is OrderDirection.DESC:
            nodes = list(reversed(nodes))
        return PostConnection(nodes=nodes[:first])

    @strawberry.field
    def viewer(self, info: Info) -> User | None:
        request: Request = info.context["request"]
        if request.headers.get("authorization") == f"Bearer {TOKEN}":
            return User(id=strawberry.ID("7f1c0a52-0000-4000-8000-0000000000aa"), email=EMAIL)
        return None


class GraphQLEndpoint:
    """GET from a browser: the page; otherwise the API. A bad token is a 401, as in the service."""

    def __init__(self) -> None:
        self.api = GraphQL(strawberry.Schema(query=Query), graphql_ide=None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        authorization = request.headers.get("authorization")
        if wants_graphiql(request):
            response = graphiql_response(request)
        elif authorization is not None and authorization != f"Bearer {TOKEN}":
            response = JSONResponse(
                {
                    "errors": [
                        {"message": "invalid token", "extensions": {"code": "UNAUTHENTICATED"}}
                    ]
                },
                status_code=401,
            )
        else:
            await self.api(scope, receive, send)
            return
        await response(scope, receive, send)


def stub_app() -> Starlette:
    return Starlette(
        routes=[
            Mount(ASSETS_PATH, app=graphiql_assets_app()),
            Route("/graphql", GraphQLEndpoint(), methods=["GET", "POST"]),
        ]
    )


@pytest.fixture
def base_url() -> Iterator[str]:
    if url := os.environ.get("GRAPHIQL_E2E_BASE_URL"):
        yield url
        return
    if not assets_built():
        pytest.fail(assets_missing_message())
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(stub_app(), log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the stub server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def test_graphiql_in_chromium(base_url: str, tmp_path: Path) -> None:
    playwright = ROOT / "graphiql" / "node_modules" / "playwright-core"
    if not playwright.is_dir():
        pytest.fail(f"playwright-core is not installed: run {BUILD_COMMAND} (it runs npm ci)")
    env = {**os.environ, "GRAPHIQL_E2E_BASE_URL": base_url, "CHROMIUM": CHROMIUM}
    if "GRAPHIQL_E2E_BASE_URL" not in os.environ:
        env |= {
            "GRAPHIQL_E2E_EXPECT": "Offline post 1",
            "GRAPHIQL_E2E_TOKEN": TOKEN,
            "GRAPHIQL_E2E_VIEWER_EXPECT": EMAIL,
        }
    env.setdefault("GRAPHIQL_E2E_ARTIFACTS", str(ROOT / "tests" / "e2e" / "artifacts"))
    assert NODE is not None
    result = subprocess.run(
        [NODE, str(SPEC)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    output = result.stdout + result.stderr
    print(output)
    assert result.returncode == 0, output
