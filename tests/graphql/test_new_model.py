"""A table model added with no GraphQL code gets the whole API: read, filter, order, page, write.

The model (`Tag`, linked to posts) lives in a module written to a temporary folder. A separate
Python process imports it beside the real models, autogenerates its Alembic revision into a
temporary copy of alembic/versions, upgrades the test's database to it, and serves the app
built from that registry. A separate process, because SQLModel's registry and metadata are
global: a model defined in this process would leak into every later Catalog.from_registry()
and `alembic check` of the suite.

Run as `python -m tests.graphql.test_new_model MODELS_DIR MODULE VERSIONS_DIR TABLE` (DATABASE_URL
set), it is that process: it prints `READY <url> <revision file>` and serves until its standard
input closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from service.db.url import DatabaseURL
from tests.graphql.conftest import gql, post_id
from tests.support import ROOT, service_env

TAG_MODULE = '''
"""Tag: `public.tags`, a label on a post."""

import uuid
from datetime import datetime

from sqlmodel import Field, Relationship, SQLModel

from service.models.columns import created_at, uuid_primary_key
from service.models.post import Post


class TagBase(SQLModel):
    name: str = Field(max_length=50)
    weight: int = Field(default=1, ge=0)


class Tag(TagBase, table=True):
    __tablename__ = "tags"

    id: uuid.UUID = uuid_primary_key()
    post_id: uuid.UUID = Field(foreign_key="posts.id", ondelete="CASCADE", index=True)
    created_at: datetime = created_at()

    # The backref gives Post its `tags` without touching the Post model.
    post: Post = Relationship(
        sa_relationship_kwargs={"backref": "tags", "passive_deletes": True}
    )


class TagCreate(TagBase):
    post_id: uuid.UUID


class TagUpdate(SQLModel):
    name: str | None = Field(default=None, max_length=50)
'''


# --- the serving process --------------------------------------------------------------------


def _migrate(versions: Path, table: str, by_hand: list[str]) -> Path:
    """Autogenerate the new model's revision into `versions`, then upgrade to it. `by_hand`:
    statements a developer adds to the revision (Row Level Security policies, say)."""
    from alembic import command
    from service.db.migrate import alembic_config

    config = alembic_config()
    config.set_main_option("version_locations", str(versions))
    config.set_section_option("post_write_hooks", "hooks", "")  # no formatter for a temp file
    script = command.revision(config, message=table, autogenerate=True, rev_id="9001")
    assert script is not None and not isinstance(script, list)
    path = Path(script.path)
    # What a developer adds to the generated revision by hand: the API roles' privileges
    # (autogenerate knows tables, not grants).
    text = path.read_text()
    end = "    # ### end Alembic commands ###"
    grant = (
        f'    op.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO anon, authenticated")'
    )
    added = "".join(f"\n    op.execute({statement!r})" for statement in by_hand)
    path.write_text(text.replace(end, f"{end}\n{grant}{added}", 1))
    command.upgrade(config, "head")
    return path


async def _serve(url: DatabaseURL, revision: Path) -> None:
    from service.app import create_executor
    from service.graphql.catalog import Catalog
    from tests.support import RunningService, settings_for

    executor = create_executor(settings_for(url), Catalog.from_registry())
    service = RunningService(url, executor=executor)
    async with service:
        print("READY", service.base_url, revision, flush=True)
        # Serve until the test closes our standard input.
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


def main(models_dir: str, module: str, versions: str, table: str, *by_hand: str) -> None:
    sys.path.insert(0, models_dir)
    importlib.import_module("service.models")
    importlib.import_module(module)
    revision = _migrate(Path(versions), table, list(by_hand))
    asyncio.run(_serve(DatabaseURL.parse(os.environ["DATABASE_URL"]), revision))


# --- the test -------------------------------------------------------------------------------


@pytest.fixture
async def tagged(
    seeded: DatabaseURL, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """The service with the Tag model added, on a seeded database; and its revision's text."""
    async with serving_model(seeded, tmp_path, "tag_model", TAG_MODULE, "tags") as served:
        yield served


@contextlib.asynccontextmanager
async def serving_model(
    seeded: DatabaseURL,
    tmp_path: Path,
    module: str,
    source: str,
    table: str,
    by_hand: tuple[str, ...] = (),
) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """The service with one more model module (`source`, making `table`), migrated by its
    autogenerated revision with the statements `by_hand` added; and that revision's text."""
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / f"{module}.py").write_text(source)
    versions = tmp_path / "versions"
    shutil.copytree(ROOT / "alembic" / "versions", versions)
    log = tmp_path / "service.log"
    with log.open("w") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.graphql.test_new_model",
            str(tmp_path / "models"),
            module,
            str(versions),
            table,
            *by_hand,
            cwd=ROOT,
            env=service_env(DATABASE_URL=seeded.sqlalchemy),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
        )
    assert process.stdin is not None and process.stdout is not None
    try:
        line: list[str] = []
        while line[:1] != ["READY"]:  # Alembic prints what it generates first
            read = await asyncio.wait_for(process.stdout.readline(), 60)
            assert read, log.read_text()
            line = read.decode().split()
        _, base_url, revision = line
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
            yield http, Path(revision).read_text()
    finally:
        process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), 15)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()  # the process this fixture started
            await process.wait()


async def _create(http: httpx.AsyncClient, name: str, post: int) -> dict[str, Any]:
    body = await gql(
        http,
        "mutation($in: TagCreateInput!) { createTag(input: $in) "
        "{ id nodeId name postId createdAt post { title } } }",
        {"in": {"name": name, "postId": post_id(post), "weight": len(name)}},
    )
    assert "errors" not in body, body
    tag: dict[str, Any] = body["data"]["createTag"]
    return tag


async def test_a_new_model_gets_queries_filters_order_pages_and_mutations(tagged, seeded):
    http, revision = tagged
    # Alembic's autogenerate wrote the table; the database is at that revision.
    assert 'op.create_table(\n        "tags"' in revision or "create_table('tags'" in revision
    connection = await asyncpg.connect(**seeded.asyncpg_kwargs())
    try:
        assert await connection.fetchval("SELECT version_num FROM alembic_version") == "9001"
    finally:
        await connection.close()

    names = ["red", "green", "blue", "amber", "black"]
    created = [await _create(http, name, 1 + i % 2) for i, name in enumerate(names)]
    assert created[0]["name"] == "red" and created[0]["post"] == {"title": "Post 01"}
    assert created[0]["postId"] == post_id(1)

    # filter + order + forward pages
    query = """
    query($after: String) {
      tags(first: 2, after: $after, filter: {name: {like: "%e%"}}, orderBy: [{name: DESC}]) {
        totalCount
        nodes { name }
        pageInfo { hasNextPage endCursor }
      }
    }"""
    seen: list[str] = []
    after = None
    while True:
        page = (await gql(http, query, {"after": after}))["data"]["tags"]
        assert page["totalCount"] == 4
        seen += [n["name"] for n in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == ["red", "green", "blue", "amber"]

    # the one-to-many side as a nested connection of Post, and lookups by id and nodeId
    body = await gql(
        http,
        """query($id: UUID!, $node: ID!) {
          post(id: $id) {
            title
            tags(orderBy: [{name: ASC}]) { totalCount nodes { name post { title } } }
          }
          node(nodeId: $node) { __typename ... on Tag { name } }
        }""",
        {"id": post_id(1), "node": created[1]["nodeId"]},
    )
    assert body["data"]["post"]["tags"] == {
        "totalCount": 3,
        "nodes": [
            {"name": "black", "post": {"title": "Post 01"}},
            {"name": "blue", "post": {"title": "Post 01"}},
            {"name": "red", "post": {"title": "Post 01"}},
        ],
    }
    assert body["data"]["node"] == {"__typename": "Tag", "name": "green"}

    # update (validated by TagUpdate), delete
    renamed = await gql(
        http,
        'mutation($id: UUID!) { updateTag(id: $id, input: {name: "crimson"}) { name postId } }',
        {"id": created[0]["id"]},
    )
    assert renamed["data"]["updateTag"] == {"name": "crimson", "postId": post_id(1)}
    too_long = await gql(
        http,
        "mutation($id: UUID!, $n: String!) { updateTag(id: $id, input: {name: $n}) { name } }",
        {"id": created[0]["id"], "n": "x" * 51},
    )
    assert too_long["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "name"}
    deleted = await gql(
        http, "mutation($id: UUID!) { deleteTag(id: $id) { name } }", {"id": created[2]["id"]}
    )
    assert deleted["data"]["deleteTag"] == {"name": "blue"}
    left = await gql(http, "{ tags(orderBy: [{createdAt: ASC}]) { nodes { name } } }")
    assert [n["name"] for n in left["data"]["tags"]["nodes"]] == [
        "crimson",
        "green",
        "amber",
        "black",
    ]

    # aggregates, with sum and avg for the number column (weights: the names' first lengths)
    totals = await gql(
        http,
        "{ tags { aggregates { count sum { weight } avg { weight } "
        "min { weight name } max { weight name } } } }",
    )
    assert totals["data"]["tags"]["aggregates"] == {
        "count": 4,
        "sum": {"weight": 18.0},
        "avg": {"weight": 4.5},
        "min": {"weight": 3, "name": "amber"},
        "max": {"weight": 5, "name": "green"},
    }

    # a post sorts by an aggregate of its tags, paged by cursor (post 1: weights 3 and 5,
    # post 2: 5 and 5; the others have none, and nulls sort last ascending)
    by_avg = """query($after: String) {
      posts(first: 1, after: $after, orderBy: {tags: {avg: {weight: ASC}}}) {
        nodes { title } pageInfo { endCursor } } }"""
    page = (await gql(http, by_avg))["data"]["posts"]
    assert page["nodes"] == [{"title": "Post 01"}]
    page = (await gql(http, by_avg, {"after": page["pageInfo"]["endCursor"]}))["data"]["posts"]
    assert page["nodes"] == [{"title": "Post 02"}]
    by_sum = await gql(
        http,
        "{ posts(filter: {tags: {some: {}}}, orderBy: [{tags: {sum: {weight: DESC}}}]) "
        "{ nodes { title } } }",
    )
    assert by_sum["data"]["posts"]["nodes"] == [{"title": "Post 02"}, {"title": "Post 01"}]

    # the bulk writes come with the model too
    many = await gql(
        http,
        "mutation($in: [TagCreateInput!]!) { createTags(inputs: $in) { name weight } }",
        {"in": [{"name": n, "postId": post_id(3), "weight": 1} for n in ("navy", "nude")]},
    )
    assert "errors" not in many, many
    assert many["data"]["createTags"] == [
        {"name": "navy", "weight": 1},
        {"name": "nude", "weight": 1},
    ]
    renamed_many = await gql(
        http,
        'mutation { updateTags(filter: {name: {startsWith: "n"}}, input: {name: "new"}) '
        "{ name weight } }",
    )
    assert "errors" not in renamed_many, renamed_many
    assert renamed_many["data"]["updateTags"] == [{"name": "new", "weight": 1}] * 2
    gone = await gql(http, 'mutation { deleteTags(filter: {name: {eq: "new"}}) { name } }')
    assert gone["data"]["deleteTags"] == [{"name": "new"}] * 2
    assert (await gql(http, "{ tags { totalCount } }"))["data"]["tags"]["totalCount"] == 4


async def test_the_suite_process_never_sees_the_new_model():
    # The model lived in another process: this one's registry, schema and metadata lack it.
    from sqlmodel import SQLModel

    from service.graphql.catalog import Catalog

    assert "Tag" not in Catalog.from_registry().models
    assert "tags" not in SQLModel.metadata.tables


if __name__ == "__main__":
    main(*sys.argv[1:])
