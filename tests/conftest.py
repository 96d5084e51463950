"""Database fixtures: one PostgreSQL per test session, a migrated template, a database per test.

PostgreSQL is the embedded one (as `service serve` runs it) unless DATABASE_URL names a server
where this user may create databases. Migrating once into a template and copying it per test
costs about 20 ms a test instead of a migration run.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import settings as hypothesis_settings

from service.db.migrate import migrate
from service.db.url import DatabaseURL
from tests.support import RunningService, Server

# In CI the property tests replay the same examples every run, so a result depends on the code,
# not on the draw; on a developer's machine they explore new examples each time.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")

TEMPLATE = "service_template"
_names = itertools.count()


@pytest.fixture(scope="session")
def world_traversable_tmp() -> Iterator[Path]:
    # As root the embedded server runs as another OS user, who must reach its data folder;
    # pytest's own tmp folders are mode 700.
    base = Path(tempfile.mkdtemp(prefix="service-tests-"))
    base.chmod(0o755)  # the one folder just created
    try:
        yield base
    finally:
        shutil.rmtree(base)  # only the folder created above


@pytest.fixture(scope="session")
def postgres(world_traversable_tmp: Path) -> Iterator[Server]:
    given = os.environ.get("DATABASE_URL")
    if given:
        yield Server(DatabaseURL.parse(given))
        return
    from service.db.embedded import EmbeddedPostgres

    server = EmbeddedPostgres(world_traversable_tmp / "pg", fast_unsafe=True, database="postgres")
    server.start()
    try:
        yield Server(DatabaseURL.parse(server.url("postgres")))
    finally:
        server.stop()


@pytest.fixture(scope="session")
def template(postgres: Server) -> str:
    postgres.run(f"DROP DATABASE IF EXISTS {TEMPLATE}")
    postgres.run(f"CREATE DATABASE {TEMPLATE}")
    asyncio.run(migrate(postgres.url(TEMPLATE)))
    return TEMPLATE


def _fresh_name() -> str:
    return f"test_{os.getpid()}_{next(_names)}"


def _own_database(postgres: Server, template: str | None) -> Iterator[DatabaseURL]:
    name = _fresh_name()
    postgres.run(f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else ""))
    try:
        yield postgres.url(name)
    finally:
        postgres.run(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def database(postgres: Server, template: str) -> Iterator[DatabaseURL]:
    """A migrated database of this test's own."""
    yield from _own_database(postgres, template)


@pytest.fixture
def empty_database(postgres: Server) -> Iterator[DatabaseURL]:
    """A database with nothing in it, not even the migrations."""
    yield from _own_database(postgres, None)


@pytest.fixture
async def client(database: DatabaseURL) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the service, served on a migrated database of this test's own."""
    async with RunningService(database) as http:
        yield http
