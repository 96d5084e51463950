"""`alembic upgrade head` under a PostgreSQL advisory lock, so many replicas may start at once."""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util import CommandError
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, OperationalError

from alembic import command
from service.db.engine import create_engine
from service.db.url import DatabaseURL
from service.errors import StartupError

log = logging.getLogger("service.migrate")

# One constant key: every replica of this service, whatever its version, contends for it.
LOCK_KEY = 7_310_431_226_184_025_001
_POLL_SECONDS = 0.2


def alembic_config() -> Config:
    """alembic.ini from the working directory, else from the source tree this package sits in."""
    for folder in (Path.cwd(), Path(__file__).resolve().parents[2]):
        ini = folder / "alembic.ini"
        if ini.is_file():
            return Config(str(ini))
    raise StartupError("alembic.ini not found: run from the project folder")


@dataclass(frozen=True)
class SchemaVerdict:
    """How the database's schema revision compares with this code's head."""

    current: tuple[str, ...]
    head: str
    state: str  # "current", "behind", "newer" or "empty"

    @property
    def servable(self) -> bool:
        return self.state in ("current", "newer")

    def describe(self) -> str:
        at = ",".join(self.current) or "no revision"
        return {
            "current": f"schema at head {self.head}",
            "behind": f"schema at {at}, this code needs {self.head}: run `service migrate`",
            "newer": f"schema at {at}, newer than this code's head {self.head}",
            "empty": f"schema not migrated, this code needs {self.head}: run `service migrate`",
        }[self.state]


class SchemaHistory:
    """The revisions this code knows, read once from alembic/versions."""

    def __init__(self, config: Config | None = None) -> None:
        self.config = config or alembic_config()
        self.script = ScriptDirectory.from_config(self.config)
        head = self.script.get_current_head()
        if head is None:
            raise StartupError("alembic/versions has no revisions")
        self.head: str = head

    def knows(self, revision: str) -> bool:
        try:
            return self.script.get_revision(revision) is not None
        except (RevisionError, CommandError):
            return False

    def judge(self, current: tuple[str, ...]) -> SchemaVerdict:
        if not current:
            state = "empty"
        elif any(not self.knows(rev) for rev in current):
            # A revision we don't know was written by a newer release (a rolling deploy).
            state = "newer"
        elif current == (self.head,):
            state = "current"
        else:
            state = "behind"
        return SchemaVerdict(current=current, head=self.head, state=state)


@lru_cache
def schema_history() -> SchemaHistory:
    return SchemaHistory()


def current_revisions(connection: Connection) -> tuple[str, ...]:
    return tuple(sorted(MigrationContext.configure(connection).get_current_heads()))


def _upgrade(connection: Connection, history: SchemaHistory, refuse_newer: bool) -> SchemaVerdict:
    # Re-read the revision now that we hold the lock: another replica may have just migrated.
    before = history.judge(current_revisions(connection))
    if before.state == "newer":
        if refuse_newer:
            raise StartupError(f"refusing to run: {before.describe()} (REFUSE_NEWER_SCHEMA=true)")
        log.warning("%s; leaving it alone (expand/contract deploy)", before.describe())
        return before
    if before.state == "current":
        log.info("schema already at head %s; nothing to migrate", history.head)
        return before
    history.config.attributes["connection"] = connection
    try:
        command.upgrade(history.config, "head")
    except Exception as error:
        raise StartupError(_failure(error, history, before)) from error
    after = history.judge(current_revisions(connection))
    log.info("migrated schema from %s to %s", ",".join(before.current) or "empty", history.head)
    return after


def _failure(error: Exception, history: SchemaHistory, before: SchemaVerdict) -> str:
    """One line: which revision file failed, why, and that nothing of the upgrade was applied."""
    versions = Path(history.script.versions).resolve()
    where = ""
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        path = Path(frame.filename).resolve()
        if path.is_relative_to(versions):
            where = f" in {path.name} line {frame.lineno}"
            break
    # All revisions of an upgrade run in the one transaction this module rolls back.
    at = ",".join(before.current) or "empty"
    return (
        f"migration to {history.head} failed{where}: {type(error).__name__}: "
        f"{_first_line(error)}; nothing was applied, the schema stays at {at}"
    )


async def migrate(
    url: DatabaseURL,
    *,
    lock_timeout: float = 300.0,
    refuse_newer: bool = False,
    connect_timeout: float = 5.0,
    history: SchemaHistory | None = None,
) -> SchemaVerdict:
    """Bring the database to this code's head, one replica at a time; a no-op at head.

    `history` is the revisions to apply (default: this code's alembic/versions).
    """
    history = history or schema_history()
    engine = create_engine(url, timeout=connect_timeout)
    try:
        async with engine.connect() as connection:
            await _take_lock(connection, lock_timeout)
            try:
                verdict = await connection.run_sync(_upgrade, history, refuse_newer)
                await connection.commit()
            except BaseException:
                await connection.rollback()
                raise
            finally:
                await connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK_KEY})
                await connection.commit()
            return verdict
    except (OperationalError, DBAPIError, OSError) as error:
        raise StartupError(f"cannot migrate {url.safe()}: {_first_line(error)}") from None
    finally:
        await engine.dispose()


async def _take_lock(connection: object, timeout: float) -> None:
    from sqlalchemy.ext.asyncio import AsyncConnection

    assert isinstance(connection, AsyncConnection)
    deadline = time.monotonic() + timeout
    waited = False
    while True:
        got = await connection.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": LOCK_KEY})
        await connection.commit()
        if got:
            if waited:
                log.info("migration lock acquired")
            return
        if not waited:
            log.info("another process is migrating; waiting for the migration lock")
            waited = True
        if time.monotonic() >= deadline:
            raise StartupError(
                f"gave up waiting {timeout:g}s for the migration lock held by another process"
            )
        await asyncio.sleep(_POLL_SECONDS)


def _first_line(error: BaseException) -> str:
    original = getattr(error, "orig", None) or error
    text_ = str(original).strip().splitlines()
    return text_[0] if text_ else type(original).__name__
