"""The `service` command: serve, migrate, schema, create-tables, token, events."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from service.errors import StartupError
from service.settings import Settings, get_settings

if TYPE_CHECKING:
    from service.db.event_log import GivenUp, TriggerCounts
    from service.db.startup import Startup
    from service.db.url import DatabaseURL

log = logging.getLogger("service")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="service", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser(
        "serve", help="serve HTTP; wait for the database and migrate it (under a lock) first"
    )
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

    events = commands.add_parser(
        "events", help="event triggers' log: what waits, what was given up (send it again)"
    )
    events.set_defaults(events_command="list", trigger=None, limit=20)
    event_commands = events.add_subparsers(dest="events_command")
    listing = event_commands.add_parser(
        "list", help="events by trigger and state, and the latest given up (the default)"
    )
    listing.add_argument("--trigger", help="only this trigger's given-up events")
    listing.add_argument(
        "--limit", type=_count, default=20, help="given-up events to show (default 20)"
    )
    retry = event_commands.add_parser("retry", help="send given-up events again")
    retry.add_argument("ids", nargs="*", type=int, metavar="ID", help="given-up events' ids")
    retry.add_argument("--trigger", help="the given-up events of this trigger")
    retry.add_argument("--all", action="store_true", help="every given-up event")
    one_off = event_commands.add_parser(
        "schedule", help="ask for one event of a trigger at a time (a one-off event)"
    )
    one_off.add_argument("trigger", help="a webhook's name in EVENT_WEBHOOKS")
    one_off.add_argument(
        "--at",
        type=_moment,
        required=True,
        help="when: ISO 8601 with an offset (2026-12-24T09:00:00+01:00, ...Z) or `now`",
    )
    one_off.add_argument("--payload", type=_json_text, help="JSON the webhook receives")
    cancel = event_commands.add_parser("cancel", help="take back a one-off event not yet sent")
    cancel.add_argument("id", type=int, metavar="ID", help="the event's id")

    args = parser.parse_args(argv)
    if args.command == "events" and args.events_command == "retry":
        if not (args.ids or args.trigger or args.all):
            retry.error("name the events: their ids, --trigger NAME or --all")
        if args.all and (args.ids or args.trigger):
            retry.error("--all sends every given-up event: name no ids or trigger with it")
    try:
        settings = get_settings()
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']).upper() or 'settings'}: {e['msg']}"
            for e in error.errors()
        )
        print(f"service: invalid settings: {problems}", file=sys.stderr)
        sys.exit(2)
    scheduling = args.command == "events" and args.events_command == "schedule"
    if scheduling and args.trigger not in settings.event_webhooks:
        one_off.error(f"EVENT_WEBHOOKS has no webhook named {args.trigger!r}")

    from service.logs import setup_logging

    setup_logging(settings)
    try:
        if args.command == "serve":
            _serve(settings, args.host, args.port, args.workers)
        elif args.command == "migrate":
            _migrate(settings)
        elif args.command == "schema":
            _schema(settings)
        elif args.command == "create-tables":
            _create_tables(settings)
        elif args.command == "token":
            _token(settings, args.email, args.role, args.ttl)
        elif args.command == "events":
            _events(settings, args)
    except StartupError as error:
        log.error("%s", error)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


def _count(text: str) -> int:
    """An argument that is a number of things: 0 or more."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is not 0 or more")
    return value


def _migrate(settings: Settings) -> None:
    from service.db.url import resolve_database

    with resolve_database(settings) as url:
        # Waits for the database like `serve` does: an init container or Job may start first.
        asyncio.run(_startup(settings, _migration_url(settings, url)).run())


def _startup(settings: Settings, migration_url: DatabaseURL) -> Startup:
    """Wait, migrate, then check that the database has the SQL functions the models name."""
    from service.db.startup import Startup
    from service.graphql.catalog import Catalog

    functions = [f for model in Catalog.from_registry() for f in model.sql_functions()]
    return Startup(migration_url, settings, functions=functions)


def _migration_url(settings: Settings, url: DatabaseURL) -> DatabaseURL:
    from service.db.url import DatabaseURL

    # Only beside DATABASE_URL: the embedded database is migrated where it is served.
    if settings.migration_database_url and settings.database_url:
        return DatabaseURL.parse(settings.migration_database_url)
    return url


def _serve(settings: Settings, host: str | None, port: int | None, workers: int) -> None:
    from service.db.url import resolve_database

    host = host or settings.host
    port = settings.port if port is None else port
    # Multiprocess metrics: every process must see the folder before prometheus_client is
    # imported (it picks its storage at import).
    metrics_dir = None
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        metrics_dir = tempfile.mkdtemp(prefix="service-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        with resolve_database(settings, exclusive=True) as url:
            migration_url = _migration_url(settings, url)
            # Workers (and our own app factory) read the database from the environment.
            os.environ["DATABASE_URL"] = url.sqlalchemy
            get_settings.cache_clear()
            settings = get_settings()
            shown = "localhost" if host in ("127.0.0.1", "0.0.0.0", "::") else host
            log.info(
                "serving GraphQL at http://%s:%s/graphql (database %s)", shown, port, url.safe()
            )
            # uvicorn re-raises SIGTERM/SIGINT after its graceful shutdown; a finished shutdown
            # is a success for orchestrators, so let that re-raised signal end us with status 0.
            signal.signal(signal.SIGTERM, _exit_cleanly)
            signal.signal(signal.SIGINT, _exit_cleanly)
            if workers > 1:
                _serve_workers(settings, migration_url, host, port, workers)
            else:
                _serve_one(settings, migration_url, host, port)
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)  # the folder created above


def _uvicorn_options(settings: Settings) -> dict[str, Any]:
    return {
        "log_config": None,
        "access_log": False,  # service/http/observe.py logs each request, with its operation
        "loop": "uvloop",
        "http": "httptools",
        "lifespan": "on",
        "timeout_graceful_shutdown": settings.shutdown_grace_seconds,
        # A WebSocket message is held to the request body's limit before it is read whole.
        "ws_max_size": settings.max_body_bytes,
    }


def _serve_one(settings: Settings, migration_url: DatabaseURL, host: str, port: int) -> None:
    """One process: it listens at once and prepares the database in the background."""
    import uvicorn

    from service.app import Launch, create_app

    startup = _startup(settings, migration_url)
    launch = Launch(startup)
    app = create_app(settings, launch=launch)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, **_uvicorn_options(settings)))
    launch.stop_server = lambda: setattr(server, "should_exit", True)
    server.run()
    if startup.error is not None:
        sys.exit(1)  # the app logged why, in one line


def _serve_workers(
    settings: Settings, migration_url: DatabaseURL, host: str, port: int, workers: int
) -> None:
    """Several processes on one socket. This parent prepares the database (one migration, not
    one per worker) while it answers probes itself, then hands the socket to the workers;
    connections that arrive in between wait in the socket's backlog."""
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors import Multiprocess

    from service.app import Launch, create_app

    config = uvicorn.Config(
        "service.app:worker_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        **_uvicorn_options(settings),
    )
    sock = config.bind_socket()
    startup = _startup(settings, migration_url)
    launch = Launch(startup, serve=False, drain_on_sigterm=False)
    probe = uvicorn.Server(
        uvicorn.Config(create_app(settings, launch=launch), **_uvicorn_options(settings))
    )
    launch.stop_server = lambda: setattr(probe, "should_exit", True)
    # The probe server closes the socket it is given when it stops: give it a duplicate, so
    # the listening socket itself stays open for the workers.
    probe.run(sockets=[sock.dup()])
    if startup.error is not None:
        sys.exit(1)
    log.info("database ready; starting %d worker processes", workers)
    supervisor = Multiprocess(config, sockets=[sock])
    supervisor.run()
    if any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes):
        sys.exit(1)


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


def _events(settings: Settings, args: argparse.Namespace) -> None:
    """`service events`: the event log's counts and given-up events, or `retry` them."""
    import asyncpg

    from service.db.event_log import cancel, read_log, schedule, send_again
    from service.db.url import resolve_database

    timeout = settings.db_connect_timeout
    with resolve_database(settings) as url:
        # as the deliverers connect: the log is the owner's, not the API roles'
        url = _migration_url(settings, url)
        try:
            if args.events_command == "retry":
                ids = args.ids or None
                again = asyncio.run(send_again(url, ids=ids, trigger=args.trigger, timeout=timeout))
                _print_sent_again(again, ids)
            elif args.events_command == "schedule":
                at, trigger = args.at, args.trigger
                event_id = asyncio.run(
                    schedule(url, trigger=trigger, at=at, payload=args.payload, timeout=timeout)
                )
                print(f"event {event_id} of {trigger} scheduled for {at.isoformat()}")
            elif args.events_command == "cancel":
                if not asyncio.run(cancel(url, event_id=args.id, timeout=timeout)):
                    print(f"no one-off event {args.id} waits to be sent", file=sys.stderr)
                    sys.exit(1)
                print(f"event {args.id} cancelled")
            else:
                counts, given_up = asyncio.run(
                    read_log(url, trigger=args.trigger, limit=args.limit, timeout=timeout)
                )
                _print_log(counts, given_up)
        except (asyncpg.UndefinedTableError, asyncpg.UndefinedFunctionError):
            raise StartupError(
                "the database has no event log (or not this release's): run `service migrate`"
            ) from None
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            raise StartupError(f"cannot read the event log at {url.safe()}: {error}") from None


def _print_log(counts: list[TriggerCounts], given_up: list[GivenUp]) -> None:
    if not counts:
        print("the event log is empty")
        return
    width = max(len("trigger"), *(len(c.trigger) for c in counts))
    print(f"{'trigger':<{width}}  {'waiting':>8}  {'given up':>8}  {'delivered':>9}")
    for c in counts:
        print(f"{c.trigger:<{width}}  {c.waiting:>8}  {c.given_up:>8}  {c.delivered:>9}")
    if given_up:
        print("\ngiven up, latest first (`service events retry ID...` sends them again):")
        for g in given_up:
            error = g.last_error or ""
            print(f"  {g.id}  {g.trigger}  {g.change}  {g.tries} tries  {g.given_up_at}  {error}")


def _print_sent_again(again: list[int], named: list[int] | None) -> None:
    if again:
        print(f"sent again: {', '.join(map(str, again))}")
    else:
        print("no given-up event matched")
    missing = sorted(set(named or ()) - set(again))
    if missing:
        print(f"not given up (or not in the log): {', '.join(map(str, missing))}", file=sys.stderr)
        sys.exit(1)


def _moment(text: str) -> datetime:
    """`--at`: a time with its offset (a time without one would depend on this machine's
    zone), or `now`."""
    if text.strip().lower() == "now":
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no offset: add Z or +01:00, say")
    return moment


def _json_text(text: str) -> str:
    try:
        json.loads(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not JSON: {error}") from None
    return text


def _exit_cleanly(signum: int, frame: object) -> None:
    sys.exit(0)


def _create_tables(settings: Settings) -> None:
    from service.db.create_tables import create_tables
    from service.db.url import resolve_database

    with resolve_database(settings) as url:
        asyncio.run(create_tables(url, connect_timeout=settings.db_connect_timeout))


def _schema(settings: Settings) -> None:
    from service.graphql.catalog import Catalog
    from service.graphql.schema import build_schema

    # with FEDERATION: the subgraph's SDL, as `rover subgraph publish --schema` takes it
    print(build_schema(Catalog.from_registry(), federation=settings.federation).sdl())
