"""Which database to use: DATABASE_URL in any common spelling, or the embedded PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from service.errors import StartupError
from service.settings import Settings

_SCHEMES = {"postgres", "postgresql", "postgresql+asyncpg"}
# libpq's sslmode values map onto asyncpg's `ssl` argument of the same name.
_SSLMODES = {"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}


@dataclass(frozen=True)
class DatabaseURL:
    """A validated PostgreSQL URL, convertible to what SQLAlchemy and asyncpg each expect."""

    url: URL

    @classmethod
    def parse(cls, raw: str) -> DatabaseURL:
        try:
            url = make_url(raw)
        except ArgumentError:
            raise StartupError(
                "DATABASE_URL is not a valid URL; expected postgresql://user:password@host:5432/db"
            ) from None
        if url.drivername not in _SCHEMES:
            raise StartupError(
                f"DATABASE_URL scheme {url.drivername!r} is not PostgreSQL; use postgresql://..."
            )
        query = dict(url.query)
        sslmode = query.pop("sslmode", None)
        if sslmode is not None:
            if sslmode not in _SSLMODES:
                raise StartupError(f"DATABASE_URL sslmode={sslmode!r} is not a libpq sslmode")
            query["ssl"] = sslmode
        return cls(url.set(drivername="postgresql+asyncpg", query=query))

    @property
    def sqlalchemy(self) -> str:
        return self.url.render_as_string(hide_password=False)

    def asyncpg_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for asyncpg.connect / create_pool."""
        kwargs: dict[str, Any] = {
            "host": self.url.host or "localhost",
            "port": self.url.port or 5432,
            "user": self.url.username,
            "password": self.url.password,
            "database": self.url.database,
        }
        query = dict(self.url.query)
        if "ssl" in query:
            kwargs["ssl"] = query.pop("ssl")
        if query:
            kwargs["server_settings"] = {k: str(v) for k, v in query.items()}
        return kwargs

    def safe(self) -> str:
        """For logs: never the password."""
        return self.url.render_as_string(hide_password=True)


def _running_server_port(data_dir: Path) -> int | None:
    """The port of a live PostgreSQL on this data folder, read from its postmaster.pid."""
    try:
        lines = (data_dir / "postmaster.pid").read_text().splitlines()
        pid, port = int(lines[0]), int(lines[3])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return None
    return port


@contextmanager
def resolve_database(settings: Settings, *, exclusive: bool = False) -> Iterator[DatabaseURL]:
    """Yield the database to use: DATABASE_URL, or an embedded PostgreSQL for the duration.

    `exclusive` (for `service serve`) refuses a data folder that a running server already uses;
    otherwise a command such as `alembic upgrade` connects to the server that `serve` started.
    """
    if settings.database_url:
        yield DatabaseURL.parse(settings.database_url)
        return

    from service.db.embedded import EmbeddedPostgres, EmbeddedPostgresError

    data_dir = settings.service_data_dir.resolve()
    if not exclusive:
        port = _running_server_port(data_dir)
        if port is not None:
            yield DatabaseURL.parse(f"postgresql://postgres@127.0.0.1:{port}/service")
            return
    server = EmbeddedPostgres(data_dir)
    try:
        server.start()
    except EmbeddedPostgresError as error:
        raise StartupError(str(error)) from None
    try:
        yield DatabaseURL.parse(server.url())
    finally:
        server.stop()
