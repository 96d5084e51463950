"""GraphiQL served entirely by the service: the HTML page and its built assets.

The assets (scripts, stylesheet, Monaco's workers) are built from npm by ``graphiql/build.sh``
into ``service/http/static/graphiql/`` with content-hashed names, a ``.gz`` and a ``.br`` copy of
each, and ``manifest.json`` (logical name -> file). Nothing is loaded from another host.

Mounting (in the application)::

    routes = [
        Mount(ASSETS_PATH, app=graphiql_assets_app(), name="graphiql-assets"),
        ...,
    ]
    # in GET /graphql: if wants_graphiql(request): return graphiql_response(request)
"""

from __future__ import annotations

import html
import json
import mimetypes
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, Response
from starlette.staticfiles import NotModifiedResponse, StaticFiles
from starlette.types import Scope

from service.http.negotiate import accepted, accepts_coding

__all__ = [
    "ASSETS_PATH",
    "BUILD_COMMAND",
    "CONTENT_SECURITY_POLICY",
    "DEFAULT_QUERY",
    "STATIC_DIR",
    "GraphiQLAssetsMissing",
    "Manifest",
    "PrecompressedStaticFiles",
    "assets_built",
    "assets_missing_message",
    "graphiql_assets_app",
    "graphiql_endpoint",
    "graphiql_html",
    "graphiql_response",
    "load_manifest",
    "wants_graphiql",
]

# Where the application mounts `graphiql_assets_app()`.
ASSETS_PATH = "/graphiql/assets"
# Where graphiql/build.sh writes the assets (ignored by git; shipped in the wheel and the image).
STATIC_DIR = Path(__file__).resolve().parent / "static" / "graphiql"
BUILD_COMMAND = "graphiql/build.sh"

DEFAULT_QUERY = """\
# Welcome to the service's GraphiQL.
#
# Without a token you see published posts only.
# To act as a user, get a token with
#   service token --email you@example.com
# and put it in the Headers tab below:
#   {"Authorization": "Bearer <token>"}
#
# Run a query with Ctrl-Enter or the run button. Every query field is also
# a live subscription: write `subscription` for `query` (one field), and
# the answer comes again whenever it changes.
query RecentPosts {
  posts(first: 10, orderBy: [{createdAt: DESC}]) {
    aggregates {
      count
      max {
        createdAt
      }
    }
    nodes {
      id
      title
      createdAt
      author {
        id
      }
      comments(first: 3) {
        nodes {
          body
        }
      }
    }
  }
  viewer {
    id
    email
  }
}
"""

# What the page needs and nothing more. Styles: React and Monaco set inline styles, and
# graphiql's stylesheet inlines its fonts as data: URLs. Workers: Monaco's, from ASSETS_PATH.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "font-src 'self' data:",
        "img-src 'self' data:",
        "worker-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)

_PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    # The page names hashed assets of the current build: always revalidate it.
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Vary": "Accept",
}

# esbuild's content hash: 8 characters of upper-case base32 before the extension(s).
_HASHED_NAME = re.compile(r"-[A-Z2-7]{8}\.")
IMMUTABLE = "public, max-age=31536000, immutable"

_MEDIA_TYPES = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".css": "text/css",
    ".json": "application/json",
    ".map": "application/json",
    ".txt": "text/plain",
    ".wasm": "application/wasm",
    ".ttf": "font/ttf",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".svg": "image/svg+xml",
}

# Precompressed variants written by the build, in order of preference.
_ENCODINGS = (("br", ".br"), ("gzip", ".gz"))


class GraphiQLAssetsMissing(RuntimeError):
    """The assets have not been built (or the build is incomplete)."""


def assets_missing_message(directory: Path = STATIC_DIR) -> str:
    return (
        f"GraphiQL's assets are not built ({directory / 'manifest.json'} is missing). "
        f"Build them with `{BUILD_COMMAND}` (needs Node.js >= 20 and npm; "
        "it runs `npm ci` and esbuild)."
    )


@dataclass(frozen=True)
class Manifest:
    main_js: str
    main_css: str
    workers: dict[str, str]


@lru_cache(maxsize=8)
def _read_manifest(path: str, _mtime_ns: int) -> Manifest:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    entries: dict[str, str] = data["entries"]
    workers = {
        key.removeprefix("worker/"): name
        for key, name in entries.items()
        if key.startswith("worker/")
    }
    return Manifest(main_js=entries["main.js"], main_css=entries["main.css"], workers=workers)


def load_manifest(directory: Path = STATIC_DIR) -> Manifest:
    """The current build's manifest; raises GraphiQLAssetsMissing when there is none."""
    path = directory / "manifest.json"
    try:
        mtime_ns = path.stat().st_mtime_ns
        return _read_manifest(str(path), mtime_ns)
    except (OSError, ValueError, KeyError) as exc:
        raise GraphiQLAssetsMissing(assets_missing_message(directory)) from exc


def assets_built(directory: Path = STATIC_DIR) -> bool:
    """True when the manifest and every entry it names exist."""
    try:
        manifest = load_manifest(directory)
    except GraphiQLAssetsMissing:
        return False
    names = [manifest.main_js, manifest.main_css, *manifest.workers.values()]
    return all((directory / name).is_file() for name in names)


def _json_for_html(value: object) -> str:
    """JSON that cannot end the <script> data block it sits in."""
    text = json.dumps(value, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def graphiql_html(
    *,
    endpoint: str = "/graphql",
    assets_url: str = ASSETS_PATH,
    default_query: str = DEFAULT_QUERY,
    default_headers: str = "",
    show_headers: bool = True,
    explain: bool = False,
    title: str = "GraphiQL",
    directory: Path = STATIC_DIR,
) -> str:
    """The GraphiQL page. No inline script: the bundle reads its configuration from a JSON data
    block. ``default_headers`` is empty by default, so no placeholder token is ever sent (a bad
    token is a 401); the default query tells how to get a token and where to put it.

    Raises GraphiQLAssetsMissing when the assets are not built.
    """
    manifest = load_manifest(directory)
    base = assets_url.rstrip("/")
    config = {
        "endpoint": endpoint,
        "defaultQuery": default_query,
        "defaultHeaders": default_headers,
        "showHeaders": show_headers,
        "explain": explain,  # the SQL panel, for a service that answers X-Explain
        "workers": {label: f"{base}/{name}" for label, name in manifest.workers.items()},
    }
    css = html.escape(f"{base}/{manifest.main_css}")
    js = html.escape(f"{base}/{manifest.main_js}")
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{css}">
<script type="module" src="{js}"></script>
</head>
<body>
<div id="graphiql">Loading GraphiQL…</div>
<noscript>GraphiQL needs JavaScript.</noscript>
<script type="application/json" id="graphiql-config">{_json_for_html(config)}</script>
</body>
</html>
"""


def wants_graphiql(request: Request) -> bool:
    """A browser navigating to the endpoint: GET (or HEAD) without a `query` parameter and an
    Accept header that names text/html. API clients sending `Accept: */*` get the API."""
    if request.method not in ("GET", "HEAD") or "query" in request.query_params:
        return False
    return accepted(request.headers.get("accept", "")).get("text/html", 0.0) > 0.0


def graphiql_response(
    request: Request,
    *,
    default_query: str = DEFAULT_QUERY,
    directory: Path = STATIC_DIR,
    explain: bool = False,
) -> Response:
    """The page for this request (endpoint = the request's own path, assets under the app's
    root path), with its Content-Security-Policy; a 503 telling how to build when not built."""
    root_path: str = request.scope.get("root_path", "")
    endpoint = request.url.path
    # ASGI servers put the root path in `path`; some (Starlette's TestClient) do not.
    if root_path and not endpoint.startswith(f"{root_path}/"):
        endpoint = root_path + endpoint
    try:
        page = graphiql_html(
            endpoint=endpoint,
            assets_url=root_path + ASSETS_PATH,
            default_query=default_query,
            directory=directory,
            explain=explain,
        )
    except GraphiQLAssetsMissing as exc:
        return PlainTextResponse(str(exc), status_code=503, headers={"Cache-Control": "no-store"})
    return HTMLResponse(page, headers=_PAGE_HEADERS)


async def graphiql_endpoint(request: Request) -> Response:
    """A Starlette endpoint serving the page, for a route of its own."""
    return graphiql_response(request)


class PrecompressedStaticFiles(StaticFiles):
    """StaticFiles that serves the build's `.br`/`.gz` copy when the client accepts it, and marks
    hashed names immutable."""

    async def check_config(self) -> None:
        # Not built yet: answer 404 (the page says how to build) instead of StaticFiles' error.
        if self.directory is not None and not os.path.isdir(self.directory):
            return
        await super().check_config()

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        request_headers = Headers(scope=scope)
        name = os.path.basename(full_path)
        suffix = os.path.splitext(name)[1].lower()
        media_type = (
            _MEDIA_TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"
        )
        headers = {
            "Cache-Control": IMMUTABLE if _HASHED_NAME.search(name) else "no-cache",
            "X-Content-Type-Options": "nosniff",
        }
        path: str | os.PathLike[str] = full_path
        compressible = suffix not in (".gz", ".br")
        if compressible:
            headers["Vary"] = "Accept-Encoding"
            accept_encoding = request_headers.get("accept-encoding", "")
            for coding, extension in _ENCODINGS:
                if not accepts_coding(accept_encoding, coding):
                    continue
                variant = f"{os.fspath(full_path)}{extension}"
                try:
                    variant_stat = os.stat(variant)
                except OSError:
                    continue
                path, stat_result = variant, variant_stat
                headers["Content-Encoding"] = coding
                break
        # The type of the original file, also when serving its compressed copy.
        response = FileResponse(
            path,
            status_code=status_code,
            stat_result=stat_result,
            media_type=media_type,
            headers=headers,
        )
        if self.is_not_modified(response.headers, request_headers):
            return NotModifiedResponse(response.headers)
        return response


def graphiql_assets_app(directory: Path = STATIC_DIR) -> PrecompressedStaticFiles:
    """The ASGI app serving the built assets; mount it at ASSETS_PATH. It starts even when the
    assets are not built (then it answers 404): check `assets_built()` to warn at startup."""
    return PrecompressedStaticFiles(directory=directory, check_dir=False)
