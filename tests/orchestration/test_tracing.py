"""OpenTelemetry: with an OTLP endpoint set, each request is a trace (or continues its caller's)
of three spans, sent to a real OTLP/HTTP receiver here, decoded with the OTLP protobufs."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from service.db.url import DatabaseURL
from service.settings import Settings
from service.tracing import Tracing
from tests.support import RunningService

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


class Receiver:
    """An OTLP/HTTP trace receiver: every span posted to /v1/traces, with its resource."""

    def __init__(self) -> None:
        self.spans: list[tuple[dict[str, Any], Span]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.path == "/v1/traces":
                    request = ExportTraceServiceRequest.FromString(body)
                    for resource_spans in request.resource_spans:
                        resource = _attributes(resource_spans.resource.attributes)
                        for scope_spans in resource_spans.scope_spans:
                            receiver.spans += [(resource, s) for s in scope_spans.spans]
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def named(self, name: str) -> Span:
        found = [s for _, s in self.spans if s.name == name]
        assert len(found) == 1, [s.name for _, s in self.spans]
        return found[0]


def _attributes(pairs: Any) -> dict[str, Any]:
    values = {}
    for pair in pairs:
        kind = pair.value.WhichOneof("value")
        values[pair.key] = getattr(pair.value, kind) if kind else None
    return values


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    receiver = Receiver()
    receiver.thread.start()
    # The standard variables, read by our settings and by the OTLP exporter alike.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")  # ms: send soon
    yield receiver
    receiver.server.shutdown()


async def test_a_request_is_a_trace_of_server_operation_and_database_spans(
    receiver: Receiver, database: DatabaseURL, capsys: pytest.CaptureFixture[str]
):
    traceparent = f"00-{TRACE}-{CALLER_SPAN}-01"
    async with RunningService(database, log_format="json") as http:
        response = await http.post(
            "/graphql",
            json={"query": "query Count { posts { totalCount } }"},
            headers={"traceparent": traceparent, "x-request-id": "req-42"},
        )
        assert response.status_code == 200
    # leaving the service sent the spans still buffered

    server = receiver.named("POST /graphql")
    operation = receiver.named("query Count")
    statement = receiver.named("postgresql")
    # one trace, continued from the caller's
    assert {s.trace_id.hex() for s in (server, operation, statement)} == {TRACE}
    assert server.parent_span_id.hex() == CALLER_SPAN
    assert operation.parent_span_id == server.span_id
    assert statement.parent_span_id == operation.span_id
    assert server.kind == Span.SPAN_KIND_SERVER and statement.kind == Span.SPAN_KIND_CLIENT

    assert _attributes(server.attributes) == {
        "http.request.method": "POST",
        "url.path": "/graphql",
        "http.route": "/graphql",
        "http.response.status_code": 200,
        "service.request_id": "req-42",
    }
    assert _attributes(operation.attributes) == {
        "graphql.operation.type": "query",
        "graphql.operation.name": "Count",
        "service.graphql.outcome": "ok",
    }
    assert _attributes(statement.attributes)["db.system.name"] == "postgresql"
    resource = next(r for r, s in receiver.spans if s.name == "POST /graphql")
    assert resource["service.name"] == "service"

    # the request's log line names its trace
    lines = [orjson.loads(x) for x in capsys.readouterr().err.splitlines() if x.startswith("{")]
    [line] = [x for x in lines if x["logger"] == "service.request" and x.get("path") == "/graphql"]
    assert line["trace_id"] == TRACE and line["request_id"] == "req-42"


async def test_without_a_caller_trace_each_request_starts_its_own(
    receiver: Receiver, database: DatabaseURL
):
    async with RunningService(database) as http:
        for _ in range(2):
            await http.post("/graphql", json={"query": "{ posts { totalCount } }"})
        await http.get("/livez")
    servers = [s for _, s in receiver.spans if s.name == "POST /graphql"]
    assert len(servers) == 2
    assert servers[0].trace_id != servers[1].trace_id
    assert all(not s.parent_span_id for s in servers)
    operations = [s for _, s in receiver.spans if s.name == "query anonymous"]
    assert len(operations) == 2


def test_tracing_is_off_without_an_endpoint():
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.otel_exporter_otlp_endpoint is None
    assert Tracing.from_settings(settings) is None
