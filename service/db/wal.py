"""Reading your own writes with a read replica: positions in the primary's write-ahead log.

A standby replays the primary's WAL a moment behind it, so a query sent right after a
mutation may not find its rows there. After a mutation the service tells the client how far
the primary's WAL had got (a cookie, http/graphql.py); a read that carries that position runs
on the replica once the replica has replayed that far, and on the primary until then.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg

T = TypeVar("T")

# PostgreSQL's text form of a pg_lsn: the two 32-bit halves of a 64-bit position, in hex.
_POSITION = re.compile(r"([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})")


def position_text(position: int) -> str:
    return f"{position >> 32:X}/{position & 0xFFFFFFFF:X}"


def parse_position(text: str) -> int | None:
    """The position `text` names, or None when it names none."""
    match = _POSITION.fullmatch(text)
    if match is None:
        return None
    return int(match[1], 16) << 32 | int(match[2], 16)


async def written_up_to(connection: asyncpg.Connection) -> int:
    """How far the primary's WAL goes, asked after a write committed: the write and its commit
    record are before it. The insert position rather than the flushed one: with
    synchronous_commit off a commit returns before its record is flushed."""
    position: int = await connection.fetchval("SELECT pg_current_wal_insert_lsn()")
    return position


# What once_replayed's work gives when the replica has not replayed the write yet: a value,
# not an exception, since the connection is as good as before (an error would close it).
BEHIND: Any = object()


def once_replayed(
    position: int, work: Callable[[Any], Awaitable[T]]
) -> Callable[[Any], Awaitable[T]]:
    """`work` for a replica's connection, run only if that replica has replayed up to
    `position` (BEHIND, with none of it run, if not). Each statement of a read sees what had
    been replayed when it began, so one check before the work is enough.

    A connection straight to a standby remembers the furthest replay it saw (replay only
    moves forward), so the check costs a round trip only until the standby is past the
    position; through PgBouncer, whose server connections change, every read checks."""

    async def after_replay(connection: Any) -> T:
        seen = getattr(connection, "replayed", None)  # ServiceConnection's, db/context.py
        if seen is None or seen() < position:
            replayed = await connection.fetchval("SELECT pg_last_wal_replay_lsn()")
            if replayed is None or replayed < position:  # None: not a standby at all
                return BEHIND  # type: ignore[no-any-return]
            if seen is not None:
                connection.saw_replay(replayed)
        return await work(connection)

    return after_replay


class ReplayAge:
    """How far behind its primary a replica is, in seconds, from WAL positions alone.

    The watcher notes the primary's position at each check; a replica that has replayed a
    position noted at time t has everything the primary had then. Its age is taken as how long
    ago the first noted position it has not replayed was written down: at least that old,
    never more than one check's interval older. An idle primary writes nothing new, so its
    replica is 0 s behind however long ago the last write was (unlike
    pg_last_xact_replay_timestamp())."""

    _KEEP = 3600  # noted positions at most (two hours at one check in two seconds)

    def __init__(self) -> None:
        self._noted: deque[tuple[float, int]] = deque(maxlen=self._KEEP)

    def note(self, when: float, position: int) -> None:
        self._noted.append((when, position))

    def behind(self, when: float, replayed: int) -> float:
        """Seconds behind at `when`, given the position the replica has replayed."""
        while self._noted and self._noted[0][1] <= replayed:
            self._noted.popleft()  # replayed: no longer needed
        if not self._noted:
            return 0.0
        return max(0.0, when - self._noted[0][0])
