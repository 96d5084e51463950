"""Probes: /livez never depends on the database; /readyz follows the database and its schema."""

from __future__ import annotations

import asyncio

import asyncpg

from service.db.migrate import migrate
from tests.support import RunningService


async def test_readyz_is_503_with_a_reason_until_the_schema_is_migrated_then_200(empty_database):
    async with RunningService(empty_database) as http:
        live = await http.get("/livez")
        assert live.status_code == 200
        before = await http.get("/readyz")
        assert before.status_code == 503
        assert "run `service migrate`" in before.json()["reason"]

        await migrate(empty_database)
        await asyncio.sleep(1.1)  # readiness is cached for a second
        after = await http.get("/readyz")
        assert after.status_code == 200
        assert after.json()["schema"] == "current"


async def test_readyz_stays_200_when_a_newer_release_migrated_the_schema(database):
    connection = await asyncpg.connect(**database.asyncpg_kwargs())
    await connection.execute("UPDATE alembic_version SET version_num = 'a1b2c3d4e5f6'")
    await connection.close()
    async with RunningService(database) as http:
        response = await http.get("/readyz")
        assert response.status_code == 200
        assert response.json()["schema"] == "newer"
