"""schema.graphql: the committed SDL equals what `service schema` prints, and CI's schema diff
(tools/schema-diff.sh, graphql-inspector) reports breaking changes against the previous commit."""

from __future__ import annotations

import difflib
import subprocess
from pathlib import Path

import pytest

from tests.support import ROOT, SERVICE, service_env

SCHEMA_FILE = ROOT / "schema.graphql"
SCHEMA_DIFF = ROOT / "tools" / "schema-diff.sh"
UPDATE = "./dev schema > schema.graphql"


def test_schema_graphql_is_what_service_schema_prints() -> None:
    printed = subprocess.run(
        [*SERVICE, "schema"],
        cwd=ROOT,
        env=service_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert printed.returncode == 0, printed.stderr
    committed = SCHEMA_FILE.read_text(encoding="utf-8") if SCHEMA_FILE.exists() else ""
    if printed.stdout != committed:
        diff = "".join(
            difflib.unified_diff(
                committed.splitlines(keepends=True),
                printed.stdout.splitlines(keepends=True),
                "schema.graphql (committed)",
                "service schema (generated)",
            )
        )
        pytest.fail(
            f"schema.graphql is not the schema the models generate. Update it with `{UPDATE}` "
            f"and commit it (CI reports its breaking changes).\n{diff}",
            pytrace=False,
        )


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=test", "-c", "user.email=test@example.com", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


def commit_schema(repo: Path, sdl: str, message: str) -> None:
    (repo / "schema.graphql").write_text(sdl, encoding="utf-8")
    git(repo, "add", "schema.graphql")
    git(repo, "commit", "-q", "-m", message)


def schema_diff(repo: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCHEMA_DIFF)],
        cwd=repo,
        env=service_env(),
        capture_output=True,
        text=True,
        timeout=300,  # the first run installs graphql-inspector with npm ci
        check=False,
    )


V1 = "type Query { posts: [Post!]! }\ntype Post { id: ID!\n title: String! }\n"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    git(tmp_path, "init", "-q", "-b", "main")
    commit_schema(tmp_path, V1, "first")
    return tmp_path


def test_schema_diff_reports_a_removed_field_as_breaking_without_failing(repo: Path) -> None:
    commit_schema(repo, V1.replace(" title: String! ", ""), "drop Post.title")
    result = schema_diff(repo)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BREAKING CHANGES in schema.graphql (1 breaking" in result.stdout
    breaking = [line for line in result.stdout.splitlines() if "✖" in line]
    assert len(breaking) == 1 and "title" in breaking[0] and "Post" in breaking[0], result.stdout


def test_schema_diff_passes_an_added_field_as_safe(repo: Path) -> None:
    commit_schema(repo, V1.replace("title: String!", "title: String!\n body: String"), "add")
    result = schema_diff(repo)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no breaking changes (0 breaking, 0 dangerous, 1 safe)" in result.stdout


def test_schema_diff_fails_when_the_schema_does_not_parse(repo: Path) -> None:
    commit_schema(repo, "type Query {", "broken")
    result = schema_diff(repo)
    assert result.returncode != 0
