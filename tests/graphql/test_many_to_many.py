"""A many-to-many relation (SQLModel's `link_model`) is a connection on both sides.

`Label` and its link model `PostLabel` live in a module written for the test, served by
another process as in test_new_model.py. `Label.posts` links through `post_labels`, and its
backref gives `Post.labels` without touching the Post model. Both sides page, filter, order
and count through the link table, and under Row Level Security: a label's posts are the posts
the caller can see.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from service.db.url import DatabaseURL
from tests.graphql.conftest import ALICE, gql, post_id
from tests.graphql.test_new_model import serving_model

LABEL_MODULE = '''
"""Label: `public.labels`, linked to posts through `public.post_labels`."""

import uuid

from sqlmodel import Field, Relationship, SQLModel

from service.models.columns import uuid_primary_key
from service.models.post import Post


class PostLabel(SQLModel, table=True):
    __tablename__ = "post_labels"

    id: uuid.UUID = uuid_primary_key()
    post_id: uuid.UUID = Field(foreign_key="posts.id", ondelete="CASCADE", index=True)
    label_id: uuid.UUID = Field(foreign_key="labels.id", ondelete="CASCADE", index=True)


class PostLabelCreate(SQLModel):
    post_id: uuid.UUID
    label_id: uuid.UUID


class Label(SQLModel, table=True):
    __tablename__ = "labels"

    id: uuid.UUID = uuid_primary_key()
    name: str = Field(max_length=50)

    posts: list[Post] = Relationship(
        link_model=PostLabel, sa_relationship_kwargs={"backref": "labels"}
    )


class LabelCreate(SQLModel):
    name: str = Field(max_length=50)
'''


@pytest.fixture
async def labelled(seeded: DatabaseURL, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with serving_model(
        seeded, tmp_path, "label_model", LABEL_MODULE, "labels, post_labels"
    ) as (http, _):
        yield http


async def _run(http: httpx.AsyncClient, query: str, variables: dict | None = None, **kw) -> dict:
    body = await gql(http, query, variables, **kw)
    assert "errors" not in body, body
    return body["data"]


async def test_a_many_to_many_relation_is_a_connection_on_both_sides(
    labelled: httpx.AsyncClient,
) -> None:
    http = labelled
    made = await _run(
        http,
        """mutation { a: createLabel(input: {name: "news"}) { id }
                      b: createLabel(input: {name: "howto"}) { id }
                      c: createLabel(input: {name: "unused"}) { id } }""",
    )
    news, howto = made["a"]["id"], made["b"]["id"]
    links = [(1, news), (2, news), (3, news), (2, howto), (2, howto)]  # post 2 twice as howto
    for post, label in links:
        await _run(
            http,
            "mutation($p: UUID!, $l: UUID!) { createPostLabel(input: {postId: $p, labelId: $l})"
            " { id } }",
            {"p": post_id(post), "l": label},
        )

    data = await _run(
        http,
        """query($p: UUID!) {
          post(id: $p) { labels(orderBy: {name: ASC}) { totalCount nodes { name } } }
          labels(orderBy: [{posts: {count: DESC}}, {name: ASC}]) {
            nodes { name posts(first: 2, orderBy: {title: DESC}) {
              totalCount nodes { title } pageInfo { hasNextPage } } }
          }
          tagged: posts(filter: {labels: {some: {name: {eq: "howto"}}}}) { nodes { title } }
          untagged: posts(filter: {labels: {none: {}}}) { totalCount }
        }""",
        {"p": post_id(2)},
    )
    # a label linked twice is still one related row
    assert data["post"]["labels"] == {
        "totalCount": 2,
        "nodes": [{"name": "howto"}, {"name": "news"}],
    }
    assert data["labels"]["nodes"] == [
        {
            "name": "news",
            "posts": {
                "totalCount": 3,
                "nodes": [{"title": "Post 03"}, {"title": "Post 02"}],
                "pageInfo": {"hasNextPage": True},
            },
        },
        {
            "name": "howto",
            "posts": {
                "totalCount": 1,
                "nodes": [{"title": "Post 02"}],
                "pageInfo": {"hasNextPage": False},
            },
        },
        {
            "name": "unused",
            "posts": {"totalCount": 0, "nodes": [], "pageInfo": {"hasNextPage": False}},
        },
    ]
    assert data["tagged"]["nodes"] == [{"title": "Post 02"}]
    assert data["untagged"]["totalCount"] == 22

    # through the link, a label's posts are those the caller can see: Alice's draft, labelled
    # news, counts for her and for nobody else
    draft = await _run(
        http,
        'mutation { createPost(input: {title: "Draft", content: "unpublished"}) { id } }',
        as_user=ALICE,
    )
    await _run(
        http,
        "mutation($p: UUID!, $l: UUID!) { createPostLabel(input: {postId: $p, labelId: $l})"
        " { id } }",
        {"p": draft["createPost"]["id"], "l": news},
        as_user=ALICE,
    )
    query = """query($l: UUID!) { label(id: $l) { posts { totalCount } } }"""
    as_alice = await _run(http, query, {"l": news}, as_user=ALICE)
    anonymous = await _run(http, query, {"l": news})
    assert as_alice["label"]["posts"]["totalCount"] == 4
    assert anonymous["label"]["posts"]["totalCount"] == 3


TOPIC_MODULE = '''
"""Topic: `public.topics`, linked to posts as SQLModel's own example links heroes and teams:
through `public.post_topics`, keyed by its two foreign keys."""

import uuid

from sqlmodel import Field, Relationship, SQLModel

from service.models.columns import uuid_primary_key
from service.models.post import Post


class PostTopic(SQLModel, table=True):
    __tablename__ = "post_topics"

    post_id: uuid.UUID = Field(foreign_key="posts.id", ondelete="CASCADE", primary_key=True)
    topic_id: uuid.UUID = Field(foreign_key="topics.id", ondelete="CASCADE", primary_key=True)
    weight: int = Field(default=1, sa_column_kwargs={"server_default": "1"})


class PostTopicCreate(SQLModel):
    post_id: uuid.UUID
    topic_id: uuid.UUID


class PostTopicUpdate(SQLModel):
    weight: int | None = Field(default=None, ge=0)


class Topic(SQLModel, table=True):
    __tablename__ = "topics"

    id: uuid.UUID = uuid_primary_key()
    name: str = Field(max_length=50)
    posts: list[Post] = Relationship(
        link_model=PostTopic, sa_relationship_kwargs={"backref": "topics"}
    )


class TopicCreate(SQLModel):
    name: str = Field(max_length=50)
'''

LINK = """mutation($links: [PostTopicCreateInput!]!) {
  createPostTopics(inputs: $links) { postId topicId } }"""


@pytest.fixture
async def topics(
    seeded: DatabaseURL, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, str, str]]:
    """The service with `Topic` and its link model keyed by both foreign keys, and the ids of
    two topics, "python" and "sql"."""
    async with serving_model(
        seeded, tmp_path, "topic_model", TOPIC_MODULE, "topics, post_topics"
    ) as (http, _):
        made = await _run(
            http,
            """mutation { a: createTopic(input: {name: "python"}) { id }
                          b: createTopic(input: {name: "sql"}) { id } }""",
        )
        yield http, made["a"]["id"], made["b"]["id"]


async def test_a_link_model_keyed_by_both_foreign_keys_links_and_unlinks(topics):
    http, python, sql = topics
    links = [(1, python), (2, python), (2, sql), (3, sql)]
    await _run(http, LINK, {"links": [{"postId": post_id(p), "topicId": t} for p, t in links]})
    again = await gql(http, LINK, {"links": [{"postId": post_id(1), "topicId": python}]})
    assert again["errors"][0]["extensions"]["code"] == "CONFLICT"  # the key is the pair

    data = await _run(
        http,
        """query($p: UUID!) {
          post(id: $p) { topics(orderBy: {name: ASC}) { nodes { name } } }
          topics(orderBy: {name: ASC}) { nodes { posts(orderBy: {title: ASC}) {
            totalCount nodes { title } } } }
        }""",
        {"p": post_id(2)},
    )
    assert data["post"]["topics"]["nodes"] == [{"name": "python"}, {"name": "sql"}]
    assert [t["posts"]["totalCount"] for t in data["topics"]["nodes"]] == [2, 2]

    # Its rows page in the order of both key columns, with keyset cursors.
    seen, after = [], None
    while True:
        page = (
            await _run(
                http,
                """query($after: String) { postTopics(first: 1, after: $after) {
                     nodes { postId topicId } pageInfo { hasNextPage endCursor } } }""",
                {"after": after},
            )
        )["postTopics"]
        seen += [(n["postId"], n["topicId"]) for n in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == sorted((post_id(p), t) for p, t in links)

    # Its key's columns together find one row: a root lookup by all of them.
    found = await _run(
        http,
        """query($p: UUID!, $t: UUID!, $none: UUID!) {
             link: postTopicByPostIdAndTopicId(postId: $p, topicId: $t) { postId topicId }
             none: postTopicByPostIdAndTopicId(postId: $none, topicId: $t) { postId } }""",
        {"p": post_id(2), "t": sql, "none": post_id(1)},
    )
    assert found == {"link": {"postId": post_id(2), "topicId": sql}, "none": None}

    # No one id names one of its rows: no lookup by id, no nodeId, no update or delete by
    # id; a link is removed by a filter.
    fields = await _run(
        http,
        """{ q: __type(name: "Query") { fields { name } }
             m: __type(name: "Mutation") { fields { name } }
             t: __type(name: "PostTopic") { fields { name } interfaces { name } } }""",
    )
    assert "postTopic" not in {f["name"] for f in fields["q"]["fields"]}
    mutations = {f["name"] for f in fields["m"]["fields"]}
    assert {"createPostTopic", "deletePostTopics"} <= mutations
    assert not {"updatePostTopic", "deletePostTopic"} & mutations
    assert fields["t"]["interfaces"] == []
    assert "nodeId" not in {f["name"] for f in fields["t"]["fields"]}

    unlinked = await _run(
        http,
        """mutation($p: UUID!, $t: UUID!) {
             deletePostTopics(filter: {postId: {eq: $p}, topicId: {eq: $t}}) { postId } }""",
        {"p": post_id(2), "t": sql},
    )
    assert unlinked["deletePostTopics"] == [{"postId": post_id(2)}]
    left = await _run(http, "{ postTopics { totalCount } }")
    assert left["postTopics"]["totalCount"] == 3


async def test_a_link_row_is_updated_and_deleted_by_all_its_key_columns(topics):
    http, python, sql = topics
    links = [(1, python), (1, sql), (2, python)]
    await _run(http, LINK, {"links": [{"postId": post_id(p), "topicId": t} for p, t in links]})
    weights = """{ postTopics { nodes { postId topicId weight } } }"""

    changed = await _run(
        http,
        """mutation($p: UUID!, $t: UUID!) {
             updatePostTopicByPostIdAndTopicId(postId: $p, topicId: $t, input: {weight: 5}) {
               postId topicId weight } }""",
        {"p": post_id(1), "t": sql},
    )
    assert changed["updatePostTopicByPostIdAndTopicId"] == {
        "postId": post_id(1),
        "topicId": sql,
        "weight": 5,
    }
    # Only the row both columns name changed: not post 1's other link, not sql's others.
    now = {
        (n["postId"], n["topicId"]): n["weight"]
        for n in (await _run(http, weights))["postTopics"]["nodes"]
    }
    assert now == {(post_id(1), python): 1, (post_id(1), sql): 5, (post_id(2), python): 1}

    added = await _run(
        http,
        """mutation($p: UUID!, $t: UUID!) {
             updatePostTopicByPostIdAndTopicId(
                 postId: $p, topicId: $t, input: {}, increment: {weight: 2}) {
               weight } }""",
        {"p": post_id(1), "t": sql},
    )
    assert added["updatePostTopicByPostIdAndTopicId"] == {"weight": 7}

    # The update class validates the input; a pair that links nothing is null, not an error.
    bad = await gql(
        http,
        """mutation($p: UUID!, $t: UUID!) {
             updatePostTopicByPostIdAndTopicId(postId: $p, topicId: $t, input: {weight: -1}) {
               weight } }""",
        {"p": post_id(1), "t": sql},
    )
    assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "weight" in bad["errors"][0]["message"]
    missing = await _run(
        http,
        """mutation($p: UUID!, $t: UUID!) {
             u: updatePostTopicByPostIdAndTopicId(postId: $p, topicId: $t, input: {weight: 1}) {
               weight }
             d: deletePostTopicByPostIdAndTopicId(postId: $p, topicId: $t) { weight } }""",
        {"p": post_id(2), "t": sql},
    )
    assert missing == {"u": None, "d": None}
    # Both columns are required: half a key names no row.
    half = await gql(
        http,
        """mutation($p: UUID!) { deletePostTopicByPostIdAndTopicId(postId: $p) { weight } }""",
        {"p": post_id(1)},
    )
    assert "topicId" in half["errors"][0]["message"]

    deleted = await _run(
        http,
        """mutation($p: UUID!, $t: UUID!) {
             deletePostTopicByPostIdAndTopicId(postId: $p, topicId: $t) {
               postId topicId weight } }""",
        {"p": post_id(1), "t": python},
    )
    assert deleted["deletePostTopicByPostIdAndTopicId"] == {
        "postId": post_id(1),
        "topicId": python,
        "weight": 1,
    }
    left = {(n["postId"], n["topicId"]) for n in (await _run(http, weights))["postTopics"]["nodes"]}
    assert left == {(post_id(1), sql), (post_id(2), python)}


async def test_a_create_links_its_row_to_existing_ones_through_the_link_model(topics):
    http, python, sql = topics
    # a new post linked to both topics: rows of the link model, their postId the post's
    post = await _run(
        http,
        """mutation($links: [PostTopicsCreateInput!]) {
             createPost(input: {title: "Linked", content: "", topics: $links}) {
               id topics(orderBy: {name: ASC}) { nodes { name } } } }""",
        {"links": [{"topicId": sql}, {"topicId": python}]},
        as_user=ALICE,
    )
    created = post["createPost"]
    assert created["topics"]["nodes"] == [{"name": "python"}, {"name": "sql"}]
    # and from the other side: a new topic on existing posts
    topic = await _run(
        http,
        """mutation($p: UUID!, $q: UUID!) {
             createTopic(input: {name: "rust", posts: [{postId: $p}, {postId: $q}]}) {
               posts(orderBy: {title: ASC}) { nodes { title } } } }""",
        {"p": post_id(3), "q": created["id"]},
        as_user=ALICE,  # "Linked" is her draft: only she sees it among the topic's posts
    )
    assert topic["createTopic"]["posts"]["nodes"] == [{"title": "Linked"}, {"title": "Post 03"}]
    links = await _run(http, "{ postTopics { totalCount } }")
    assert links["postTopics"]["totalCount"] == 4
    # a link to a topic that does not exist: refused, and the post is not written either
    missing = await gql(
        http,
        """mutation { createPost(input: {title: "Never", content: "",
             topics: [{topicId: "00000000-0000-0000-0000-0000000000ff"}]}) { id } }""",
        as_user=ALICE,
    )
    assert missing["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    never = await _run(http, '{ posts(filter: {title: {eq: "Never"}}) { totalCount } }')
    assert never["posts"]["totalCount"] == 0
