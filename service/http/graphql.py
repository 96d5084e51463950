"""`/graphql` over HTTP (GraphQL-over-HTTP): POST JSON, GET for queries, GraphiQL for browsers."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Protocol

import asyncpg
import orjson
from starlette.datastructures import QueryParams
from starlette.requests import ClientDisconnect, Request, cookie_parser
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from service.auth import Authenticator, InvalidToken, Principal
from service.db.context import CallerContext
from service.db.explain import Explanations, explain_mode
from service.db.line import ConnectionSetupFailed, NoConnectionInTime
from service.db.pool import Pools
from service.db.wal import (
    BEHIND,
    once_replayed,
    parse_position,
    position_text,
    written_up_to,
)
from service.graphql.errors import (
    DATABASE_BUSY,
    DATABASE_UNAVAILABLE,
    ApiError,
    BadUserInput,
    Code,
    LimitExceeded,
)
from service.graphql.execute import Document, Executor, Result
from service.http.compress import ResponseCompression
from service.http.graphiql import graphiql_response, wants_graphiql
from service.http.live import Batch, Outcome
from service.http.metrics import READS_AFTER_WRITES
from service.http.negotiate import wants_event_stream
from service.http.observe import CLIENT_CLOSED
from service.http.persisted import PersistedQueries
from service.http.rate_limit import RateLimited, RateLimiter
from service.http.response_cache import Cached, ResponseCache
from service.tracing import Tracing

log = logging.getLogger("service.graphql")

_NO_SPAN = contextlib.nullcontext()  # without tracing: holds no state, so one serves all

GRAPHQL_RESPONSE = "application/graphql-response+json"
NEEDS_WEBSOCKET = orjson.dumps(
    {
        "errors": [
            {
                "message": "subscriptions are served over WebSocket at this endpoint "
                "(graphql-transport-ws, as the graphql-ws client speaks it), or as an event "
                "stream (Accept: text/event-stream)",
                "extensions": {"code": Code.BAD_USER_INPUT.value},
            }
        ]
    }
)
JSON = "application/json"


@dataclass(frozen=True, slots=True)
class Reply:
    """A response of this endpoint: sent straight to ASGI on the POST fast path (no Response
    object), or as a Starlette Response through the route."""

    status: int
    body: bytes
    media_type: str
    headers: tuple[tuple[str, str], ...] = ()

    def with_header(self, name: str, value: str) -> Reply:
        return replace(self, headers=(*self.headers, (name, value)))

    def response(self) -> Response:
        response = Response(self.body, self.status, media_type=self.media_type)
        for name, value in self.headers:
            response.headers.append(name, value)  # repeated ones too (Vary)
        return response

    async def send(self, send: Send) -> None:
        headers = [
            (b"content-type", self.media_type.encode("latin-1")),
            (b"content-length", str(len(self.body)).encode("latin-1")),
        ]
        for name, value in self.headers:
            headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})


def not_ready(state: Any, media_type: str) -> Reply:
    """The answer while the service starts (no pool yet): 503, try again in a second."""
    reply = _error(f"not ready: {state.startup_reason}", 503, media_type, Code.INTERNAL)
    return reply.with_header("Retry-After", "1")


def unauthenticated(error: InvalidToken, media_type: str) -> Reply:
    reply = _error(str(error), 401, media_type, Code.UNAUTHENTICATED)
    return reply.with_header("WWW-Authenticate", 'Bearer error="invalid_token"')


def error_reply(error: ApiError, status: int, media_type: str) -> Reply:
    """A request answered with one error and no data (nothing ran)."""
    return Reply(status, orjson.dumps({"errors": [error.to_dict()]}), media_type)


def _error(message: str, status: int, media_type: str, code: Code = Code.BAD_USER_INPUT) -> Reply:
    return error_reply(ApiError(message, code=code), status, media_type)


def _status(error: ApiError) -> int:
    """A request refused before anything ran: 403 for an operation that is not allowed here."""
    return 403 if error.code is Code.FORBIDDEN else 400


def _response_type(headers: dict[bytes, str]) -> str:
    if GRAPHQL_RESPONSE in headers.get(b"accept", ""):
        return GRAPHQL_RESPONSE
    return JSON


_READ_HEADERS = frozenset(
    (
        b"authorization",
        b"accept",
        b"accept-encoding",
        b"content-type",
        b"content-length",
        b"x-explain",
        b"cookie",
    )
)

# Where the caller's last mutation left the primary's WAL (db/wal.py), while it matters.
READ_AFTER_COOKIE = "read_after"


def _headers(scope: Scope) -> dict[bytes, str]:
    """The request headers this endpoint reads, in one pass (the first of repeated ones)."""
    found: dict[bytes, str] = {}
    for name, value in scope["headers"]:
        if name in _READ_HEADERS and name not in found:
            found[name] = value.decode("latin-1")
    return found


class GraphQLEndpoint:
    def __init__(
        self,
        executor: Executor,
        authenticator: Authenticator,
        *,
        max_body_bytes: int,
        graphiql: bool,
        caller_context: CallerContext | None = None,
        max_batch: int = 10,
        persisted: PersistedQueries | None = None,
        compression: ResponseCompression | None = None,
        tracing: Tracing | None = None,
        allow_explain: bool = False,
        response_cache: ResponseCache | None = None,
        rate_limiter: RateLimiter | None = None,
        read_your_writes_seconds: int = 0,
    ) -> None:
        self.executor = executor
        self.authenticator = authenticator
        # Transaction-scoped settings work on any pool; session state needs pool.py's
        # ServiceConnection (see db/context.py).
        self.caller_context = caller_context or CallerContext(session_state=False)
        self.max_body_bytes = max_body_bytes
        self.max_batch = max_batch  # requests in one batch; 0: batches are refused
        self.persisted = persisted or PersistedQueries()
        self.graphiql = graphiql
        self.compression = compression or ResponseCompression(level=0)
        self.tracing = tracing
        self.allow_explain = allow_explain  # the X-Explain header (db/explain.py)
        self.response_cache = response_cache  # answers of queries marked @cached
        self.rate_limiter = rate_limiter  # RATE_LIMITS, when set
        self.read_your_writes_seconds = read_your_writes_seconds  # with a read replica
        # Event streams (sse.py), when the app serves them: set once both exist.
        self.events: EventStreamServer | None = None

    async def handle(self, request: Request) -> Response:
        """The route's endpoint: GET and HEAD (queries; GraphiQL for browsers), and POST where
        the fast path does not apply (under a root path)."""
        headers = _headers(request.scope)
        if self.events is not None and wants_event_stream(headers.get(b"accept", "")):
            return _Streamed(partial(self.events.serve, headers=headers))
        if request.method == "GET" and self.graphiql and wants_graphiql(request):
            return graphiql_response(request, explain=self.allow_explain)
        reply = await self.answer(request.scope, request.receive, headers)
        return reply.response()

    async def post(self, scope: Scope, receive: Receive, send: Send) -> None:
        """POST /graphql as plain ASGI, with no Request or Response objects: this is the path
        every API call takes, and those objects cost several µs of a ~100 µs request."""
        headers = _headers(scope)
        if self.events is not None and wants_event_stream(headers.get(b"accept", "")):
            await self.events.serve(scope, receive, send, headers)
            return
        reply = await self.answer(scope, receive, headers)
        await reply.send(send)

    async def answer(
        self, scope: Scope, receive: Receive, headers: dict[bytes, str] | None = None
    ) -> Reply:
        headers = _headers(scope) if headers is None else headers
        media_type = _response_type(headers)
        state = scope["app"].state
        if state.pools is None:
            return not_ready(state, media_type)
        reply = await self._answer(scope, receive, headers, media_type, state.pools)
        return await self.finished(reply, state, headers.get(b"accept-encoding", ""))

    async def finished(self, reply: Reply, state: Any, accept_encoding: str) -> Reply:
        """An answer as it leaves: compressed when it pays, closing the connection while the
        service shuts down."""
        if state.shutting_down:
            reply = reply.with_header("Connection", "close")  # clients reconnect elsewhere
        if self.compression.applies(reply.body):
            reply = await self._compressed(reply, accept_encoding)
        return reply

    async def _compressed(self, reply: Reply, accept_encoding: str) -> Reply:
        reply = reply.with_header("Vary", "Accept-Encoding")  # for caches between us and clients
        if not self.compression.accepted(accept_encoding):
            return reply
        body = await self.compression.gzip(reply.body)
        return replace(reply, body=body).with_header("Content-Encoding", "gzip")

    async def _answer(
        self,
        scope: Scope,
        receive: Receive,
        headers: dict[bytes, str],
        media_type: str,
        pools: Pools,
    ) -> Reply:
        try:
            principal = await self.authenticator.principal(headers.get(b"authorization"))
        except InvalidToken as error:
            return unauthenticated(error, media_type)
        scope["principal_role"] = principal.role
        from_url = scope["method"] in ("GET", "HEAD")
        explain = None
        if self.allow_explain:  # otherwise the header means nothing here
            try:
                explain = explain_mode(headers.get(b"x-explain"))
            except ValueError as error:
                return _error(str(error), 400, media_type)
        try:
            params = await self.read_params(scope, receive, headers)
        except RequestRefused as refused:
            return refused.reply(media_type)
        except ClientDisconnect:
            # Hung up before the request was whole: nobody to answer. The request log and
            # metrics show 499, nginx's "client closed request".
            return Reply(CLIENT_CLOSED, b"", media_type)
        if self.rate_limiter is not None:
            cost = len(params) if isinstance(params, list) else 1
            limited = self.over_limit(principal, scope, media_type, cost)
            if limited is not None:
                return limited
        read_after = self.read_after(pools, headers.get(b"cookie"))
        if isinstance(params, list):
            return await self._answer_batch(
                scope, pools, principal, params, media_type, explain, read_after
            )
        query, operation_name, variables = params
        prepared = self.executor.prepare(query, operation_name)
        if from_url and prepared.is_mutation:
            return _error("mutations need POST", 405, media_type).with_header("Allow", "POST")
        try:
            result, freshness = await self.run_request(
                pools, principal, prepared, variables, explain, read_after
            )
        except OperationFailed as failed:
            return failed.reply(media_type)
        scope["graphql_operation"] = prepared.operation_label
        scope["graphql_outcome"] = result.outcome
        status = (
            400 if result.outcome == "request_error" and media_type == GRAPHQL_RESPONSE else 200
        )
        reply = Reply(status, result.body, media_type, freshness)
        return self.with_written(reply, result.written, scope)

    def read_after(self, pools: Pools, cookie: str | None) -> int | None:
        """The WAL position of the caller's recent write, from the request's cookie, when a
        read replica may not have replayed it yet; None when there is none or nothing to
        wait for. A cookie that names no position is ignored, like a missing one."""
        if pools.replica is None or not self.read_your_writes_seconds or not cookie:
            return None
        return parse_position(cookie_parser(cookie).get(READ_AFTER_COOKIE, ""))

    def with_written(self, reply: Reply, written: int | None, scope: Scope) -> Reply:
        """`reply` telling the client how far its write went, for its next reads (a cookie,
        which browsers, HTTP clients' sessions and mobile platforms send back by
        themselves). It grants nothing: a forged one only sends reads to the primary."""
        if written is None:
            return reply
        cookie = (
            f"{READ_AFTER_COOKIE}={position_text(written)}; Max-Age="
            f"{self.read_your_writes_seconds}; Path=/; HttpOnly; SameSite=Lax"
        )
        if scope.get("scheme") == "https":
            cookie += "; Secure"
        return reply.with_header("Set-Cookie", cookie)

    def over_limit(
        self, principal: Principal, scope: Scope, media_type: str, cost: int = 1
    ) -> Reply | None:
        """A 429 when the caller has sent more than RATE_LIMITS allows (counting `cost`
        operations), else None and they are counted."""
        if self.rate_limiter is None:
            return None
        client = scope.get("client")
        try:
            self.rate_limiter.take(principal, client[0] if client else None, cost)
        except RateLimited as limited:
            reply = _error(limited.message, 429, media_type, Code.LIMIT_EXCEEDED)
            return reply.with_header("Retry-After", str(limited.retry_after))
        return None

    async def run_request(
        self,
        pools: Pools,
        principal: Principal,
        prepared: Document,
        variables: dict[str, Any] | None,
        explain: str | None,
        read_after: int | None = None,
    ) -> tuple[Result, tuple[tuple[str, str], ...]]:
        """An operation sent over HTTP: through the response cache when it is marked
        `@cached` (unless explained: the plans are of this run), with the headers that say
        how long its answer may be reused. `read_after`: the position of the caller's recent
        write (db/wal.py)."""
        cache = self.response_cache
        ttl = None if cache is None or explain is not None else cache.ttl(prepared, variables)
        if ttl is None:
            result = await self.run(
                pools, principal, prepared, variables, explain=explain, read_after=read_after
            )
            return result, ()
        assert cache is not None
        run = partial(self.run, pools, principal, prepared, variables, read_after=read_after)
        try:
            answer = await cache.answer(prepared, variables, principal, ttl, run)
        except ApiError as error:
            return Result(orjson.dumps({"errors": [error.to_dict()]}), "request_error"), ()
        if isinstance(answer, Result):  # not kept: errors, or no room
            return answer, ()
        return answer.result, _freshness(answer, principal)

    async def outcome(
        self,
        state: Any,
        principal: Principal,
        prepared: Document,
        variables: dict[str, Any] | None,
        *,
        live: bool,
        after: str | None = None,
    ) -> Outcome:
        """One run for a stream (a WebSocket's or an event stream's): ("next", the answer),
        ("failed", an answer with errors that may pass: tried again next tick) or ("error",
        errors that end the operation); a stream subscription's ("batch", its rows after
        `after`): see live.Outcome. `state`: the app's."""
        if state.pools is None:  # still starting
            not_ready = ApiError(f"not ready: {state.startup_reason}", code=Code.INTERNAL)
            return "error", [not_ready.to_dict()]
        try:
            result = await self.run(
                state.pools, principal, prepared, variables, live=live, after=after
            )
        except OperationFailed as failed:
            if failed.status == 503:
                return "failed", failed.body  # the database busy or away: tried again
            return "error", orjson.loads(failed.body)["errors"]
        if result.outcome == "request_error":  # variables, page sizes: it would never run
            return "error", orjson.loads(result.body)["errors"]
        if result.outcome == "field_error":  # e.g. a statement timed out: it may pass
            errors = orjson.loads(result.body)["errors"]
            if all(e["extensions"]["code"] == Code.BAD_USER_INPUT for e in errors):
                return "error", errors  # an argument (a cursor) it will never accept
            return "failed", result.body
        if result.stream is not None:
            end, more = result.stream
            return "batch", Batch(result.body if end is not None else None, end, more)
        return "next", result.body

    async def run(
        self,
        pools: Pools,
        principal: Principal,
        prepared: Document,
        variables: dict[str, Any] | None,
        *,
        live: bool = False,
        after: str | None = None,
        explain: str | None = None,
        read_after: int | None = None,
    ) -> Result:
        """One operation as the caller; `live`: one run of a subscription (a WebSocket's or an
        event stream's), `after`: a stream subscription's cursor, `explain`: the mode of
        X-Explain, whose plans go in the response's extensions, `read_after`: a position the
        primary's WAL reached with the caller's recent write, which a read replica must have
        replayed to run a read. What is not the client's doing is raised as OperationFailed."""
        if prepared.is_subscription and not live:
            return Result(NEEDS_WEBSOCKET, "request_error")
        pool = pools.for_operation(writes=prepared.is_mutation)
        # With tracing on: a span for the operation, one for its turn on a connection under it
        # (live polls untraced: a trace a second per subscriber would drown the rest).
        tracing = None if live else self.tracing
        operation = prepared.operation
        span: Any = _NO_SPAN
        if tracing is not None and operation is not None:
            span = tracing.operation(operation.operation.value, prepared.operation_label)

        explanations = None
        if explain is not None:
            # ANALYZE runs a statement again: a write's plan is the one without it
            explanations = Explanations("on" if prepared.is_mutation else explain)

        async def run_in_transaction(work: Any, *, atomic: bool) -> Any:
            nonlocal pool

            def on(target: asyncpg.Pool) -> Any:
                """`work` as it runs on `target`: explained, when asked, as run there."""
                if explanations is None:
                    return work
                database = None
                if pools.replica is not None:
                    database = "replica" if target is pools.replica else "primary"
                return explanations.watching(work, database)

            with tracing.statement() if tracing is not None else _NO_SPAN:
                try:
                    if read_after is not None and pool is pools.replica:
                        checked = once_replayed(read_after, on(pool))
                        result = await self.caller_context.run(
                            pool, principal, checked, atomic=atomic
                        )
                        if result is not BEHIND:
                            return result
                        pool = pools.primary  # for this operation's later statements too
                    return await self.caller_context.run(pool, principal, on(pool), atomic=atomic)
                except (OSError, asyncpg.InternalClientError, ConnectionSetupFailed):
                    if pool is pools.primary:
                        raise
                    # A read the replica could not take: reads go to the primary for a
                    # while, this one first (a read is safe to run again)
                    pools.replica_failed("read replica not reachable")
                    pool = pools.primary
                    return await self.caller_context.run(pool, principal, on(pool), atomic=atomic)

        with span as current:
            try:
                result = await self.executor.run(
                    prepared,
                    variables,
                    run_in_transaction,  # type: ignore[arg-type]
                    anonymous=principal.anonymous,
                    after=after,
                )
            except NoConnectionInTime as error:
                # Overloaded or stalled: shed this request rather than queue it without end.
                log.warning("%s for operation %s", error, prepared.operation_label)
                raise OperationFailed(503, DATABASE_BUSY) from None
            except (OSError, asyncpg.InternalClientError, ConnectionSetupFailed) as error:
                # The database cannot be reached (restarting, failing over) or refuses new
                # connections: one line, and a 503 that tells clients and proxies to retry.
                # (asyncpg raises InternalClientError for a connection the server closed a
                # moment ago, before it has read the close.)
                label = prepared.operation_label
                log.warning("database unreachable in operation %s: %r", label, error)
                raise OperationFailed(503, DATABASE_UNAVAILABLE) from None
            except Exception:
                # A bug or an outage, not the client's doing: log it whole, send nothing of it.
                log.exception("unexpected error in operation %s", prepared.operation_label)
                raise OperationFailed(500, "internal error") from None
            if current is not None:
                current.set_attribute("service.graphql.outcome", result.outcome)
        if explanations is not None:
            result = replace(result, body=explanations.added_to(result.body))
        if read_after is not None and not prepared.is_mutation:
            READS_AFTER_WRITES.labels("replica" if pool is pools.replica else "primary").inc()
        wrote = prepared.is_mutation and result.outcome != "request_error"  # else nothing ran
        if wrote and not live and self._replica_may_lag(pools):
            result = replace(result, written=await self._written_up_to(pools, principal))
        return result

    def _replica_may_lag(self, pools: Pools) -> bool:
        return pools.replica is not None and self.read_your_writes_seconds > 0

    async def _written_up_to(self, pools: Pools, principal: Principal) -> int | None:
        """How far the primary's WAL went, now that the mutation committed; None (and the
        client reads as if it had not written) when the primary cannot say: the write is
        done, and failing its answer now would only make the client send it again."""
        try:
            position: int = await self.caller_context.run(
                pools.primary, principal, written_up_to, atomic=False
            )
        except Exception as error:  # best effort, see above
            log.warning("could not read the primary's WAL position after a write: %r", error)
            return None
        return position

    async def _answer_batch(
        self,
        scope: Scope,
        pools: Pools,
        principal: Principal,
        items: list[Params | ApiError],
        media_type: str,
        explain: str | None,
        read_after: int | None,
    ) -> Reply:
        """A batch's requests one after another, each as if sent on its own (its own
        transaction; a mutation before a query is seen by it), answered in their order. A
        request that fails is answered in its place; once the database is unavailable, the
        rest are answered so without running."""
        bodies: list[bytes] = []
        outcomes: list[str] = []
        failed: OperationFailed | None = None
        written: int | None = None
        for item in items:
            if failed is not None:  # the database is unavailable: the rest are not tried
                bodies.append(failed.body)
                outcomes.append(failed.outcome)
            elif isinstance(item, ApiError):
                bodies.append(orjson.dumps({"errors": [item.to_dict()]}))
                outcomes.append("request_error")
            else:
                prepared = self.executor.prepare(item[0], item[1])
                try:
                    result, _ = await self.run_request(
                        pools, principal, prepared, item[2], explain, read_after
                    )
                    if prepared.is_mutation:  # the later requests see what it wrote
                        pools = pools.primary_only()
                        written = max(written or 0, result.written or 0) or None
                except OperationFailed as error:
                    failed = error if error.status == 503 else None
                    bodies.append(error.body)
                    outcomes.append(error.outcome)
                else:
                    bodies.append(result.body)
                    outcomes.append(result.outcome)
        scope["graphql_operation"] = "batch"
        scope["graphql_outcome"] = max(outcomes, key=_SEVERITY.index)
        reply = Reply(200, b"[" + b",".join(bodies) + b"]", media_type)
        return self.with_written(reply, written, scope)

    async def read_params(
        self, scope: Scope, receive: Receive, headers: dict[bytes, str]
    ) -> Params | list[Params | ApiError]:
        """The request's operation (or batch of them), from the URL of a GET or the body of a
        POST; `RequestRefused` with the HTTP status when it cannot be read."""
        try:
            if scope["method"] in ("GET", "HEAD"):
                return self._from_query_string(scope)
            return await self._from_body(receive, headers)
        except ApiError as error:
            raise RequestRefused(_status(error), error) from None
        except _UnsupportedMediaType:
            send_json = "send JSON (Content-Type: application/json) or application/graphql"
            raise RequestRefused(415, BadUserInput(send_json)) from None

    def _from_query_string(self, scope: Scope) -> Params:
        q = QueryParams(scope["query_string"])
        query = q.get("query")
        variables = extensions = None
        if q.get("variables"):
            variables = _json(q["variables"], "`variables`")
        if q.get("extensions"):
            extensions = _check_extensions(_json(q["extensions"], "`extensions`"))
        query = self.persisted.query_for(query or None, extensions, q.get("documentId"))
        return query, q.get("operationName") or None, _check_variables(variables)

    async def _from_body(
        self, receive: Receive, headers: dict[bytes, str]
    ) -> Params | list[Params | ApiError]:
        content_type, *parameters = headers.get(b"content-type", "").lower().split(";")
        content_type = content_type.strip()
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip() == "charset" and value.strip().strip('"') not in ("utf-8", "utf8"):
                raise _UnsupportedMediaType
        body = await self.read_body(receive, headers.get(b"content-length"))
        if content_type == "application/graphql":
            try:
                # strictly: a replacement character would change the client's strings unseen
                return body.decode("utf-8"), None, None
            except UnicodeDecodeError:
                raise BadUserInput("the body is not valid UTF-8") from None
        if content_type not in ("application/json", ""):
            raise _UnsupportedMediaType
        payload = _json(body, "the body")
        if isinstance(payload, list):
            return self._batch(payload)
        return self.request_params(payload)

    def _batch(self, payload: list[Any]) -> list[Params | ApiError]:
        """A JSON array of requests: each is checked on its own, and a bad one is answered
        in its place without stopping the others."""
        if self.max_batch == 0:
            raise BadUserInput("batched requests are turned off: send one operation a request")
        if not payload:
            raise BadUserInput("an empty batch: send at least one request")
        if len(payload) > self.max_batch:
            raise LimitExceeded(f"a batch may hold at most {self.max_batch} requests")
        items: list[Params | ApiError] = []
        for item in payload:
            try:
                items.append(self.request_params(item))
            except ApiError as error:
                items.append(error)
        return items

    def request_params(self, payload: Any) -> Params:
        """One GraphQL request object: its query (sent, or found by its hash), operation name
        and variables."""
        if not isinstance(payload, dict):
            raise BadUserInput("the body must be a JSON object with a `query`")
        extensions = _check_extensions(payload.get("extensions"))
        query = self.persisted.query_for(
            payload.get("query"), extensions, payload.get("documentId")
        )
        operation_name = payload.get("operationName")
        if operation_name is not None and not isinstance(operation_name, str):
            raise BadUserInput("`operationName` must be a string")
        return query, operation_name or None, _check_variables(payload.get("variables"))

    async def read_body(self, receive: Receive, content_length: str | None) -> bytes:
        """The request body, refused (413) by its Content-Length or as soon as it grows past
        MAX_BODY_BYTES."""
        if (
            content_length
            and content_length.isdigit()
            and int(content_length) > self.max_body_bytes
        ):
            raise self._too_large()
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnect
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise self._too_large()
            if not message.get("more_body", False):
                if not chunks:
                    return chunk  # the usual case: the whole body in one message
                chunks.append(chunk)
                return b"".join(chunks)
            chunks.append(chunk)

    def _too_large(self) -> RequestRefused:
        return RequestRefused(413, LimitExceeded(f"request body over {self.max_body_bytes} bytes"))


Params = tuple[str, str | None, dict[str, Any] | None]  # query, operation name, variables


def _freshness(answer: Cached, principal: Principal) -> tuple[tuple[str, str], ...]:
    """How long caches between us and the client may reuse a `@cached` answer: an anonymous
    caller's is everyone's (a CDN may keep it for requests without a token: GET with a
    persisted query's hash), a signed-in caller's only theirs."""
    scope = "public" if principal.anonymous else "private"
    return (
        ("Cache-Control", f"{scope}, max-age={answer.max_age}"),
        ("Age", str(answer.age)),
        ("Vary", "Accept, Authorization"),
    )


def _check_extensions(extensions: Any) -> dict[str, Any] | None:
    if extensions is not None and not isinstance(extensions, dict):
        raise BadUserInput("`extensions` must be a JSON object")
    return extensions


# a batch's outcome in logs and metrics: the worst of its requests'
_SEVERITY = ["ok", "request_error", "field_error", "unavailable", "internal_error"]


class OperationFailed(Exception):
    """An operation that failed through no fault of the client's: a 503 or a 500."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.body = orjson.dumps(
            {"errors": [{"message": message, "extensions": {"code": "INTERNAL"}}]}
        )
        self.outcome = "unavailable" if status == 503 else "internal_error"

    def reply(self, media_type: str) -> Reply:
        reply = Reply(self.status, self.body, media_type)
        return reply.with_header("Retry-After", "1") if self.status == 503 else reply


class EventStreamServer(Protocol):
    async def serve(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[bytes, str]
    ) -> None: ...


class _Streamed(Response):
    """A route's answer that is an event stream: the ASGI app that sends it."""

    def __init__(self, serve: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.serve = serve

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.serve(scope, receive, send)


class RequestRefused(Exception):
    """A request whose operation cannot be read (the client's doing), with its HTTP status."""

    def __init__(self, status: int, error: ApiError) -> None:
        self.status = status
        self.error = error

    def reply(self, media_type: str) -> Reply:
        return error_reply(self.error, self.status, media_type)


class _UnsupportedMediaType(Exception):
    pass


def _json(text: bytes | bytearray | str, what: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as error:
        if "depth limit" in str(error):
            raise LimitExceeded(f"{what}: JSON nested too deeply") from None
        raise BadUserInput(f"{what}: not valid JSON") from None


def _check_variables(variables: Any) -> dict[str, Any] | None:
    if variables is None:
        return None
    if not isinstance(variables, dict):
        raise BadUserInput("`variables` must be a JSON object")
    return variables
