"""GraphQL over Server-Sent Events: `/graphql` with `Accept: text/event-stream`.

The graphql-sse protocol's "distinct connections mode", as the graphql-sse client, urql and
Relay speak it: each request is one stream. A subscription (a live query, live.py) sends a
`next` event with each new answer until the client closes the stream; a query or mutation
sends one `next` and `complete`. What refuses the operation after the caller is known
(validation, variables, limits) comes as a `next` event with `errors`, then `complete`, on a
200 stream, as the protocol asks; a bad token is a 401 and an unready service a 503, as for
any request.

A stream ends without `complete`, so that the client reconnects (to another replica), when
the caller's token expires or the service shuts down. A comment line every
`SSE_KEEPALIVE_SECONDS` keeps proxies from closing a quiet stream.
"""

from __future__ import annotations

import asyncio
import time
from functools import partial
from typing import Any

import orjson
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from service.auth import InvalidToken, Principal
from service.graphql.errors import BadUserInput
from service.http.graphql import (
    CLIENT_CLOSED,
    JSON,
    GraphQLEndpoint,
    Reply,
    RequestRefused,
    not_ready,
    unauthenticated,
)
from service.http.live import Listener, LiveQueries, answer_key
from service.http.metrics import SUBSCRIPTIONS
from service.http.negotiate import EVENT_STREAM


class EventStreams:
    """The event streams of one app: served by the GraphQL endpoint when asked for."""

    def __init__(
        self,
        endpoint: GraphQLEndpoint,
        live_queries: LiveQueries,
        *,
        keepalive_seconds: float = 15.0,
    ) -> None:
        self.endpoint = endpoint
        self.live_queries = live_queries  # shared with WebSockets: equal polls are one
        self.keepalive_seconds = keepalive_seconds

    async def serve(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[bytes, str]
    ) -> None:
        endpoint = self.endpoint
        state = scope["app"].state
        if state.pools is None:
            await not_ready(state, JSON).send(send)
            return
        try:
            principal = await endpoint.authenticator.principal(headers.get(b"authorization"))
        except InvalidToken as error:
            await unauthenticated(error, JSON).send(send)
            return
        scope["principal_role"] = principal.role
        limited = endpoint.over_limit(principal, scope, JSON)
        if limited is not None:
            await limited.send(send)
            return
        try:
            params = await endpoint.read_params(scope, receive, headers)
        except RequestRefused as refused:
            await _refuse(scope, send, [refused.error.to_dict()])
            return
        except ClientDisconnect:
            await Reply(CLIENT_CLOSED, b"", EVENT_STREAM).send(send)
            return
        if isinstance(params, list):
            batch = BadUserInput("a batch is answered as JSON: send one operation per stream")
            await _refuse(scope, send, [batch.to_dict()])
            return
        query, operation_name, variables = params
        prepared = endpoint.executor.prepare(query, operation_name)
        scope["graphql_operation"] = prepared.operation_label
        if prepared.errors:
            await _refuse(scope, send, prepared.errors)
            return
        if prepared.is_mutation and scope["method"] != "POST":
            await _refuse(scope, send, [BadUserInput("mutations need POST").to_dict()])
            return
        scope["graphql_outcome"] = "ok"
        stream = _Stream(send)
        await stream.start()
        run = partial(endpoint.outcome, state, principal, prepared, variables)
        try:
            if not prepared.is_subscription:
                kind, value = await run(live=False)
                await (stream.errors(value) if kind == "error" else stream.next(value))
                await stream.event(b"complete", b"")
                return
            await self._live(stream, scope, receive, principal, prepared, variables, run)
        finally:
            await stream.end()

    async def _live(
        self,
        stream: _Stream,
        scope: Scope,
        receive: Receive,
        principal: Principal,
        prepared: Any,
        variables: dict[str, Any] | None,
        run: Any,
    ) -> None:
        """Answers as they change, until the client leaves, the operation fails for good, the
        token expires or the service stops."""
        listener = Listener(stream.next, stream.errors)
        watchers = [
            asyncio.create_task(_until_disconnected(receive)),
            asyncio.create_task(self._keep_alive(stream)),
            asyncio.create_task(scope["app"].state.stopping.wait()),
        ]
        expires = principal.claims.get("exp")
        if isinstance(expires, int | float):
            leeway = self.endpoint.authenticator.leeway
            watchers.append(asyncio.create_task(_until(float(expires) + leeway)))
        for watcher in watchers:
            watcher.add_done_callback(lambda _: listener.end())
        SUBSCRIPTIONS.inc()
        try:
            key = answer_key(prepared.source, variables, principal)
            own = self.endpoint.executor.is_stream(prepared)  # a stream reads on alone
            await self.live_queries.listen(key, partial(run, live=True), listener, stream=own)
            if stream.failed:  # the operation cannot run: said, and done
                await stream.event(b"complete", b"")
        finally:
            SUBSCRIPTIONS.dec()
            for watcher in watchers:
                watcher.cancel()

    async def _keep_alive(self, stream: _Stream) -> None:
        while True:
            quiet = time.monotonic() - stream.last_sent
            if quiet >= self.keepalive_seconds:
                await stream.send_bytes(b": keep-alive\n\n")
                quiet = 0.0
            await asyncio.sleep(self.keepalive_seconds - quiet)


class _Stream:
    """One response's events, sent one at a time (a poll and the keep-alive share it)."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self._sending = asyncio.Lock()
        self.started = False
        self.failed = False  # an `errors` event that ends the operation was sent
        self.last_sent = time.monotonic()

    async def start(self) -> None:
        headers = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-cache"),
            (b"x-accel-buffering", b"no"),  # nginx: pass each event on at once
        ]
        await self._send({"type": "http.response.start", "status": 200, "headers": headers})
        self.started = True

    async def next(self, body: bytes) -> None:
        await self.event(b"next", body)

    async def errors(self, errors: list[dict[str, Any]]) -> None:
        self.failed = True
        await self.event(b"next", orjson.dumps({"errors": errors}))

    async def event(self, name: bytes, data: bytes) -> None:
        # PostgreSQL's JSON may hold line breaks between values: each line its own `data:`
        lines = b"".join(b"data: " + line + b"\n" for line in data.split(b"\n"))
        await self.send_bytes(b"event: " + name + b"\n" + lines + b"\n")

    async def send_bytes(self, chunk: bytes) -> None:
        async with self._sending:
            await self._send({"type": "http.response.body", "body": chunk, "more_body": True})
            self.last_sent = time.monotonic()

    async def end(self) -> None:
        if self.started:
            async with self._sending:
                await self._send({"type": "http.response.body", "body": b"", "more_body": False})
            self.started = False


async def _refuse(scope: Scope, send: Send, errors: list[dict[str, Any]]) -> None:
    """An operation that cannot run: its errors as the stream's one answer."""
    scope["graphql_outcome"] = "request_error"
    stream = _Stream(send)
    await stream.start()
    await stream.errors(errors)
    await stream.event(b"complete", b"")
    await stream.end()


async def _until_disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _until(deadline: float) -> None:
    await asyncio.sleep(max(0.0, deadline - time.time()))
