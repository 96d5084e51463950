"""Who sees and changes which row: anon, alice and bob against RLS policies, over HTTP."""

from __future__ import annotations

import base64

import pytest

from tests.auth.conftest import ALICE, BOB, COMMENTS, POSTS, call, code

VISIBLE_POSTS = {
    "anon": {"alice_published", "bob_published"},
    "alice": {"alice_published", "bob_published", "alice_draft"},
    "bob": {"alice_published", "bob_published", "bob_draft"},
}
# comments on posts the caller can read, and the caller's own comments
VISIBLE_COMMENTS = {
    "anon": {"bob_on_alice_published", "alice_on_bob_published"},
    "alice": {
        "bob_on_alice_published",
        "alice_on_bob_published",
        "alice_on_alice_draft",
        "bob_on_alice_draft",
    },
    "bob": {"bob_on_alice_published", "alice_on_bob_published", "bob_on_alice_draft"},
}
CALLERS = ["anon", "alice", "bob"]


@pytest.mark.parametrize("who", CALLERS)
async def test_lists_and_counts_show_only_visible_rows(people, who):
    body = await call(
        people,
        who,
        "{ posts { totalCount nodes { title } } comments { totalCount nodes { body } } }",
    )
    posts, comments = body["data"]["posts"], body["data"]["comments"]
    assert {n["title"] for n in posts["nodes"]} == VISIBLE_POSTS[who]
    assert posts["totalCount"] == len(VISIBLE_POSTS[who])
    assert {n["body"] for n in comments["nodes"]} == VISIBLE_COMMENTS[who]
    assert comments["totalCount"] == len(VISIBLE_COMMENTS[who])


@pytest.mark.parametrize("who", CALLERS)
async def test_nested_relations_follow_the_same_rules(people, who):
    body = await call(
        people,
        who,
        "{ posts { nodes { title comments { totalCount nodes { body } } } }"
        "  comments { nodes { body post { title } } } }",
    )
    for post in body["data"]["posts"]["nodes"]:
        expected = {c for c in VISIBLE_COMMENTS[who] if c.endswith(post["title"])}
        assert {c["body"] for c in post["comments"]["nodes"]} == expected
        assert post["comments"]["totalCount"] == len(expected)
    for comment in body["data"]["comments"]["nodes"]:
        post_title = comment["body"].split("_on_", 1)[1]
        seen = post_title if post_title in VISIBLE_POSTS[who] else None
        assert (comment["post"] or {}).get("title") == seen, comment


@pytest.mark.parametrize("who", CALLERS)
@pytest.mark.parametrize("post", list(POSTS))
async def test_lookups_by_id_and_node_id_hide_invisible_posts(people, who, post):
    visible = post in VISIBLE_POSTS[who]
    by_id = await call(
        people, who, "query($id: UUID!) { post(id: $id) { title } }", {"id": POSTS[post]}
    )
    assert by_id["data"]["post"] == ({"title": post} if visible else None)
    node_id = base64.b64encode(f"Post:{POSTS[post]}".encode()).decode()
    by_node = await call(
        people, who, "query($n: ID!) { node(nodeId: $n) { ... on Post { title } } }", {"n": node_id}
    )
    assert by_node["data"]["node"] == ({"title": post} if visible else None)


async def test_emails_are_private_to_their_user(people):
    query = "{ viewer { id email } posts { nodes { title author { id email } } } }"
    anon = await call(people, "anon", query)
    assert anon["data"]["viewer"] is None
    assert all(p["author"]["email"] is None for p in anon["data"]["posts"]["nodes"])
    assert {p["author"]["id"] for p in anon["data"]["posts"]["nodes"]} == {ALICE, BOB}

    alice = await call(people, "alice", query)
    assert alice["data"]["viewer"] == {"id": ALICE, "email": "alice@example.com"}
    for post in alice["data"]["posts"]["nodes"]:
        own = post["author"]["id"] == ALICE
        assert post["author"]["email"] == ("alice@example.com" if own else None)

    users = await call(people, "bob", "{ users { nodes { id email } } }")
    emails = {u["id"]: u["email"] for u in users["data"]["users"]["nodes"]}
    assert emails == {ALICE: None, BOB: "bob@example.com"}


# --- writes ----------------------------------------------------------------------------------

CREATE_POST = 'mutation { createPost(input: {title: "t", content: "c"}) { authorId } }'
UPDATE_POST = 'mutation($id: UUID!) { updatePost(id: $id, input: {title: "changed"}) { title } }'
DELETE_POST = "mutation($id: UUID!) { deletePost(id: $id) { title } }"
CREATE_COMMENT = (
    'mutation($p: UUID!) { createComment(input: {postId: $p, body: "hi"}) { authorId } }'
)
UPDATE_COMMENT = 'mutation($id: UUID!) { updateComment(id: $id, input: {body: "edited"}) { body } }'
DELETE_COMMENT = "mutation($id: UUID!) { deleteComment(id: $id) { body } }"


async def test_anonymous_callers_cannot_write(people):
    cases = [
        (CREATE_POST, None),
        (UPDATE_POST, {"id": POSTS["alice_published"]}),
        (DELETE_POST, {"id": POSTS["alice_published"]}),
        (CREATE_COMMENT, {"p": POSTS["alice_published"]}),
        (UPDATE_COMMENT, {"id": COMMENTS["bob_on_alice_published"]}),
        (DELETE_COMMENT, {"id": COMMENTS["bob_on_alice_published"]}),
    ]
    for mutation, variables in cases:
        body = await call(people, "anon", mutation, variables)
        assert code(body) == "UNAUTHENTICATED", (mutation, body)
    unchanged = await call(people, "anon", "{ posts { totalCount } comments { totalCount } }")
    assert unchanged["data"] == {"posts": {"totalCount": 2}, "comments": {"totalCount": 2}}


async def test_users_create_posts_and_comments_as_themselves(people):
    post = await call(people, "bob", CREATE_POST)
    assert post["data"]["createPost"] == {"authorId": BOB}
    comment = await call(people, "bob", CREATE_COMMENT, {"p": POSTS["alice_published"]})
    assert comment["data"]["createComment"] == {"authorId": BOB}
    # the author is not an input: a client cannot write as someone else
    forged = await call(
        people,
        "bob",
        f'mutation {{ createPost(input: {{title: "t", content: "c", authorId: "{ALICE}"}}) '
        "{ id } }",
    )
    assert code(forged) == "BAD_USER_INPUT"


async def test_nobody_comments_on_a_post_they_cannot_read(people):
    body = await call(people, "bob", CREATE_COMMENT, {"p": POSTS["alice_draft"]})
    assert code(body) == "FORBIDDEN"
    assert body["data"] is None
    own = await call(people, "alice", CREATE_COMMENT, {"p": POSTS["alice_draft"]})
    assert own["data"]["createComment"] == {"authorId": ALICE}


@pytest.mark.parametrize(
    ("mutation", "target", "kind"),
    [
        (UPDATE_POST, POSTS["alice_published"], "post"),
        (DELETE_POST, POSTS["alice_published"], "post"),
        (UPDATE_COMMENT, COMMENTS["alice_on_bob_published"], "comment"),
        (DELETE_COMMENT, COMMENTS["alice_on_bob_published"], "comment"),
    ],
)
async def test_a_visible_row_of_someone_else_is_forbidden_and_unchanged(
    people, mutation, target, kind
):
    body = await call(people, "bob", mutation, {"id": target})
    assert code(body) == "FORBIDDEN"
    check = await call(people, "alice", f'{{ {kind}(id: "{target}") {{ id }} }}')
    assert check["data"][kind] == {"id": target}


@pytest.mark.parametrize(
    ("mutation", "field"), [(UPDATE_POST, "updatePost"), (DELETE_POST, "deletePost")]
)
async def test_an_invisible_row_is_null_as_if_missing(people, mutation, field):
    body = await call(people, "bob", mutation, {"id": POSTS["alice_draft"]})
    assert body == {"data": {field: None}}


async def test_owners_update_and_delete_their_rows(people):
    updated = await call(people, "alice", UPDATE_POST, {"id": POSTS["alice_draft"]})
    assert updated["data"]["updatePost"] == {"title": "changed"}
    comment = await call(
        people, "alice", UPDATE_COMMENT, {"id": COMMENTS["alice_on_bob_published"]}
    )
    assert comment["data"]["updateComment"] == {"body": "edited"}
    deleted = await call(people, "bob", DELETE_COMMENT, {"id": COMMENTS["bob_on_alice_draft"]})
    assert deleted["data"]["deleteComment"] == {"body": "bob_on_alice_draft"}
    gone = await call(people, "alice", DELETE_POST, {"id": POSTS["alice_draft"]})
    assert gone["data"]["deletePost"] == {"title": "changed"}
