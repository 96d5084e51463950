"""The error codes of API.md, and how exceptions (ours and PostgreSQL's) map to them."""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import Any

import asyncpg

log = logging.getLogger("service.graphql")


class Code(StrEnum):
    BAD_USER_INPUT = "BAD_USER_INPUT"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    NOT_FOUND = "NOT_FOUND"
    CONFLICT = "CONFLICT"
    LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
    INTERNAL = "INTERNAL"
    # Apollo's persisted-query protocol: clients resend the query when they see it
    PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"


class ApiError(Exception):
    """An error a client may see: its message is safe to send."""

    code: Code = Code.INTERNAL

    def __init__(self, message: str, *, code: Code | None = None, **extensions: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.extensions = extensions

    def to_dict(self, path: list[str | int] | None = None) -> dict[str, Any]:
        error: dict[str, Any] = {
            "message": self.message,
            "extensions": {"code": self.code.value, **self.extensions},
        }
        if path:
            error["path"] = path
        return error


class BadUserInput(ApiError):
    code = Code.BAD_USER_INPUT


class LimitExceeded(ApiError):
    code = Code.LIMIT_EXCEEDED


class Unauthenticated(ApiError):
    code = Code.UNAUTHENTICATED


# SQLSTATE → (code, message). Messages describe the problem without PostgreSQL's text,
# which may quote SQL, values of other rows or names of internal objects.
_SQLSTATES: dict[str, tuple[Code, str]] = {
    "42501": (Code.FORBIDDEN, "not allowed to do this"),
    "23505": (Code.CONFLICT, "a row with the same unique value already exists"),
    "23503": (Code.BAD_USER_INPUT, "refers to a row that does not exist or is not visible"),
    "23502": (Code.BAD_USER_INPUT, "a required value is missing"),
    "23514": (Code.BAD_USER_INPUT, "a value breaks a check on the data"),
    "22001": (Code.BAD_USER_INPUT, "a value is too long"),
    "22P02": (Code.BAD_USER_INPUT, "a value has the wrong format"),
    "22007": (Code.BAD_USER_INPUT, "a date or time has the wrong format"),
    "22008": (Code.BAD_USER_INPUT, "a date or time is out of range"),
    "22003": (Code.BAD_USER_INPUT, "a number is out of range"),
    # The only byte a Python str can carry that PostgreSQL refuses in text: NUL.
    "22021": (Code.BAD_USER_INPUT, "a text value contains a NUL character (\\u0000)"),
    "22P05": (Code.BAD_USER_INPUT, "a text value contains a character PostgreSQL cannot store"),
    "22025": (Code.BAD_USER_INPUT, "a LIKE pattern must not end with the escape character `\\`"),
    "57014": (Code.LIMIT_EXCEEDED, "the operation took too long and was cancelled"),
    "54001": (Code.LIMIT_EXCEEDED, "the operation is nested too deeply"),
}
# Whole classes: "data exception" can only come from a value the client gave (our SQL casts
# client values and nothing else); "program limit exceeded" from the size of the request.
_SQLSTATE_CLASSES: dict[str, tuple[Code, str]] = {
    "22": (Code.BAD_USER_INPUT, "a value is not valid here"),
    "54": (Code.LIMIT_EXCEEDED, "the operation is too large"),
}


# SQLSTATEs of class SV (free: PostgreSQL leaves classes from I to Z to others) are errors your
# own SQL raises for the client, with its message: `RAISE EXCEPTION 'the event is full' USING
# ERRCODE = 'SV409'` in a function or trigger. The digits pick the code, as HTTP's would;
# any others are BAD_USER_INPUT.
_OWN_CLASS = "SV"
_OWN_CODES: dict[str, Code] = {
    "401": Code.UNAUTHENTICATED,
    "403": Code.FORBIDDEN,
    "404": Code.NOT_FOUND,
    "409": Code.CONFLICT,
    "429": Code.LIMIT_EXCEEDED,
}

DATABASE_UNAVAILABLE = "the database is unavailable; try again shortly"
DATABASE_BUSY = "every database connection is busy; try again shortly"
# Class 08 (connection exception) and these: admin/crash shutdown, cannot connect now, too many
# connections.
_UNAVAILABLE = {"57P01", "57P02", "57P03", "53300"}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def from_database(error: BaseException) -> ApiError:
    """A PostgreSQL error as an ApiError; the full text goes to the log only."""
    sqlstate = getattr(error, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate.startswith(_OWN_CLASS):
        code = _OWN_CODES.get(sqlstate[2:], Code.BAD_USER_INPUT)
        log.info("refused by the database's own rule: %s %s", sqlstate, code.value)
        return ApiError(str(getattr(error, "message", "") or "refused"), code=code)
    known = _SQLSTATES.get(sqlstate) if isinstance(sqlstate, str) else None
    if known is None and isinstance(sqlstate, str) and sqlstate[:2] in _SQLSTATE_CLASSES:
        # The client's doing, so not an ERROR; the class name (not the text, which may quote
        # values) tells a developer which rule to add above.
        log.info("client value refused by PostgreSQL: %s %s", sqlstate, type(error).__name__)
        known = _SQLSTATE_CLASSES[sqlstate[:2]]
    if known is not None:
        code, message = known
        detail = getattr(error, "column_name", None)
        extensions = {"field": _camel(detail)} if detail else {}
        return ApiError(message, code=code, **extensions)
    if isinstance(sqlstate, str) and (sqlstate[:2] == "08" or sqlstate in _UNAVAILABLE):
        # The database went away under us (a restart, a failover): no bug, worth a retry.
        log.warning("database unavailable: %s (%s)", type(error).__name__, sqlstate)
        return ApiError(DATABASE_UNAVAILABLE, code=Code.INTERNAL)
    if isinstance(error, asyncpg.PostgresError) and str(sqlstate).startswith("42"):
        log.error("query rejected by PostgreSQL: %s (%s)", error, sqlstate)
    else:
        log.error("database error: %r", error)
    return ApiError("internal error", code=Code.INTERNAL)
