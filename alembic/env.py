"""Alembic's environment: async, SQLModel's metadata, schemas `public` and `auth`.

`service migrate` passes its own connection (holding the advisory lock) in
`config.attributes["connection"]`; plain `alembic ...` resolves the database from the settings.
"""

import asyncio
from typing import Any

from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

import service.models  # noqa: F401  (registers every table model on SQLModel.metadata)
from alembic import context
from service.db.engine import create_engine
from service.db.url import resolve_database
from service.settings import get_settings

MANAGED_SCHEMAS = {"public", "auth"}
target_metadata = SQLModel.metadata


def include_name(name: str | None, type_: str, parent_names: dict[str, Any]) -> bool:
    if type_ == "schema":
        return name in MANAGED_SCHEMAS or name is None
    return True


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    # The auth provider (Supabase) owns schema `auth`: its other tables and the extra columns of
    # auth.users are not ours to drop.
    if reflected and compare_to is None:
        if type_ == "table" and obj.schema == "auth":
            return False
        if type_ == "column" and obj.table.schema == "auth":
            return False
    return True


def configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_schemas=True,
        include_name=include_name,
        include_object=include_object,
        compare_type=True,
    )


def run_on(connection: Connection) -> None:
    configure(connection)
    with context.begin_transaction():
        context.run_migrations()


async def run_async() -> None:
    with resolve_database(get_settings()) as url:
        engine = create_engine(url)
        try:
            async with engine.connect() as connection:
                await connection.run_sync(run_on)
                await connection.commit()
        finally:
            await engine.dispose()


def run_offline() -> None:
    context.configure(
        url="postgresql://",
        target_metadata=target_metadata,
        literal_binds=True,
        include_schemas=True,
        include_name=include_name,
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
elif (given := context.config.attributes.get("connection")) is not None:
    run_on(given)
else:
    asyncio.run(run_async())
