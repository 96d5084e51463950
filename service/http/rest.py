"""REST endpoints over saved GraphQL operations, as Hasura's RESTified endpoints.

`REST_ENDPOINTS_FILE` maps routes to operations: `{"GET /posts/:id": "query Post($id: UUID!)
{ post(id: $id) { title } }", "POST /posts": "create_post.graphql"}` (a value ending in
`.graphql` names a file beside the map). Each is served under `/rest`: `GET /rest/posts/<id>`
runs the operation with `id` from the path. Variables come from the path's `:name` segments,
the query string (`?first=10&tags=a&tags=b`: text read as the variable's declared type) and,
for other methods than GET, a JSON object body; one variable from one place only.

The operation runs as through `/graphql` (the caller's token, Row Level Security, limits,
`@cached`), and the answer is its GraphQL response with a status a REST client can act on: the
first error's code as HTTP's (400, 401, 403, 404, 409), and 404 when the operation's one root
field is null (the row does not exist or is not the caller's to see). Every map is checked at
start: a route that cannot work stops the service with a line saying why.
`GET /rest/openapi.json` describes the endpoints (OpenAPI 3.1) for REST tooling.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote

import orjson
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
    OperationType,
)
from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from service.auth import InvalidToken
from service.errors import StartupError, load_json_file
from service.graphql.errors import ApiError, BadUserInput, Code
from service.graphql.execute import Document, Executor
from service.http.graphql import (
    JSON,
    GraphQLEndpoint,
    OperationFailed,
    Reply,
    RequestRefused,
    error_reply,
    not_ready,
    unauthenticated,
)
from service.http.observe import CLIENT_CLOSED

PREFIX = "/rest"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
_PARAMETER = re.compile(r"^:([_A-Za-z][_0-9A-Za-z]*)$")
_SEGMENT = re.compile(r"^[-._~0-9A-Za-z]+$")  # a literal segment: unreserved characters only
# An error's code as the HTTP status of a REST answer.
_STATUS: dict[str, int] = {
    Code.BAD_USER_INPUT: 400,
    Code.UNAUTHENTICATED: 401,
    Code.FORBIDDEN: 403,
    Code.NOT_FOUND: 404,
    Code.CONFLICT: 409,
    Code.LIMIT_EXCEEDED: 400,
    Code.INTERNAL: 500,
}
# The scalars a URL's text is converted to (the rest stay text, as GraphQL reads them), by
# their OpenAPI types.
_OPENAPI_TYPES = {"Int": "integer", "Float": "number", "Boolean": "boolean"}


class _AnyPath(Convertor[str]):
    """The rest of a path, whatever it holds: Starlette's `path` stops at a new line, which
    a client may send (%0A) in a segment."""

    regex = r"[\s\S]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("any_path", _AnyPath())
ROUTE = PREFIX + "/{path:any_path}"  # every request under /rest, to RestEndpoints.handle


@dataclass(frozen=True)
class RestRoute:
    method: str
    pattern: str  # as written in the map: /posts/:id
    segments: tuple[str, ...]  # literal segments, and `:name` for a path variable
    prepared: Document

    @property
    def path_variables(self) -> tuple[str, ...]:
        return tuple(s[1:] for s in self.segments if s.startswith(":"))

    def match(self, segments: list[str]) -> dict[str, str] | None:
        """The path variables when `segments` (decoded) are this route's path."""
        if len(segments) != len(self.segments):
            return None
        found: dict[str, str] = {}
        for mine, given in zip(self.segments, segments, strict=True):
            if mine.startswith(":"):
                if not given:
                    return None
                found[mine[1:]] = given
            elif mine != given:
                return None
        return found

    @property
    def specificity(self) -> tuple[bool, ...]:
        """Literal segments first: `/posts/latest` wins over `/posts/:id`."""
        return tuple(not s.startswith(":") for s in self.segments)


def load_rest_routes(path: Path, executor: Executor) -> list[RestRoute]:
    """The routes of a REST_ENDPOINTS_FILE, each checked against the schema; StartupError
    (one line) naming what cannot work."""
    where = f"REST_ENDPOINTS_FILE {path}"
    content = load_json_file("REST_ENDPOINTS_FILE", path)
    if not isinstance(content, dict):
        raise StartupError(f'{where}: expected a JSON object of "METHOD /path" -> operation')
    routes: list[RestRoute] = []
    seen: dict[tuple[str, tuple[str, ...]], str] = {}
    for key, value in content.items():
        route = _route(f"{where}: {key!r}", key, value, path.parent, executor)
        # /posts/:id and /posts/:slug are the same route to a request
        shape = (route.method, tuple(":" if s.startswith(":") else s for s in route.segments))
        if shape in seen:
            raise StartupError(f"{where}: {key!r} is the same route as {seen[shape]!r}")
        seen[shape] = key
        routes.append(route)
    # the most specific route first where several match a request
    routes.sort(key=lambda r: r.specificity, reverse=True)
    return routes


def _route(where: str, key: str, value: Any, folder: Path, executor: Executor) -> RestRoute:
    method, _, pattern = key.strip().partition(" ")
    pattern = pattern.strip()
    if method not in METHODS or not pattern.startswith("/"):
        raise StartupError(f"{where}: expected METHOD /path, METHOD one of {', '.join(METHODS)}")
    segments = tuple(pattern.strip("/").split("/")) if pattern.strip("/") else ()
    for segment in segments:
        if not (_PARAMETER.match(segment) or _SEGMENT.match(segment)):
            raise StartupError(f"{where}: the segment {segment!r} is neither a word nor :variable")
    if segments[:1] == ("openapi.json",):
        raise StartupError(f"{where}: {PREFIX}/openapi.json is the endpoints' description")
    document = _document(where, value, folder)
    prepared = executor.prepare(document, None)
    if prepared.errors or prepared.operation is None:
        first = prepared.errors[0]["message"] if prepared.errors else "no operation"
        raise StartupError(f"{where}: the operation does not validate: {first}")
    kind = prepared.operation.operation
    if kind is OperationType.SUBSCRIPTION:
        raise StartupError(f"{where}: subscriptions are served at /graphql, not as REST")
    if kind is OperationType.MUTATION and method == "GET":
        raise StartupError(f"{where}: a mutation needs another method than GET")
    route = RestRoute(method, pattern, segments, prepared)
    undeclared = [v for v in route.path_variables if v not in prepared.variable_types]
    if undeclared:
        raise StartupError(f"{where}: the operation declares no variable ${undeclared[0]}")
    return route


def _document(where: str, value: Any, folder: Path) -> str:
    if not isinstance(value, str) or not value.strip():
        raise StartupError(f"{where}: the operation must be a GraphQL document or a .graphql file")
    if not value.endswith(".graphql"):
        return value
    try:
        return (folder / value).read_text(encoding="utf-8")
    except OSError as error:
        raise StartupError(f"{where}: {value}: {error.strerror}") from None


class RestEndpoints:
    """The `/rest` routes: each request matched to its route, its variables gathered and
    read, and the operation run by the GraphQL endpoint as any request to `/graphql` is."""

    def __init__(self, endpoint: GraphQLEndpoint, routes: list[RestRoute]) -> None:
        self.endpoint = endpoint
        self.routes = routes
        self.description = orjson.dumps(openapi(routes))

    async def handle(self, request: Request) -> Response:
        scope = request.scope
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        path = raw_path.decode("latin-1").split("?", 1)[0]
        # decoded segment by segment: an id holding %2F stays one segment
        rest = path[path.index(PREFIX) + len(PREFIX) :].strip("/")
        try:
            segments = [unquote(s, errors="strict") for s in rest.split("/")] if rest else []
        except UnicodeDecodeError:
            return _refused(400, BadUserInput("the path is not valid UTF-8"))
        if segments == ["openapi.json"] and request.method == "GET":
            return Response(self.description, media_type=JSON)
        matched = [(r, found) for r in self.routes if (found := r.match(segments)) is not None]
        if not matched:
            return _refused(404, ApiError(f"no endpoint {path}", code=Code.NOT_FOUND))
        for route, found in matched:
            if route.method == request.method or (route.method, request.method) == ("GET", "HEAD"):
                reply = await self._answer(request, route, found)
                return reply.response()
        allowed = sorted({r.method for r, _ in matched})
        refused = _refused(405, BadUserInput(f"{path} answers {', '.join(allowed)}"))
        refused.headers["Allow"] = ", ".join(allowed)
        return refused

    async def _answer(self, request: Request, route: RestRoute, found: dict[str, str]) -> Reply:
        endpoint = self.endpoint
        scope = request.scope
        state = scope["app"].state
        if state.pools is None:
            return not_ready(state, JSON)
        try:
            principal = await endpoint.authenticator.principal(request.headers.get("authorization"))
        except InvalidToken as error:
            return unauthenticated(error, JSON)
        scope["principal_role"] = principal.role
        limited = endpoint.over_limit(principal, scope, JSON)
        if limited is not None:
            return limited
        prepared = route.prepared
        scope["graphql_operation"] = prepared.operation_label
        try:
            variables = await self._variables(request, route, found)
        except RequestRefused as refused:
            scope["graphql_outcome"] = "request_error"
            return refused.reply(JSON)
        except ApiError as error:
            scope["graphql_outcome"] = "request_error"
            return error_reply(error, 400, JSON)
        except ClientDisconnect:
            return Reply(CLIENT_CLOSED, b"", JSON)
        try:
            read_after = endpoint.read_after(state.pools, request.headers.get("cookie"))
            result, freshness = await endpoint.run_request(
                state.pools, principal, prepared, variables, None, read_after
            )
        except OperationFailed as failed:
            scope["graphql_outcome"] = failed.outcome
            return failed.reply(JSON)
        scope["graphql_outcome"] = result.outcome
        reply = Reply(_status_of(result.body), result.body, JSON, freshness)
        reply = endpoint.with_written(reply, result.written, request.scope)
        return await endpoint.finished(reply, state, request.headers.get("accept-encoding", ""))

    async def _variables(
        self, request: Request, route: RestRoute, found: dict[str, str]
    ) -> dict[str, Any]:
        """The operation's variables from the path, the query string and a JSON body."""
        types = route.prepared.variable_types
        variables: dict[str, Any] = {}
        texts: dict[str, list[str]] = {}
        for name, value in found.items():
            texts[name] = [value]
        for name, value in _query_parameters(request.scope["query_string"]):
            if name not in types:
                raise BadUserInput(
                    f"unknown parameter {name!r}: this endpoint takes {_names(types)}"
                )
            if name in found:
                raise BadUserInput(f"{name!r} is given in the path")
            texts.setdefault(name, []).append(value)
        for name, values in texts.items():
            variables[name] = _from_text(name, values, types[name])
        if request.method not in ("GET", "HEAD"):
            body = await self._body(request)
            if body is not None:
                for name, value in body.items():
                    if name not in types:
                        raise BadUserInput(
                            f"unknown variable {name!r}: this endpoint takes {_names(types)}"
                        )
                    if name in variables:
                        raise BadUserInput(f"{name!r} is given twice (body and URL)")
                    variables[name] = value
        return variables

    async def _body(self, request: Request) -> dict[str, Any] | None:
        """The variables a JSON body holds (None for an empty body)."""
        body = await self.endpoint.read_body(request.receive, request.headers.get("content-length"))
        if not body.strip():
            return None
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type not in ("application/json", ""):
            send_json = "send the variables as a JSON object (Content-Type: application/json)"
            raise RequestRefused(415, BadUserInput(send_json))
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise BadUserInput("the body is not valid JSON") from None
        if not isinstance(payload, dict):
            raise BadUserInput("the body must be a JSON object of variables")
        return payload


def _names(types: dict[str, Any]) -> str:
    return ", ".join(types) if types else "no parameters"


def _query_parameters(query_string: bytes) -> list[tuple[str, str]]:
    """The query string's parameters, decoded as UTF-8 or refused (never a replacement
    character in place of what the client sent)."""
    try:  # (a URL is ASCII: anything else arrives percent-encoded)
        return parse_qsl(query_string.decode("latin-1"), keep_blank_values=True, errors="strict")
    except UnicodeError:
        raise BadUserInput("the query string is not valid UTF-8") from None


def _from_text(name: str, values: list[str], type_: GraphQLInputType) -> Any:
    """A variable's value from URL text, read as its declared type: a list from a repeated
    parameter, numbers and booleans from their text, input objects and JSON as JSON."""
    nullable = type_.of_type if isinstance(type_, GraphQLNonNull) else type_
    if isinstance(nullable, GraphQLList):
        return [_scalar_from_text(name, value, nullable.of_type) for value in values]
    if len(values) > 1:
        raise BadUserInput(f"{name!r} is given more than once, and is not a list")
    return _scalar_from_text(name, values[0], type_)


def _scalar_from_text(name: str, text: str, type_: Any) -> Any:
    named = type_.of_type if isinstance(type_, GraphQLNonNull) else type_
    if isinstance(named, GraphQLInputObjectType | GraphQLList) or (
        isinstance(named, GraphQLScalarType) and named.name == "JSON"
    ):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            raise BadUserInput(f"{name!r} must be JSON") from None
    if isinstance(named, GraphQLEnumType) or named.name not in _OPENAPI_TYPES:
        return text  # GraphQL's own coercion checks it (UUIDs, dates, enum values)
    if named.name == "Boolean":
        if text in ("", "true"):  # `?published` alone is true
            return True
        if text == "false":
            return False
        raise BadUserInput(f"{name!r} must be true or false")
    try:
        return int(text) if named.name == "Int" else float(text)
    except ValueError:
        raise BadUserInput(f"{name!r} must be a number ({named.name})") from None


def _status_of(body: bytes) -> int:
    """The HTTP status of an operation's answer: its first error's, 404 for an operation of
    one root field that found nothing, else 200."""
    answer = orjson.loads(body)
    errors = answer.get("errors")
    if errors:
        code = (errors[0].get("extensions") or {}).get("code")
        return _STATUS.get(str(code), 400)
    data = answer.get("data") or {}
    if len(data) == 1 and next(iter(data.values())) is None:
        return 404
    return 200


def _refused(status: int, error: ApiError) -> Response:
    return error_reply(error, status, JSON).response()


def openapi(routes: list[RestRoute]) -> dict[str, Any]:
    """An OpenAPI 3.1 description of the endpoints: paths, parameters and bodies by the
    operations' declared variables."""
    paths: dict[str, dict[str, Any]] = {}
    for route in sorted(routes, key=lambda r: (r.pattern, r.method)):
        template = (
            PREFIX
            + "/"
            + "/".join("{" + s[1:] + "}" if s.startswith(":") else s for s in route.segments)
        )
        prepared = route.prepared
        types = prepared.variable_types
        in_path = set(route.path_variables)
        parameters: list[dict[str, Any]] = [
            {"name": n, "in": "path", "required": True, "schema": _schema(types[n])}
            for n in route.path_variables
        ]
        rest = {n: t for n, t in types.items() if n not in in_path}
        operation: dict[str, Any] = {
            "operationId": prepared.operation_label,
            "responses": {
                "200": {"description": "The GraphQL response: `data`"},
                "404": {"description": "Nothing found, or not the caller's to see"},
                "4XX": {"description": "The GraphQL response's `errors`"},
            },
        }
        if route.method == "GET":
            parameters += [
                {
                    "name": n,
                    "in": "query",
                    "required": isinstance(t, GraphQLNonNull),
                    "schema": _schema(t),
                }
                for n, t in rest.items()
            ]
        elif rest:
            operation["requestBody"] = {
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {n: _schema(t) for n, t in rest.items()},
                            "required": [
                                n for n, t in rest.items() if isinstance(t, GraphQLNonNull)
                            ],
                        }
                    }
                }
            }
        if parameters:
            operation["parameters"] = parameters
        paths.setdefault(template, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "REST endpoints", "version": "1"},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{}, {"bearer": []}],
    }


def _schema(type_: Any) -> dict[str, Any]:
    named = type_.of_type if isinstance(type_, GraphQLNonNull) else type_
    if isinstance(named, GraphQLList):
        return {"type": "array", "items": _schema(named.of_type)}
    if isinstance(named, GraphQLEnumType):
        return {"type": "string", "enum": list(named.values)}
    if isinstance(named, GraphQLInputObjectType) or named.name == "JSON":
        return {"description": f"{named.name} as JSON"}
    schema: dict[str, Any] = {"type": _OPENAPI_TYPES.get(named.name, "string")}
    if named.name == "UUID":
        schema["format"] = "uuid"
    elif named.name == "DateTime":
        schema["format"] = "date-time"
    elif named.name == "Date":
        schema["format"] = "date"
    return schema
