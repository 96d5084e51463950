"""GraphQL over WebSocket at /graphql: the graphql-transport-ws protocol, as the graphql-ws client
speaks it (Apollo Client's GraphQLWsLink, urql, Relay, GraphiQL).

Subscriptions are live queries. A subscription's one statement runs as the subscriber (their
role and claims, so Row Level Security decides what they see, exactly as for a query) every
`SUBSCRIPTION_POLL_SECONDS`, and the answer is sent whenever it differs from the last one sent.
Polling is what keeps Row Level Security exact: a notification that a row changed cannot say
which subscribers may see it, but re-running the subscriber's own query can (Hasura serves its
live queries the same way). Subscriptions of the same operation and variables by the same
caller share one poll (live.py). Queries and mutations may be sent over the socket too: one
`next`, then `complete`.

The caller is authenticated once per socket, from `connection_init`'s payload (`Authorization`,
or `headers.Authorization`, as GraphiQL and Apollo send connection params) or else the
handshake's `Authorization` header. A bad token closes the socket with 4403 (the graphql-ws
client may retry with fresh connection params), and so does the token's expiry.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from functools import partial
from typing import Any

import orjson
from starlette.websockets import WebSocket, WebSocketDisconnect

from service.auth import InvalidToken, Principal
from service.graphql.errors import ApiError, LimitExceeded
from service.graphql.execute import Document
from service.http.graphql import GraphQLEndpoint
from service.http.live import Listener, LiveQueries, Outcome, answer_key
from service.http.metrics import SUBSCRIPTIONS
from service.http.rate_limit import RateLimited

log = logging.getLogger("service.websocket")

PROTOCOL = "graphql-transport-ws"


class _Close(Exception):
    """Ends the socket with a close code of the protocol."""

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason


class GraphQLWebSocket:
    """The /graphql WebSocket endpoint: one instance per app, one `_Socket` per connection."""

    def __init__(
        self,
        endpoint: GraphQLEndpoint,
        live_queries: LiveQueries,
        *,
        max_subscriptions: int = 20,
        init_timeout: float = 10.0,
        max_message_bytes: int = 1_000_000,
    ) -> None:
        self.endpoint = endpoint
        self.max_subscriptions = max_subscriptions
        self.init_timeout = init_timeout
        self.max_message_bytes = max_message_bytes
        self.live_queries = live_queries  # shared with event streams (sse.py)
        # Queries and mutations whose socket closed while they ran: they finish, unanswered.
        self.unanswered: set[asyncio.Task[None]] = set()

    async def handle(self, websocket: WebSocket) -> None:
        """The route's endpoint (Starlette calls a method with the WebSocket)."""
        if PROTOCOL not in websocket.scope.get("subprotocols", ()):
            await websocket.accept()
            await websocket.close(4406, f"Subprotocol not acceptable: use {PROTOCOL}")
            return
        await websocket.accept(subprotocol=PROTOCOL)
        socket = _Socket(self, websocket)
        started = time.monotonic()
        code = 1011  # unless it ends otherwise: an error of ours
        try:
            await socket.serve()
        except _Close as close:
            code = close.code
            await socket.stop()
            await websocket.close(close.code, close.reason[:120])  # a close reason is short
        except WebSocketDisconnect as disconnect:
            code = disconnect.code
        finally:
            await socket.stop()
            # One line a socket, as the request log has one a request.
            role = socket.principal.role if socket.principal else None
            log.info(
                "WebSocket /graphql closed %s after %.1f s, %d operations",
                code,
                time.monotonic() - started,
                socket.operations_started,
                extra={"path": "/graphql", "close_code": code, "role": role},
            )


class _Socket:
    """One client's socket: the protocol's states, its operations and their tasks."""

    def __init__(self, owner: GraphQLWebSocket, websocket: WebSocket) -> None:
        self.owner = owner
        self.websocket = websocket
        self.principal: Principal | None = None  # set by connection_init
        self.init_received = False
        self.operations: dict[str, asyncio.Task[None]] = {}
        self.operations_started = 0
        self.live: set[asyncio.Task[None]] = set()  # the subscriptions' tasks
        self.expiry: asyncio.Task[None] | None = None
        self.sending = asyncio.Lock()  # operations' tasks send concurrently

    async def serve(self) -> None:
        deadline = time.monotonic() + self.owner.init_timeout
        while True:
            timeout = None if self.init_received else deadline - time.monotonic()
            try:
                message = await asyncio.wait_for(self.websocket.receive(), timeout)
            except TimeoutError:
                raise _Close(4408, "Connection initialisation timeout") from None
            if message["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(message.get("code", 1000))
            text = message.get("text")
            if text is None:
                raise _Close(4400, "messages are JSON text")
            if len(text) > self.owner.max_message_bytes:
                raise _Close(1009, "message too big")
            await self.handle(_message(text))

    async def handle(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "connection_init":
            await self.initialise(message.get("payload"))
        elif kind == "ping":
            await self.send({"type": "pong"})
        elif kind == "pong":
            pass
        elif kind == "subscribe":
            await self.subscribe(message)
        elif kind == "complete":
            # The client stopped listening: nothing more is sent for the id, and no `complete`.
            task = self.operations.pop(_id(message), None)
            if task in self.live:
                task.cancel()
                self.live.discard(task)  # its place is free at once
            elif task is not None:
                self._let_finish(task)
        else:
            raise _Close(4400, f"unknown message type {kind!r}")

    async def initialise(self, payload: Any) -> None:
        if self.init_received:
            raise _Close(4429, "Too many initialisation requests")
        self.init_received = True
        if payload is not None and not isinstance(payload, dict):
            raise _Close(4400, "connection_init's payload must be an object")
        authenticator = self.owner.endpoint.authenticator
        try:
            self.principal = await authenticator.principal(_authorization(payload, self.websocket))
        except InvalidToken as error:
            raise _Close(4403, f"Forbidden: {error}") from None
        expires = self.principal.claims.get("exp")
        if isinstance(expires, int | float):
            self.expiry = asyncio.create_task(self._close_at(float(expires)))
        await self.send({"type": "connection_ack"})

    async def _close_at(self, expires: float) -> None:
        leeway = self.owner.endpoint.authenticator.leeway
        await asyncio.sleep(max(0.0, expires + leeway - time.time()))
        await self.stop(but=asyncio.current_task())
        await self.websocket.close(4403, "Forbidden: the token expired")

    async def subscribe(self, message: dict[str, Any]) -> None:
        if self.principal is None:
            raise _Close(4401, "Unauthorized")
        id_ = _id(message)
        if id_ in self.operations:
            raise _Close(4409, f"Subscriber for {id_} already exists")
        payload = message.get("payload")
        if not isinstance(payload, dict):
            raise _Close(4400, "subscribe needs a payload with the query")
        endpoint = self.owner.endpoint
        try:
            query, operation_name, variables = endpoint.request_params(payload)
        except ApiError as error:
            await self.send_errors(id_, [error.to_dict()])
            return
        if endpoint.rate_limiter is not None:
            client = self.websocket.client
            try:
                endpoint.rate_limiter.take(self.principal, client.host if client else None)
            except RateLimited as limited:
                await self.send_errors(id_, [limited.to_dict()])
                return
        prepared = endpoint.executor.prepare(query, operation_name)
        if prepared.errors:
            await self.send_errors(id_, prepared.errors)
            return
        if prepared.is_subscription:
            if len(self.live) >= self.owner.max_subscriptions:
                limit = self.owner.max_subscriptions
                too_many = LimitExceeded(f"at most {limit} subscriptions at once on a connection")
                await self.send_errors(id_, [too_many.to_dict()])
                return
            task = asyncio.create_task(_guarded(self._live(id_, prepared, variables), id_))
            self.live.add(task)
        else:
            task = asyncio.create_task(_guarded(self._once(id_, prepared, variables), id_))
        self.operations[id_] = task
        self.operations_started += 1

    async def _once(self, id_: str, prepared: Document, variables: dict[str, Any] | None) -> None:
        try:
            kind, value = await self._run(prepared, variables, live=False)
            if self.operations.get(id_) is not asyncio.current_task():
                return  # completed by the client meanwhile, or the socket closed
            if kind != "error":
                await self.send_next(id_, value)
                await self.send({"id": id_, "type": "complete"})
            else:
                await self.send_errors(id_, value)
        finally:
            self._forget(id_)

    async def _live(self, id_: str, prepared: Document, variables: dict[str, Any] | None) -> None:
        principal = self.principal
        assert principal is not None
        # Shared with every subscription of the same operation and variables by the same caller.
        key = answer_key(prepared.source, variables, principal)
        listener = Listener(partial(self.send_next, id_), partial(self.send_errors, id_))
        SUBSCRIPTIONS.inc()
        try:
            await self.owner.live_queries.listen(
                key,
                partial(self._run, prepared, variables, live=True),
                listener,
                stream=self.owner.endpoint.executor.is_stream(prepared),
            )
        finally:
            SUBSCRIPTIONS.dec()
            self._forget(id_)

    def _forget(self, id_: str) -> None:
        # Only this task's own entry: the client may have completed the id and reused it.
        task = asyncio.current_task()
        self.live.discard(task)  # type: ignore[arg-type]
        if self.operations.get(id_) is task:
            del self.operations[id_]

    async def _run(
        self,
        prepared: Document,
        variables: dict[str, Any] | None,
        *,
        live: bool,
        after: str | None = None,
    ) -> Outcome:
        """One run as this socket's caller (see GraphQLEndpoint.outcome)."""
        assert self.principal is not None
        state = self.websocket.app.state
        return await self.owner.endpoint.outcome(
            state, self.principal, prepared, variables, live=live, after=after
        )

    async def send(self, message: dict[str, Any]) -> None:
        await self._send_text(orjson.dumps(message).decode())

    async def send_next(self, id_: str, body: bytes) -> None:
        # The answer is already JSON: spliced in, not parsed and dumped again.
        head = b'{"id":' + orjson.dumps(id_) + b',"type":"next","payload":'
        await self._send_text((head + body + b"}").decode())

    async def send_errors(self, id_: str, errors: list[dict[str, Any]]) -> None:
        await self.send({"id": id_, "type": "error", "payload": errors})

    async def _send_text(self, text: str) -> None:
        async with self.sending:
            await self.websocket.send_text(text)

    def _let_finish(self, task: asyncio.Task[None]) -> None:
        """A query or mutation nobody waits for any more runs to its end, its answer dropped
        (see _once): a write is not cut off half way."""
        self.owner.unanswered.add(task)  # held until done, as asyncio asks
        task.add_done_callback(self.owner.unanswered.discard)

    async def stop(self, but: asyncio.Task[Any] | None = None) -> None:
        """Ends the socket's subscriptions and waits for them (their metrics settle). Queries
        and mutations under way finish on their own, unanswered: a write is never cut off."""
        for task in self.operations.values():
            if task not in self.live:
                self._let_finish(task)
        self.operations.clear()
        tasks = [*self.live, *([self.expiry] if self.expiry else [])]
        tasks = [t for t in tasks if t is not but and not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _guarded(work: Coroutine[Any, Any, None], id_: str) -> None:
    """An operation's task: a socket that closed under it ends it quietly; a bug is logged."""
    try:
        await work
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass  # the socket is gone: nobody to tell
    except Exception:
        log.exception("unexpected error in the WebSocket operation %s", id_)


def _message(text: str) -> dict[str, Any]:
    try:
        message = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise _Close(4400, "a message is not valid JSON") from None
    if not isinstance(message, dict):
        raise _Close(4400, "a message must be a JSON object")
    return message


def _id(message: dict[str, Any]) -> str:
    id_ = message.get("id")
    if not isinstance(id_, str) or not id_:
        raise _Close(4400, f"{message.get('type')} needs an `id` (a string)")
    return id_


def _authorization(payload: dict[str, Any] | None, websocket: WebSocket) -> str | None:
    """The token of connection_init's payload, else of the handshake's header."""
    for source in (payload or {}, (payload or {}).get("headers")):
        if isinstance(source, dict):
            for key in ("Authorization", "authorization"):
                value = source.get(key)
                if isinstance(value, str) and value:
                    return value
    return websocket.headers.get("authorization")
