"""REST endpoints over saved operations (REST_ENDPOINTS_FILE), as Hasura's RESTified ones.

A map of `"METHOD /path/:variable"` to GraphQL operations is served under `/rest`: variables
from the path, the query string (read as their declared types) and a JSON body; the caller's
token and Row Level Security as on `/graphql`; HTTP statuses a REST client acts on (the first
error's code, 404 when the one root field is null). Maps that cannot work stop the start.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate

from service.app import create_executor
from service.db.url import DatabaseURL
from service.errors import StartupError
from service.http.rest import load_rest_routes
from tests.graphql.conftest import ALICE, BOB, add_drafts, post_id
from tests.graphql.test_fuzz import FUZZ
from tests.support import RunningService, run_service, settings_for, token_for

ENDPOINTS = {
    "GET /posts": """query Posts($first: Int, $after: String, $published: Boolean)
      @cached(ttl: 30) {
        posts(first: $first, after: $after, filter: {published: {eq: $published}},
              orderBy: {createdAt: ASC}) { nodes { title } pageInfo { endCursor } } }""",
    "GET /posts/:id": "query Post($id: UUID!) { post(id: $id) { title author { id } } }",
    "GET /posts/latest": "query Latest { posts(first: 1, orderBy: {title: DESC}) "
    "{ nodes { title } } }",
    "GET /picked": """query Picked($ids: [UUID!]!) {
        posts(filter: {id: {in: $ids}}, orderBy: {createdAt: ASC}) { nodes { title } } }""",
    "POST /posts/:postId/comments": """mutation Comment($postId: UUID!, $body: String!) {
        createComment(input: {postId: $postId, body: $body}) { body author { id } } }""",
    "DELETE /posts/:id": "delete_post.graphql",
}


def write_endpoints(folder: Path, endpoints: dict[str, Any]) -> Path:
    (folder / "delete_post.graphql").write_text(
        "mutation DeletePost($id: UUID!) { deletePost(id: $id) { id } }\n"
    )
    path = folder / "rest.json"
    path.write_bytes(orjson.dumps(endpoints))
    return path


@pytest.fixture
async def rest(seeded: DatabaseURL, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    path = write_endpoints(tmp_path, ENDPOINTS)
    async with RunningService(seeded, rest_endpoints_file=path) as http:
        yield http


def as_user(user: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token_for(user)}"}


def code_of(response: httpx.Response) -> str:
    return str(response.json()["errors"][0]["extensions"]["code"])


async def post_runs(http: httpx.AsyncClient) -> float:
    """How many times the operation named Post ran, by /metrics."""
    series = 'service_graphql_requests_total{operation="Post",outcome="ok"} '
    for line in (await http.get("/metrics")).text.splitlines():
        if line.startswith(series):
            return float(line.removeprefix(series))
    return 0.0


async def test_reads_take_variables_from_the_path_and_the_query_string(rest, seeded) -> None:
    runs_before = await post_runs(rest)
    page = await rest.get("/rest/posts", params={"first": "2"})
    assert page.status_code == 200, page.text
    titles = [n["title"] for n in page.json()["data"]["posts"]["nodes"]]
    assert titles == ["Post 01", "Post 02"]
    # the operation's @cached holds: an anonymous answer a CDN may keep
    assert page.headers["cache-control"] == "public, max-age=30"
    after = page.json()["data"]["posts"]["pageInfo"]["endCursor"]
    following = await rest.get("/rest/posts", params={"first": "2", "after": after})
    assert [n["title"] for n in following.json()["data"]["posts"]["nodes"]] == [
        "Post 03",
        "Post 04",
    ]
    # a Boolean from its text, and alone as a flag
    none = await rest.get("/rest/posts", params={"published": "false"})
    assert none.json()["data"]["posts"]["nodes"] == []
    flag = await rest.get("/rest/posts?published&first=1")
    assert [n["title"] for n in flag.json()["data"]["posts"]["nodes"]] == ["Post 01"]

    one = await rest.get(f"/rest/posts/{post_id(3)}")
    assert one.status_code == 200
    assert one.json() == {"data": {"post": {"title": "Post 03", "author": {"id": BOB}}}}
    # a literal segment wins over a variable one
    latest = await rest.get("/rest/posts/latest")
    assert latest.json()["data"]["posts"]["nodes"] == [{"title": "Post 25"}]
    # a list from a repeated parameter
    picked = await rest.get("/rest/picked", params=[("ids", post_id(5)), ("ids", post_id(4))])
    assert [n["title"] for n in picked.json()["data"]["posts"]["nodes"]] == ["Post 04", "Post 05"]

    # nothing there, or not the caller's to see (Row Level Security): 404
    missing = await rest.get("/rest/posts/00000000-0000-0000-0000-00000000dead")
    assert (missing.status_code, missing.json()) == (404, {"data": {"post": None}})
    await add_drafts(seeded, ALICE, "Secret")
    draft_id = (
        await rest.post(
            "/graphql",
            json={"query": '{ posts(filter: {title: {eq: "Secret"}}) { nodes { id } } }'},
            headers=as_user(ALICE),
        )
    ).json()["data"]["posts"]["nodes"][0]["id"]
    assert (await rest.get(f"/rest/posts/{draft_id}")).status_code == 404
    assert (await rest.get(f"/rest/posts/{draft_id}", headers=as_user(BOB))).status_code == 404
    mine = await rest.get(f"/rest/posts/{draft_id}", headers=as_user(ALICE))
    assert (mine.status_code, mine.json()["data"]["post"]["title"]) == (200, "Secret")

    # counted in /metrics by operation name, as on /graphql: the five runs of Post above
    assert await post_runs(rest) - runs_before == 5


async def test_bad_requests_get_a_status_and_a_coded_error(rest) -> None:
    for path, params, says in [
        ("/rest/posts", {"first": "two"}, "'first' must be a number"),
        ("/rest/posts", {"frist": "2"}, "unknown parameter 'frist'"),
        ("/rest/posts", {"published": "maybe"}, "'published' must be true or false"),
        ("/rest/posts", [("first", "1"), ("first", "2")], "more than once"),
        ("/rest/posts", {"first": "1000"}, "first"),  # past MAX_PAGE_SIZE, GraphQL's check
        (f"/rest/posts/{post_id(1)}", {"id": post_id(2)}, "given in the path"),
        ("/rest/posts/not-a-uuid", {}, "UUID"),
        ("/rest/posts/%0A0", {}, "UUID"),  # a new line in a segment is still that segment
        ("/rest/picked", {}, "ids"),  # a required variable left out
    ]:
        response = await rest.get(path, params=params)
        assert response.status_code == 400, (path, params, response.text)
        [error] = response.json()["errors"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT", (path, params)
        assert says in error["message"], (path, params, error)

    for path in ("/rest/posts/%FF", "/rest/posts?first=%FF"):  # not UTF-8
        response = await rest.get(path)
        assert (response.status_code, code_of(response)) == (400, "BAD_USER_INPUT"), path
        assert "not valid UTF-8" in response.json()["errors"][0]["message"]

    nothing = await rest.get("/rest/nothing/here")
    assert (nothing.status_code, code_of(nothing)) == (404, "NOT_FOUND")
    wrong_method = await rest.get(f"/rest/posts/{post_id(1)}/comments")
    assert wrong_method.status_code == 405
    assert wrong_method.headers["allow"] == "POST"
    bad_token = await rest.get("/rest/posts", headers={"authorization": "Bearer nonsense"})
    assert (bad_token.status_code, code_of(bad_token)) == (401, "UNAUTHENTICATED")


async def test_writes_take_a_json_body_and_answer_with_the_policies_verdict(rest) -> None:
    path = f"/rest/posts/{post_id(2)}/comments"
    made = await rest.post(path, json={"body": "Nice"}, headers=as_user(BOB))
    assert made.status_code == 200, made.text
    assert made.json() == {"data": {"createComment": {"body": "Nice", "author": {"id": BOB}}}}
    # the body's variables are read as GraphQL reads variables
    for body, says in [
        ({}, "body"),
        ({"body": 5}, "body"),
        ({"body": "x", "mood": "happy"}, "unknown variable 'mood'"),
        ({"body": "x", "postId": post_id(3)}, "given twice"),
    ]:
        refused = await rest.post(path, json=body, headers=as_user(BOB))
        assert refused.status_code == 400, (body, refused.text)
        assert says in refused.json()["errors"][0]["message"], (body, refused.text)
    for content, content_type, status in [
        (b"body=x", "application/x-www-form-urlencoded", 415),
        (b'{"body": ', "application/json", 400),
        (b'["x"]', "application/json", 400),
        (b'{"body": "' + b"x" * 1_000_000 + b'"}', "application/json", 413),
    ]:
        headers = {**as_user(BOB), "content-type": content_type}
        refused = await rest.post(path, content=content, headers=headers)
        assert refused.status_code == status, (content[:20], refused.text)
        assert code_of(refused) in ("BAD_USER_INPUT", "LIMIT_EXCEEDED")
    # anonymous callers may not comment (the insert policy): 401, nothing written
    anonymous = await rest.post(path, json={"body": "Hi"})
    assert (anonymous.status_code, code_of(anonymous)) == (401, "UNAUTHENTICATED")

    # a delete: another user's post is refused by the policies, the author's goes, then is gone
    refused = await rest.delete(f"/rest/posts/{post_id(2)}", headers=as_user(BOB))
    assert (refused.status_code, code_of(refused)) == (403, "FORBIDDEN")
    deleted = await rest.delete(f"/rest/posts/{post_id(2)}", headers=as_user(ALICE))
    assert (deleted.status_code, deleted.json()) == (
        200,
        {"data": {"deletePost": {"id": post_id(2)}}},
    )
    again = await rest.delete(f"/rest/posts/{post_id(2)}", headers=as_user(ALICE))
    assert again.status_code == 404
    counted = await rest.post("/graphql", json={"query": "{ posts { totalCount } }"})
    assert counted.json()["data"]["posts"]["totalCount"] == 24


async def test_the_endpoints_are_described_for_rest_tooling(rest) -> None:
    described = (await rest.get("/rest/openapi.json")).json()
    validate(described)  # a valid OpenAPI 3.1 document, as REST tooling reads it
    paths = described["paths"]
    assert set(paths) == {
        "/rest/posts",
        "/rest/posts/{id}",
        "/rest/posts/latest",
        "/rest/picked",
        "/rest/posts/{postId}/comments",
    }
    assert set(paths["/rest/posts/{id}"]) == {"get", "delete"}
    listed = {p["name"]: p for p in paths["/rest/posts"]["get"]["parameters"]}
    assert listed["first"] == {
        "name": "first",
        "in": "query",
        "required": False,
        "schema": {"type": "integer"},
    }
    assert listed["published"]["schema"] == {"type": "boolean"}
    [by_id] = paths["/rest/posts/{id}"]["get"]["parameters"]
    assert by_id == {
        "name": "id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "format": "uuid"},
    }
    picked = paths["/rest/picked"]["get"]["parameters"][0]
    assert picked["schema"] == {"type": "array", "items": {"type": "string", "format": "uuid"}}
    comment = paths["/rest/posts/{postId}/comments"]["post"]
    assert comment["operationId"] == "Comment"
    body_schema = comment["requestBody"]["content"]["application/json"]["schema"]
    assert body_schema == {
        "type": "object",
        "properties": {"body": {"type": "string"}},
        "required": ["body"],
    }


async def test_endpoints_run_where_only_trusted_documents_do(
    seeded: DatabaseURL, tmp_path: Path
) -> None:
    # the map is the server's own: its operations run beside an allow-list of the frontend's
    rest = write_endpoints(tmp_path, {"GET /count": "query Count { posts { totalCount } }"})
    trusted = tmp_path / "trusted.json"
    trusted.write_bytes(orjson.dumps({"feed": "{ posts(first: 1) { nodes { id } } }"}))
    service = RunningService(
        seeded,
        rest_endpoints_file=rest,
        trusted_documents_file=trusted,
        trusted_documents_only=True,
    )
    async with service as http:
        counted = await http.get("/rest/count")
        assert counted.json() == {"data": {"posts": {"totalCount": 25}}}
        other = await http.post("/graphql", json={"query": "{ posts { totalCount } }"})
        assert (other.status_code, code_of(other)) == (403, "FORBIDDEN")


@pytest.mark.parametrize(
    ("endpoints", "says"),
    [
        ({"GET /x": "mutation { deletePost(id: $id) { id } }"}, "does not validate"),
        ({"GET /x": "mutation($id: UUID!) { deletePost(id: $id) { id } }"}, "than GET"),
        ({"GET /x/:id": "query { posts { totalCount } }"}, "declares no variable $id"),
        ({"FETCH /x": "query { posts { totalCount } }"}, "METHOD /path"),
        ({"GET x": "query { posts { totalCount } }"}, "METHOD /path"),
        ({"GET /x y": "query { posts { totalCount } }"}, "neither a word nor :variable"),
        ({"GET /x": "subscription { posts { totalCount } }"}, "served at /graphql"),
        ({"GET /x": "missing.graphql"}, "missing.graphql"),
        ({"GET /x": ""}, "must be a GraphQL document"),
        (
            {
                "GET /p/:id": "query($id: UUID!) { post(id: $id) { id } }",
                "GET /p/:key": "query($key: UUID!) { post(id: $key) { id } }",
            },
            "the same route as 'GET /p/:id'",
        ),
        ({"GET /openapi.json": "query { posts { totalCount } }"}, "endpoints' description"),
        (["GET /x"], "expected a JSON object"),
    ],
)
def test_a_map_that_cannot_work_is_refused_naming_the_route(
    database: DatabaseURL, tmp_path: Path, endpoints: Any, says: str
) -> None:
    path = write_endpoints(tmp_path, endpoints)
    executor = create_executor(settings_for(database))
    with pytest.raises(StartupError, match="REST_ENDPOINTS_FILE") as refused:
        load_rest_routes(path, executor)
    assert says in str(refused.value)


def test_the_service_stops_at_start_on_such_a_map(database: DatabaseURL, tmp_path: Path) -> None:
    path = write_endpoints(tmp_path, {"GET /x/:id": "query { posts { totalCount } }"})
    result = run_service(
        "serve", "--port", "0", DATABASE_URL=database.sqlalchemy, REST_ENDPOINTS_FILE=str(path)
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"REST_ENDPOINTS_FILE {path}: 'GET /x/:id': the operation declares no variable $id" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr


TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=20)
VALUE = st.one_of(TEXT, st.sampled_from(["", "true", "1", "-1", "1e999", "null", "[]", "{}"]))
JSON_VALUE = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)
NAMES = st.sampled_from(["first", "after", "published", "id", "ids", "postId", "body", "x"])


@settings(FUZZ, max_examples=150)
@given(
    method=st.sampled_from(["GET", "POST", "DELETE", "PUT"]),
    path=st.sampled_from(
        ["/rest/posts", "/rest/posts/{}", "/rest/picked", "/rest/posts/{}/comments", "/rest/x"]
    ),
    segment=st.one_of(st.just(post_id(1)), TEXT.filter(lambda t: t and "/" not in t)),
    params=st.lists(st.tuples(NAMES, VALUE), max_size=4),
    body=st.none() | st.dictionaries(NAMES, JSON_VALUE, max_size=3),
    as_bob=st.booleans(),
)
async def test_any_request_to_an_endpoint_gets_an_answer_or_a_client_error(
    rest: httpx.AsyncClient,
    method: str,
    path: str,
    segment: str,
    params: list[tuple[str, str]],
    body: dict[str, Any] | None,
    as_bob: bool,
) -> None:
    url = path.format(quote(segment, safe=""))
    response = await rest.request(
        method,
        url,
        params=params,
        json=body if method != "GET" else None,
        headers=as_user(BOB) if as_bob else {},
    )
    assert response.status_code in (200, 400, 401, 403, 404, 405, 409), (url, response.text)
    answer = response.json()
    if response.status_code >= 400 and "errors" in answer:
        for error in answer["errors"]:
            assert error["extensions"]["code"] != "INTERNAL", (url, params, body, answer)
            assert "Traceback" not in error["message"] and "SELECT" not in error["message"]
