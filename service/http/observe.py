"""One log line and the metrics for each request, as ASGI middleware around the whole app.

What is logged: method, path (never the query string: GET /graphql carries the query and its
variables there), status, duration, the GraphQL operation's name and outcome, the caller's
role, the request id. Never headers (tokens), bodies or variables.

The request id is the client's or proxy's `X-Request-ID` when it is a sane token (1-128
printable ASCII characters), else a new random one; it is sent back in the response's
`X-Request-ID` and set on every log line the request causes (service/logs.py).
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.http.metrics import GRAPHQL_LATENCY, GRAPHQL_REQUESTS, OperationLabels
from service.logs import request_id
from service.tracing import Tracing

log = logging.getLogger("service.request")

GRAPHQL_PATH = "/graphql"
CLIENT_CLOSED = 499  # nginx's status for a client that hung up before its request was whole
# Probes and scrapes come every few seconds: logged at debug level only.
_QUIET = ("/livez", "/readyz", "/metrics")
# Operation names come from clients: past this many (name, outcome) pairs, look each up anew.
_MAX_CACHED_SERIES = 4096
REQUEST_ID_HEADER = b"x-request-id"
_SANE_REQUEST_ID = re.compile(rb"[!-~]{1,128}")


def _request_id(scope: Scope) -> bytes:
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER:
            if _SANE_REQUEST_ID.fullmatch(value):
                return value
            break
    return secrets.token_hex(8).encode()


def _outcome(status: int) -> str:
    """For responses the GraphQL endpoint did not label (it answered before running anything)."""
    if status == 401:
        return "unauthenticated"
    if status == CLIENT_CLOSED:
        return "client_closed"
    if status == 503:
        return "unavailable"
    if status >= 500:
        return "internal_error"
    if status >= 400:
        return "request_error"
    return "ok"


class RequestObserver:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_operations: int,
        quiet_prefixes: tuple[str, ...],
        tracing: Tracing | None = None,
    ):
        self.app = app
        self.tracing = tracing
        self.labels = OperationLabels(max_operations)
        self._children: dict[tuple[str | None, str], tuple[Any, Any]] = {}
        self.quiet = (*_QUIET, *quiet_prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # if the app fails before it starts a response
        rid = _request_id(scope)
        rid_text = rid.decode()
        context = request_id.set(rid_text)
        tracing = self.tracing
        traced = tracing.start_request(scope, rid_text) if tracing is not None else None

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [*message.get("headers", ()), (REQUEST_ID_HEADER, rid)]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            self._record(scope, status, time.perf_counter() - started, rid_text)
            if tracing is not None and traced is not None:
                tracing.end_request(traced, scope, status)
            request_id.reset(context)

    def _record(self, scope: Scope, status: int, seconds: float, rid: str) -> None:
        path: str = scope["path"]
        operation = outcome = None
        if path == GRAPHQL_PATH or "graphql_operation" in scope:  # REST endpoints' too
            operation = scope.get("graphql_operation")
            outcome = scope.get("graphql_outcome") or _outcome(status)
            count, latency = self._series(operation, outcome)
            count.inc()
            latency.observe(seconds)
        level = logging.DEBUG if path.startswith(self.quiet) else logging.INFO
        if status >= 500 and status != 503:  # 503: not ready yet, or shutting down
            level = logging.WARNING
        if not log.isEnabledFor(level):
            return
        fields: dict[str, object] = {
            "method": scope["method"],
            "path": path,
            "status": status,
            "duration_ms": round(seconds * 1000, 1),
            "request_id": rid,
        }
        if outcome is not None:
            # The log keeps the name even past the metrics' cap, cut to a sane length.
            fields["operation"] = (operation or "none")[:100]
            fields["outcome"] = outcome
            if scope.get("principal_role"):
                fields["role"] = scope["principal_role"]
        summary = " ".join(
            str(fields[k])
            for k in ("method", "path", "status", "operation", "outcome")
            if k in fields
        )
        log.log(
            level,
            "%s %.1f ms",
            summary,
            fields["duration_ms"],
            extra={**fields, "_text_only": True},
        )

    def _series(self, operation: str | None, outcome: str) -> tuple[Any, Any]:
        """The request counter and latency histogram of this operation and outcome.

        Looked up once per pair: prometheus_client's `labels()` costs microseconds a call.
        """
        key = (operation, outcome)
        series = self._children.get(key)
        if series is None:
            label = self.labels(operation)
            series = (
                GRAPHQL_REQUESTS.labels(label, outcome),
                GRAPHQL_LATENCY.labels(label, outcome),
            )
            if len(self._children) < _MAX_CACHED_SERIES:
                self._children[key] = series
        return series
