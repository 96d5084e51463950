"""OpenTelemetry traces, sent over OTLP/HTTP when an endpoint is configured.

`OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) turns tracing on; the
exporter reads them and the other standard `OTEL_*` variables (headers, timeout, sampler,
batch delays) itself, as every OpenTelemetry SDK does. Each request is then a trace, or part of
its caller's when it carries a W3C `traceparent`:

    POST /graphql               server span: method, route, status, request id
      query Count               the GraphQL operation: its name and type, its outcome
        postgresql              the connection's turn and the one statement (a client span)

Without an endpoint nothing of OpenTelemetry is imported; a request pays two empty `with`s.
Live subscriptions' polls are not traced: a trace a second per subscriber would drown the rest.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version
from typing import TYPE_CHECKING, Any

from starlette.types import Scope

from service.logs import trace_id
from service.settings import Settings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer

log = logging.getLogger("service.tracing")

# The request headers a trace continues from (W3C Trace Context and Baggage).
_PROPAGATED = (b"traceparent", b"tracestate", b"baggage")


class Tracing:
    def __init__(self, provider: TracerProvider, database: str | None) -> None:
        from opentelemetry import context, propagate, trace

        self.provider = provider
        self.tracer: Tracer = provider.get_tracer("service", version("service"))
        self.database = database
        self._context = context
        self._propagate = propagate
        self._trace = trace

    @classmethod
    def from_settings(cls, settings: Settings, database: str | None = None) -> Tracing | None:
        if not (
            settings.otel_exporter_otlp_endpoint or settings.otel_exporter_otlp_traces_endpoint
        ):
            return None
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        resource = Resource.create(
            {"service.name": settings.otel_service_name, "service.version": version("service")}
        )
        # Not the global provider: a process may build several apps (tests), each its own.
        provider = TracerProvider(resource=resource)
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        log.info("tracing: OpenTelemetry spans go to the OTLP endpoint")
        return cls(provider, database)

    def shutdown(self) -> None:
        """Send what is still buffered; at the end of the process's serving."""
        self.provider.shutdown()

    # HTTP: the server span, opened and closed by the request observer

    def start_request(self, scope: Scope, request_id: str) -> tuple[Span, Any, Any]:
        carrier = {
            name.decode(): value.decode("latin-1")
            for name, value in scope["headers"]
            if name in _PROPAGATED
        }
        parent = self._propagate.extract(carrier)
        method = scope["method"]
        span = self.tracer.start_span(
            f"{method} {scope['path']}",
            context=parent,
            kind=self._trace.SpanKind.SERVER,
            attributes={
                "http.request.method": method,
                "url.path": scope["path"],
                "service.request_id": request_id,
            },
        )
        token = self._context.attach(self._trace.set_span_in_context(span, parent))
        # every log line of the request names its trace
        logged = trace_id.set(format(span.get_span_context().trace_id, "032x"))
        return span, token, logged

    def end_request(self, started: tuple[Span, Any, Any], scope: Scope, status: int) -> None:
        span, token, logged = started
        span.set_attribute("http.response.status_code", status)
        if scope["path"] == "/graphql":
            span.set_attribute("http.route", "/graphql")
        if status >= 500 and status != 503:  # 503: not ready or shedding, said so to the client
            span.set_status(self._trace.StatusCode.ERROR)
        span.end()
        self._context.detach(token)
        trace_id.reset(logged)

    # GraphQL and the database: spans under the current one

    @contextmanager
    def operation(self, kind: str, name: str) -> Iterator[Span]:
        with self.tracer.start_as_current_span(
            f"{kind} {name}",
            attributes={"graphql.operation.type": kind, "graphql.operation.name": name},
        ) as span:
            yield span

    @contextmanager
    def statement(self) -> Iterator[None]:
        attributes = {"db.system.name": "postgresql"}
        if self.database:
            attributes["db.namespace"] = self.database
        with self.tracer.start_as_current_span(
            "postgresql", kind=self._trace.SpanKind.CLIENT, attributes=attributes
        ):
            yield
