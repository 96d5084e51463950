"""DATABASE_URL in the spellings people paste: schemes, sslmode, server settings."""

from __future__ import annotations

import asyncio

import pytest

from service.db.engine import create_engine
from service.db.migrate import migrate
from service.db.url import DatabaseURL
from service.errors import StartupError


@pytest.mark.parametrize("scheme", ["postgres", "postgresql", "postgresql+asyncpg"])
def test_every_common_scheme_means_asyncpg(scheme):
    url = DatabaseURL.parse(f"{scheme}://u:secret@db.example:6543/app?sslmode=require")
    assert url.url.drivername == "postgresql+asyncpg"
    kwargs = url.asyncpg_kwargs()
    assert (kwargs["host"], kwargs["port"], kwargs["database"], kwargs["ssl"]) == (
        "db.example",
        6543,
        "app",
        "require",
    )
    assert "secret" not in url.safe()


def test_an_unknown_sslmode_is_refused_clearly():
    with pytest.raises(StartupError, match="sslmode"):
        DatabaseURL.parse("postgresql://u@h/db?sslmode=sometimes")


def test_server_settings_in_the_url_work_for_migrations_and_tools(empty_database):
    url = DatabaseURL(empty_database.url.update_query_dict({"application_name": "from-url"}))

    async def check() -> str:
        await migrate(url)
        engine = create_engine(url)
        try:
            async with engine.connect() as connection:
                from sqlalchemy import text

                name = await connection.scalar(text("SELECT current_setting('application_name')"))
                return str(name)
        finally:
            await engine.dispose()

    assert asyncio.run(check()) == "from-url"
