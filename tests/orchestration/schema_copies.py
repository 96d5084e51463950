"""Copies of this project's Alembic folder with one more revision: a newer release, or a bad one."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import asyncpg
from alembic.config import Config
from alembic.script import ScriptDirectory

from service.db.url import DatabaseURL
from tests.support import ROOT


def copy_with_revision(target: Path, revision: str, body: str) -> Path:
    """alembic.ini and alembic/ copied into `target`, plus a revision after the current head.

    `body` is the revision's upgrade() code. Returns the copy's alembic.ini.
    """
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "alembic.ini", target / "alembic.ini")
    shutil.copytree(
        ROOT / "alembic", target / "alembic", ignore=shutil.ignore_patterns("__pycache__")
    )
    head = ScriptDirectory.from_config(Config(str(ROOT / "alembic.ini"))).get_current_head()
    indented = "\n".join("    " + line for line in body.strip().splitlines())
    (target / "alembic" / "versions" / f"29991231_{revision}.py").write_text(
        f'''"""a revision made by a test

Revision ID: {revision}
Revises: {head}
"""

import sqlalchemy as sa

from alembic import op

revision = "{revision}"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
{indented}


def downgrade() -> None:
    pass
'''
    )
    return target / "alembic.ini"


_SNAPSHOT = [
    """SELECT n.nspname, c.relname, c.relkind::text, c.relrowsecurity::text
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname IN ('public', 'auth')""",
    """SELECT table_schema, table_name, column_name, data_type, is_nullable,
              coalesce(column_default, '')
       FROM information_schema.columns WHERE table_schema IN ('public', 'auth')""",
    """SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
       FROM pg_constraint WHERE connamespace::regnamespace::text IN ('public', 'auth')""",
    "SELECT schemaname, indexdef FROM pg_indexes WHERE schemaname IN ('public', 'auth')",
    """SELECT schemaname, tablename, policyname, cmd, roles::text, coalesce(qual, ''),
              coalesce(with_check, '')
       FROM pg_policies""",
    """SELECT p.oid::regprocedure::text, md5(p.prosrc) FROM pg_proc p
       WHERE p.pronamespace::regnamespace::text IN ('public', 'auth')""",
    "SELECT 'alembic_version', version_num FROM alembic_version",
]


async def _snapshot(url: DatabaseURL) -> list[tuple[str, ...]]:
    connection = await asyncpg.connect(**url.asyncpg_kwargs())
    try:
        rows: list[tuple[str, ...]] = []
        for query in _SNAPSHOT:
            rows += [tuple(str(v) for v in r) for r in await connection.fetch(query)]
        return sorted(rows)
    finally:
        await connection.close()


def schema_snapshot(url: DatabaseURL) -> list[tuple[str, ...]]:
    """Every table, column, constraint, index, policy, function and the Alembic revision."""
    return asyncio.run(_snapshot(url))
