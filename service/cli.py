"""The `service` command: serve, migrate, schema, create-tables, token."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from service.errors import StartupError
from service.settings import Settings, get_settings

log = logging.getLogger("service")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="service", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="migrate (under a lock), then serve HTTP")
    serve.add_argument("--host", help="address to bind (default: HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: PORT or 8000)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")

    commands.add_parser("migrate", help="alembic upgrade head under an advisory lock")
    commands.add_parser("schema", help="print the GraphQL schema (SDL)")
    commands.add_parser(
        "create-tables",
        help="development shortcut: the models' tables, policies and grants in a throwaway "
        "database, without Alembic (refuses one that Alembic manages)",
    )

    token = commands.add_parser(
        "token", help="print a signed development token for a user (created if missing)"
    )
    token.add_argument("--email", required=True, help="the user's email")
    token.add_argument("--role", default="authenticated", help="role claim (default authenticated)")
    token.add_argument("--ttl", type=int, default=3600, help="seconds until it expires (3600)")

    args = parser.parse_args(argv)
    try:
        settings = get_settings()
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']).upper() or 'settings'}: {e['msg']}"
            for e in error.errors()
        )
        print(f"service: invalid settings: {problems}", file=sys.stderr)
        sys.exit(2)

    from service.logs import setup_logging

    setup_logging(settings)
    try:
        if args.command == "serve":
            _serve(settings, args.host, args.port, args.workers)
        elif args.command == "migrate":
            _migrate(settings)
        elif args.command == "schema":
            _schema()
        elif args.command == "create-tables":
            _create_tables(settings)
        elif args.command == "token":
            _token(settings, args.email, args.role, args.ttl)
    except StartupError as error:
        log.error("%s", error)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


def _migrate(settings: Settings) -> None:
    from service.db.migrate import migrate
    from service.db.url import resolve_database

    with resolve_database(settings) as url:
        asyncio.run(
            migrate(
                url,
                lock_timeout=settings.migration_lock_timeout,
                refuse_newer=settings.refuse_newer_schema,
                connect_timeout=settings.db_connect_timeout,
            )
        )


def _serve(settings: Settings, host: str | None, port: int | None, workers: int) -> None:
    import uvicorn

    from service.db.migrate import migrate
    from service.db.url import resolve_database

    host = host or settings.host
    port = settings.port if port is None else port
    with resolve_database(settings, exclusive=True) as url:
        asyncio.run(
            migrate(
                url,
                lock_timeout=settings.migration_lock_timeout,
                refuse_newer=settings.refuse_newer_schema,
                connect_timeout=settings.db_connect_timeout,
            )
        )
        # Workers (and our own app factory) read the database from the environment.
        os.environ["DATABASE_URL"] = url.sqlalchemy
        get_settings.cache_clear()
        shown = "localhost" if host in ("127.0.0.1", "0.0.0.0", "::") else host
        log.info("serving GraphQL at http://%s:%s/graphql (database %s)", shown, port, url.safe())
        # uvicorn re-raises SIGTERM/SIGINT after its graceful shutdown; a finished shutdown is a
        # success for orchestrators, so let that re-raised signal end us with status 0.
        signal.signal(signal.SIGTERM, _exit_cleanly)
        signal.signal(signal.SIGINT, _exit_cleanly)
        uvicorn.run(
            "service.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers if workers > 1 else None,
            log_config=None,
            access_log=False,
            loop="uvloop",
            http="httptools",
            timeout_graceful_shutdown=20,
        )


def _token(settings: Settings, email: str, role: str, ttl: int) -> None:
    from service.auth import issue_token
    from service.db.url import resolve_database
    from service.db.users import ensure_user
    from service.settings import DEFAULT_JWT_SECRET, Environment

    secret_is_default = settings.jwt_secret.get_secret_value() == DEFAULT_JWT_SECRET
    if settings.environment is not Environment.development and secret_is_default:
        raise StartupError(
            f"refusing to sign with the built-in development secret in {settings.environment}: "
            "set JWT_SECRET"
        )
    with resolve_database(settings) as url:
        user_id = asyncio.run(ensure_user(url, email, settings.db_connect_timeout))
    print(issue_token(settings, sub=user_id, email=email, role=role, ttl_seconds=ttl))


def _exit_cleanly(signum: int, frame: object) -> None:
    sys.exit(0)


def _create_tables(settings: Settings) -> None:
    from service.db.create_tables import create_tables
    from service.db.url import resolve_database

    with resolve_database(settings) as url:
        asyncio.run(create_tables(url, connect_timeout=settings.db_connect_timeout))


def _schema() -> None:
    from service.graphql.catalog import Catalog
    from service.graphql.schema import build_schema

    print(build_schema(Catalog.from_registry()).schema.as_str())
