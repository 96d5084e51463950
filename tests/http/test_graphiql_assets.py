"""GraphiQL's page and asset serving, on a small Starlette app mounting service.http.graphiql."""

from __future__ import annotations

import gzip
import json
import os
from html.parser import HTMLParser
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from service.http import graphiql
from service.http.graphiql import (
    ASSETS_PATH,
    BUILD_COMMAND,
    CONTENT_SECURITY_POLICY,
    IMMUTABLE,
    STATIC_DIR,
    assets_built,
    graphiql_assets_app,
    graphiql_html,
    graphiql_response,
    load_manifest,
    wants_graphiql,
)

MAIN_JS = b"console.log('graphiql');\n" * 200
MAIN_CSS = b"body { margin: 0 }\n" * 200
WORKER = b"self.onmessage = () => {};\n" * 100


@pytest.fixture
def built(tmp_path: Path) -> Path:
    """A build output shaped like graphiql/build.mjs's, with stand-in contents."""
    files = {
        "main-ABCDEF23.js": MAIN_JS,
        "main-QWERTY45.css": MAIN_CSS,
        "chunk-ZZZZ2345.js": b"export const x = 1;\n",
        "worker-editor-AAAA2222.js": WORKER,
        "worker-json-BBBB3333.js": WORKER,
        "worker-graphql-CCCC4444.js": WORKER,
    }
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    for name in ("main-ABCDEF23.js", "main-QWERTY45.css"):
        content = files[name]
        (tmp_path / f"{name}.gz").write_bytes(gzip.compress(content, mtime=0))
        # The client never decodes it here: any bytes tell which file was served.
        (tmp_path / f"{name}.br").write_bytes(b"brotli:" + name.encode())
    manifest = {
        "manifestVersion": 1,
        "entries": {
            "main.js": "main-ABCDEF23.js",
            "main.css": "main-QWERTY45.css",
            "worker/editor": "worker-editor-AAAA2222.js",
            "worker/json": "worker-json-BBBB3333.js",
            "worker/graphql": "worker-graphql-CCCC4444.js",
        },
        "files": {},
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    return tmp_path


def make_app(directory: Path) -> Starlette:
    async def graphql(request: Request) -> Response:
        if wants_graphiql(request):
            return graphiql_response(request, directory=directory)
        return PlainTextResponse("the API")

    return Starlette(
        routes=[
            Mount(ASSETS_PATH, app=graphiql_assets_app(directory)),
            Route("/graphql", graphql, methods=["GET", "POST"]),
        ]
    )


@pytest.fixture
def client(built: Path) -> TestClient:
    return TestClient(make_app(built))


BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


class PageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.links: list[dict[str, str | None]] = []
        self.inline_handlers: list[str] = []
        self._in_script: dict[str, str | None] | None = None
        self.script_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.inline_handlers += [name for name in attributes if name.startswith("on")]
        if tag == "script":
            self.scripts.append(attributes)
            self._in_script = attributes
        elif tag == "link":
            self.links.append(attributes)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = None

    def handle_data(self, data: str) -> None:
        if self._in_script is not None and data.strip():
            self.script_text.append(data)


def parse(html: str) -> PageParser:
    parser = PageParser()
    parser.feed(html)
    return parser


def test_page_for_a_browser(client: TestClient) -> None:
    response = client.get("/graphql", headers={"Accept": BROWSER_ACCEPT})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-content-type-options"] == "nosniff"


def test_csp_is_strict() -> None:
    directives = dict(d.split(" ", 1) for d in CONTENT_SECURITY_POLICY.split("; "))
    assert directives["script-src"] == "'self'"
    assert directives["default-src"] == "'self'"
    assert directives["connect-src"] == "'self'"
    assert directives["worker-src"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe-eval" not in CONTENT_SECURITY_POLICY
    assert "http" not in CONTENT_SECURITY_POLICY


def test_page_references_only_same_origin_hashed_assets(client: TestClient, built: Path) -> None:
    page = parse(client.get("/graphql", headers={"Accept": BROWSER_ACCEPT}).text)
    assert page.inline_handlers == []
    executable = [s for s in page.scripts if s.get("type") != "application/json"]
    assert executable == [{"type": "module", "src": f"{ASSETS_PATH}/main-ABCDEF23.js"}]
    # The only inline <script> is a JSON data block, which CSP does not treat as a script.
    data_blocks = [s for s in page.scripts if s.get("type") == "application/json"]
    assert len(data_blocks) == 1 and len(page.script_text) == 1
    config = json.loads(page.script_text[0])
    assert config["endpoint"] == "/graphql"
    assert config["workers"] == {
        "editor": f"{ASSETS_PATH}/worker-editor-AAAA2222.js",
        "json": f"{ASSETS_PATH}/worker-json-BBBB3333.js",
        "graphql": f"{ASSETS_PATH}/worker-graphql-CCCC4444.js",
    }
    urls = [s["src"] for s in executable] + [link["href"] for link in page.links]
    urls += list(config["workers"].values())
    for url in urls:
        assert url is not None
        assert url.startswith((f"{ASSETS_PATH}/", "data:")), url
        if url.startswith(ASSETS_PATH):
            assert (built / url.removeprefix(f"{ASSETS_PATH}/")).is_file()
            assert client.get(url).status_code == 200


def test_default_headers_send_no_token_and_query_tells_how(client: TestClient) -> None:
    page = parse(client.get("/graphql", headers={"Accept": BROWSER_ACCEPT}).text)
    config = json.loads(page.script_text[0])
    assert config["defaultHeaders"] == ""
    assert "service token --email" in config["defaultQuery"]
    assert '"Authorization": "Bearer <token>"' in config["defaultQuery"]
    assert config["defaultQuery"].lstrip().startswith("#")


def test_config_cannot_break_out_of_its_block(built: Path) -> None:
    html = graphiql_html(default_query="</script><script>alert(1)</script>", directory=built)
    page = parse(html)
    assert len([s for s in page.scripts if s.get("type") != "application/json"]) == 1
    assert json.loads(page.script_text[0])["defaultQuery"].startswith("</script>")


def test_page_follows_root_path(built: Path) -> None:
    client = TestClient(make_app(built), root_path="/api")
    page = parse(client.get("/graphql", headers={"Accept": BROWSER_ACCEPT}).text)
    assert page.links[-1]["href"] == f"/api{ASSETS_PATH}/main-QWERTY45.css"
    assert json.loads(page.script_text[0])["endpoint"] == "/api/graphql"


@pytest.mark.parametrize(
    ("method", "url", "accept", "expected"),
    [
        ("GET", "/graphql", BROWSER_ACCEPT, True),
        ("GET", "/graphql", "text/html", True),
        ("GET", "/graphql", "*/*", False),
        ("GET", "/graphql", "application/json", False),
        ("GET", "/graphql", "application/graphql-response+json, text/html;q=0", False),
        ("GET", "/graphql?query=%7B__typename%7D", BROWSER_ACCEPT, False),
        ("POST", "/graphql", BROWSER_ACCEPT, False),
    ],
)
def test_who_gets_the_page(
    client: TestClient, method: str, url: str, accept: str, expected: bool
) -> None:
    response = client.request(method, url, headers={"Accept": accept})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html") is expected


def test_hashed_assets_are_immutable(client: TestClient) -> None:
    response = client.get(f"{ASSETS_PATH}/chunk-ZZZZ2345.js")
    assert response.status_code == 200
    assert response.headers["cache-control"] == IMMUTABLE == "public, max-age=31536000, immutable"
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert response.headers["x-content-type-options"] == "nosniff"


def test_manifest_is_not_immutable(client: TestClient) -> None:
    response = client.get(f"{ASSETS_PATH}/manifest.json")
    assert response.headers["cache-control"] == "no-cache"


def test_gzip_when_accepted(client: TestClient) -> None:
    response = client.get(f"{ASSETS_PATH}/main-ABCDEF23.js", headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["vary"] == "Accept-Encoding"
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert response.headers["cache-control"] == IMMUTABLE
    assert int(response.headers["content-length"]) < len(MAIN_JS)
    assert response.content == MAIN_JS  # httpx decoded it


def raw_get(client: TestClient, url: str, accept_encoding: str) -> tuple[dict[str, str], bytes]:
    with client.stream("GET", url, headers={"Accept-Encoding": accept_encoding}) as response:
        assert response.status_code == 200
        return dict(response.headers), b"".join(response.iter_raw())


def test_brotli_preferred_when_accepted(client: TestClient) -> None:
    headers, body = raw_get(client, f"{ASSETS_PATH}/main-QWERTY45.css", "gzip, deflate, br")
    assert headers["content-encoding"] == "br"
    assert headers["content-type"] == "text/css; charset=utf-8"
    assert headers["vary"] == "Accept-Encoding"
    assert body == b"brotli:main-QWERTY45.css"


def test_refused_codings_and_identity(client: TestClient) -> None:
    url = f"{ASSETS_PATH}/main-ABCDEF23.js"
    headers, body = raw_get(client, url, "br;q=0, gzip;q=0.5")
    assert headers["content-encoding"] == "gzip"
    assert gzip.decompress(body) == MAIN_JS
    headers, body = raw_get(client, url, "identity")
    assert "content-encoding" not in headers
    assert headers["vary"] == "Accept-Encoding"
    assert body == MAIN_JS
    # No precompressed copy: the file itself.
    headers, body = raw_get(client, f"{ASSETS_PATH}/worker-json-BBBB3333.js", "gzip, br")
    assert "content-encoding" not in headers
    assert body == WORKER


def test_conditional_request(client: TestClient) -> None:
    url = f"{ASSETS_PATH}/main-ABCDEF23.js"
    first = client.get(url, headers={"Accept-Encoding": "gzip"})
    again = client.get(
        url, headers={"Accept-Encoding": "gzip", "If-None-Match": first.headers["etag"]}
    )
    assert again.status_code == 304
    # Another representation has another validator.
    identity = client.get(url, headers={"Accept-Encoding": "identity"})
    assert identity.headers["etag"] != first.headers["etag"]


def test_missing_asset_and_escape(client: TestClient) -> None:
    assert client.get(f"{ASSETS_PATH}/main-NOPE2345.js").status_code == 404
    assert client.get(f"{ASSETS_PATH}/../graphql").status_code == 404
    assert client.post(f"{ASSETS_PATH}/main-ABCDEF23.js").status_code == 405


def test_not_built(tmp_path: Path) -> None:
    empty = tmp_path / "nothing"
    assert not assets_built(empty)
    client = TestClient(make_app(empty))
    response = client.get("/graphql", headers={"Accept": BROWSER_ACCEPT})
    assert response.status_code == 503
    assert BUILD_COMMAND in response.text
    assert client.get(f"{ASSETS_PATH}/main-ABCDEF23.js").status_code == 404


def test_incomplete_build_is_not_built(built: Path) -> None:
    assert assets_built(built)
    (built / "worker-json-BBBB3333.js").unlink()
    assert not assets_built(built)


def test_manifest_is_reread_after_a_rebuild(built: Path) -> None:
    assert load_manifest(built).main_js == "main-ABCDEF23.js"
    manifest = json.loads((built / "manifest.json").read_text())
    manifest["entries"]["main.js"] = "main-NEWHASH2.js"
    (built / "manifest.json").write_text(json.dumps(manifest))
    stat = (built / "manifest.json").stat()
    os.utime(built / "manifest.json", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert load_manifest(built).main_js == "main-NEWHASH2.js"


# The real build, as graphiql/build.sh leaves it. CI builds it first: there, not built = failure.
def real_build_or_skip() -> None:
    if not assets_built():
        if os.environ.get("CI"):
            pytest.fail(graphiql.assets_missing_message())
        pytest.skip(graphiql.assets_missing_message())


def test_real_build_is_served_compressed_with_the_right_types() -> None:
    real_build_or_skip()
    client = TestClient(make_app(STATIC_DIR))
    page = parse(client.get("/graphql", headers={"Accept": BROWSER_ACCEPT}).text)
    config = json.loads(page.script_text[0])
    urls = [s["src"] for s in page.scripts if s.get("src")] + [page.links[-1]["href"]]
    urls += list(config["workers"].values())
    assert len(urls) == 5
    for url in urls:
        assert url is not None
        headers, body = raw_get(client, url, "gzip")
        assert headers["cache-control"] == IMMUTABLE
        assert headers["content-encoding"] == "gzip"
        assert headers["content-type"].split(";")[0] in ("text/javascript", "text/css")
        assert gzip.decompress(body) == (STATIC_DIR / url.rsplit("/", 1)[1]).read_bytes()
    manifest = json.loads((STATIC_DIR / "manifest.json").read_text())
    for name in manifest["files"]:
        assert (STATIC_DIR / name).is_file(), name
    # Nothing in the build points at another host.
    main_js = (STATIC_DIR / manifest["entries"]["main.js"]).read_text()
    assert "esm.sh" not in main_js and "unpkg.com" not in main_js
