"""GraphiQL in headless Chromium against the real service, with every other host blocked.

`service serve` runs as a subprocess on a migrated database of this module's own, seeded with a
few posts; `service token` signs a token for the Authorization step. tests/e2e/graphiql.spec.mjs
(playwright-core driving Debian's chromium, no browser download) does the clicking and typing,
once for both tests here, and keeps screenshots in tests/e2e/artifacts/.

Without node or chromium the tests are skipped on a developer's machine, and fail in CI
(CI=true), where .ci/run installs chromium first.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import asyncpg
import pytest

from service.http.graphiql import BUILD_COMMAND, assets_built, assets_missing_message
from tests.served import served
from tests.support import ROOT, Server, service_env, sign_token

SPEC = ROOT / "tests" / "e2e" / "graphiql.spec.mjs"
ARTIFACTS = ROOT / "tests" / "e2e" / "artifacts"
PLAYWRIGHT = ROOT / "graphiql" / "node_modules" / "playwright-core"
EMAIL = "e2e@example.com"
JWT_SECRET = "graphiql-e2e-secret-graphiql-e2e-secret"
AUTHOR = "00000000-0000-0000-0000-0000000000e2"
SEED = f"""
INSERT INTO auth.users (id, email) VALUES ('{AUTHOR}', 'author@example.com');
INSERT INTO posts (title, content, published, author_id, created_at)
SELECT 'Offline post ' || i, 'Served without a CDN', true, '{AUTHOR}',
       timestamptz '2026-11-20T10:00:00Z' + i * interval '1 day'
FROM generate_series(1, 3) AS i;
INSERT INTO posts (title, content, published, author_id)
VALUES ('A draft nobody else sees', '-', false, '{AUTHOR}');
"""


def chromium() -> str | None:
    given = os.environ.get("CHROMIUM")
    if given:
        return given if os.access(given, os.X_OK) else None
    return shutil.which("chromium")


def missing_tools() -> str | None:
    if shutil.which("node") is None:
        return "node is not on PATH (./dev puts the venv's Node.js there)"
    if chromium() is None:
        return "Debian's chromium is not installed (apt-get install chromium; .ci/run does)"
    return None


@dataclass
class BrowserRun:
    output: str
    returncode: int


@pytest.fixture(scope="module")
def browser_run(postgres: Server, template: str) -> Iterator[BrowserRun]:
    if reason := missing_tools():
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI must run the GraphiQL browser test, but {reason}")
        pytest.skip(reason)
    if not assets_built():
        pytest.fail(assets_missing_message())
    if not PLAYWRIGHT.is_dir():
        pytest.fail(f"playwright-core is not installed: run {BUILD_COMMAND} (it runs npm ci)")

    name = f"graphiql_e2e_{os.getpid()}"
    postgres.run(f"CREATE DATABASE {name} TEMPLATE {template}")
    url = postgres.url(name)
    try:
        asyncio.run(_seed(url.asyncpg_kwargs()))
        with served(url, JWT_SECRET=JWT_SECRET) as base:
            token = sign_token(
                service_env(DATABASE_URL=url.sqlalchemy, JWT_SECRET=JWT_SECRET), EMAIL
            )
            spec_env = {
                **os.environ,
                "GRAPHIQL_E2E_BASE_URL": base,
                "GRAPHIQL_E2E_QUERY": "{ posts(orderBy: [{createdAt: DESC}]) { nodes { title } } }",
                "GRAPHIQL_E2E_EXPECT": "Offline post 3",
                "GRAPHIQL_E2E_ARTIFACTS": str(ARTIFACTS),
                "CHROMIUM": chromium() or "",
                "GRAPHIQL_E2E_TOKEN": token,
                "GRAPHIQL_E2E_VIEWER_EXPECT": EMAIL,
                "GRAPHIQL_E2E_SQL": "1",
            }
            result = subprocess.run(
                ["node", str(SPEC)],
                cwd=ROOT,
                env=spec_env,
                capture_output=True,
                text=True,
                timeout=180,
                check=False,
            )
        yield BrowserRun(result.stdout + result.stderr, result.returncode)
    finally:
        postgres.run(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


async def _seed(connect: dict[str, object]) -> None:
    connection = await asyncpg.connect(**connect)
    try:
        await connection.execute(SEED)
    finally:
        await connection.close()


def test_graphiql_loads_offline_and_a_typed_query_shows_posts(browser_run: BrowserRun) -> None:
    print(browser_run.output)
    assert browser_run.returncode == 0, browser_run.output
    assert '- response shows "Offline post 3"' in browser_run.output


def test_the_sql_panel_shows_what_the_last_run_sent(browser_run: BrowserRun) -> None:
    assert browser_run.returncode == 0, browser_run.output
    assert "- the SQL panel shows the statement and its plan" in browser_run.output


def test_an_authorization_header_set_in_graphiql_changes_viewer(browser_run: BrowserRun) -> None:
    assert browser_run.returncode == 0, browser_run.output
    assert f'- with the token, viewer shows "{EMAIL}"' in browser_run.output


def test_a_subscription_in_graphiql_shows_its_live_answer(browser_run: BrowserRun) -> None:
    assert browser_run.returncode == 0, browser_run.output
    assert "- subscription over WebSocket shows totalCount 0" in browser_run.output
    assert "- a post created meanwhile: the live answer shows totalCount 1" in browser_run.output
