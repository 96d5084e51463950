"""Queries known by an id instead of their text: automatic persisted queries and trusted documents.

Automatic persisted queries (Apollo's APQ protocol, also spoken by urql and Apollo Kotlin/iOS):
a client sends only the SHA-256 of its query in `extensions.persistedQuery`; when this process
does not know the hash, it answers `PersistedQueryNotFound` and the client sends the query with
its hash once, which registers it. The store is per process and bounded (entries and
characters, least recently used first out): a process that forgot a query asks for it again. A
query is remembered only under the hash of its own text, so no hash can ever run another query.

Trusted documents: the operations a frontend build declared, loaded at start from
`TRUSTED_DOCUMENTS_FILE` (Apollo's persisted query manifest, or a JSON map of id -> document as
Relay and graphql-codegen write them). Clients send `documentId` (or Apollo's hash) instead of
the text. With `TRUSTED_DOCUMENTS_ONLY` nothing else runs: query text is accepted only when it is
one of those documents, and nothing is registered. This is how a production API stays closed to
operations nobody shipped (PostGraphile's persisted operations, Hasura's allow-list).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from service.errors import StartupError, load_json_file
from service.graphql.errors import ApiError, BadUserInput, Code

NOT_FOUND = "PersistedQueryNotFound"  # the message clients look for, besides the code
_APOLLO_MANIFEST = "apollo-persisted-query-manifest"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class PersistedQueries:
    def __init__(
        self,
        *,
        trusted: Mapping[str, str] | None = None,
        trusted_only: bool = False,
        max_entries: int = 1024,
        max_chars: int = 16_000_000,
    ) -> None:
        documents = dict(trusted or {})
        # Each document also by the SHA-256 of its text: Apollo's links send that.
        self.trusted = {**{sha256(d): d for d in documents.values()}, **documents}
        self.trusted_hashes = frozenset(sha256(d) for d in documents.values())
        self.trusted_only = trusted_only
        self.max_entries = max_entries
        self.max_chars = max_chars
        self._queries: OrderedDict[str, str] = OrderedDict()  # registered by APQ, by hash
        self._chars = 0

    def query_for(
        self, query: Any, extensions: dict[str, Any] | None, document_id: Any = None
    ) -> str:
        """The request's query text: as sent, or found by its id. Raises ApiError."""
        if document_id is not None:
            return self._by_document_id(document_id)
        persisted = extensions.get("persistedQuery") if extensions else None
        if persisted is not None:
            return self._by_hash(query, persisted)
        if not isinstance(query, str) or not query:
            raise BadUserInput("missing `query` (a string)")
        if self.trusted_only and sha256(query) not in self.trusted_hashes:
            raise _untrusted()
        return query

    def _by_document_id(self, document_id: Any) -> str:
        if not isinstance(document_id, str) or not document_id:
            raise BadUserInput("`documentId` must be a string")
        # "sha256:<hex>" is the GraphQL-over-HTTP draft's form; manifests may list either
        known = self.trusted.get(document_id) or self.trusted.get(
            document_id.removeprefix("sha256:")
        )
        if known is None:
            raise ApiError("no trusted document has this `documentId`", code=Code.NOT_FOUND)
        return known

    def _by_hash(self, query: Any, persisted: Any) -> str:
        if not isinstance(persisted, dict) or persisted.get("version") != 1:
            raise BadUserInput("`extensions.persistedQuery` must be {version: 1, sha256Hash}")
        digest = persisted.get("sha256Hash")
        if not isinstance(digest, str) or len(digest) != 64:
            raise BadUserInput("`persistedQuery.sha256Hash` must be a SHA-256 in hex")
        digest = digest.lower()
        if query is None:
            known = self.trusted.get(digest)
            if known is None and not self.trusted_only:
                known = self._queries.get(digest)
                if known is not None:
                    self._queries.move_to_end(digest)
            if known is None:
                raise ApiError(NOT_FOUND, code=Code.PERSISTED_QUERY_NOT_FOUND)
            return known
        if not isinstance(query, str) or not query:
            raise BadUserInput("`query` must be a string")
        if sha256(query) != digest:
            raise BadUserInput("`persistedQuery.sha256Hash` is not the SHA-256 of `query`")
        if self.trusted_only:
            if digest not in self.trusted_hashes:
                raise _untrusted()
        elif digest not in self.trusted:
            self._remember(digest, query)
        return query

    def _remember(self, digest: str, query: str) -> None:
        size = len(query)
        if digest in self._queries or size > self.max_chars:
            return
        self._queries[digest] = query
        self._chars += size
        while len(self._queries) > self.max_entries or self._chars > self.max_chars:
            _, dropped = self._queries.popitem(last=False)
            self._chars -= len(dropped)


def _untrusted() -> ApiError:
    return ApiError(
        "only trusted documents run here: send the `documentId` of one your build declared",
        code=Code.FORBIDDEN,
    )


def load_trusted_documents(path: Path) -> dict[str, str]:
    """The documents of a manifest file by id; StartupError (one line) when it cannot be used."""
    content = load_json_file("TRUSTED_DOCUMENTS_FILE", path)
    documents: dict[str, str] = {}
    if isinstance(content, dict) and content.get("format") == _APOLLO_MANIFEST:
        operations = content.get("operations")
        if content.get("version") != 1 or not isinstance(operations, list):
            raise StartupError(
                f"TRUSTED_DOCUMENTS_FILE {path}: expected version 1 of Apollo's manifest, "
                "with a list of operations"
            )
        for operation in operations:
            if not isinstance(operation, dict):
                raise StartupError(f"TRUSTED_DOCUMENTS_FILE {path}: an operation is not an object")
            documents[str(operation.get("id"))] = operation.get("body")  # type: ignore[assignment]
    elif isinstance(content, dict):
        documents = content
    else:
        raise StartupError(
            f"TRUSTED_DOCUMENTS_FILE {path}: expected Apollo's persisted query manifest or a "
            "JSON object of id -> document"
        )
    for document_id, document in documents.items():
        if not isinstance(document, str) or not document.strip():
            raise StartupError(
                f"TRUSTED_DOCUMENTS_FILE {path}: the document {document_id!r} is not a string"
            )
    return documents
