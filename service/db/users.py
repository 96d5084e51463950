"""Users for development tokens: the service does not sign users up, `service token` does."""

from __future__ import annotations

import asyncpg

from service.db.url import DatabaseURL
from service.errors import StartupError


async def ensure_user(url: DatabaseURL, email: str, timeout: float) -> str:
    """The id of the user with this email in auth.users, created if missing."""
    try:
        connection = await asyncpg.connect(**url.asyncpg_kwargs(), timeout=timeout)
    except (OSError, asyncpg.PostgresError) as error:
        raise StartupError(f"cannot reach the database {url.safe()}: {error}") from None
    try:
        async with connection.transaction():
            # Serialise concurrent `service token` runs for the same email.
            await connection.execute("SELECT pg_advisory_xact_lock(hashtext($1))", email)
            found = await connection.fetchval(
                "SELECT id FROM auth.users WHERE email = $1 ORDER BY created_at LIMIT 1", email
            )
            if found is None:
                found = await connection.fetchval(
                    "INSERT INTO auth.users (email) VALUES ($1) RETURNING id", email
                )
    except asyncpg.UndefinedTableError:
        raise StartupError("auth.users does not exist: run `service migrate` first") from None
    finally:
        await connection.close()
    return str(found)
