"""Automatic persisted queries (Apollo's APQ protocol, also spoken by urql and Apollo Kotlin/iOS).

A client sends only the SHA-256 of its query in `extensions.persistedQuery`; when this process
does not know the hash, it answers `PersistedQueryNotFound` and the client sends the query with
its hash once, which registers it. Requests then carry a hash instead of the query text, and
queries can go over GET with short URLs that a CDN may cache.

The store is per process and bounded (entries and characters, least recently used first out): a
process that restarted or forgot a query just asks for it again. A query is remembered only
with the hash of its own text, so no client can make another client's hash run its query.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any

from service.graphql.errors import ApiError, BadUserInput, Code

NOT_FOUND = "PersistedQueryNotFound"  # the message clients look for, besides the code


class PersistedQueries:
    def __init__(self, *, max_entries: int = 1024, max_chars: int = 16_000_000) -> None:
        self.max_entries = max_entries
        self.max_chars = max_chars
        self._queries: OrderedDict[str, str] = OrderedDict()  # by hash
        self._chars = 0

    def query_for(self, query: str | None, extensions: dict[str, Any] | None) -> str:
        """The request's query text: as sent, or found by its hash. Raises ApiError."""
        persisted = extensions.get("persistedQuery") if extensions else None
        if persisted is None:
            if not isinstance(query, str) or not query:
                raise BadUserInput("missing `query` (a string)")
            return query
        if not isinstance(persisted, dict) or persisted.get("version") != 1:
            raise BadUserInput("`extensions.persistedQuery` must be {version: 1, sha256Hash}")
        digest = persisted.get("sha256Hash")
        if not isinstance(digest, str) or len(digest) != 64:
            raise BadUserInput("`persistedQuery.sha256Hash` must be a SHA-256 in hex")
        digest = digest.lower()
        if query is None:
            known = self._queries.get(digest)
            if known is None:
                raise ApiError(NOT_FOUND, code=Code.PERSISTED_QUERY_NOT_FOUND)
            self._queries.move_to_end(digest)
            return known
        if not isinstance(query, str) or not query:
            raise BadUserInput("`query` must be a string")
        if hashlib.sha256(query.encode()).hexdigest() != digest:
            raise BadUserInput("`persistedQuery.sha256Hash` is not the SHA-256 of `query`")
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
