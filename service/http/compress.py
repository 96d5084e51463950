"""gzip for /graphql responses. GraphQL's JSON repeats its keys on every object, so a page of
results shrinks three to ten times; on a phone's link that is worth far more than the
fraction of a millisecond zlib's fastest level spends on it here."""

from __future__ import annotations

import asyncio
import zlib

from service.http.negotiate import accepts_coding

GZIP_CONTAINER = 31  # zlib's wbits for a gzip stream (header and trailer), as HTTP's gzip is
# Past this size zlib runs in a worker thread (it lets go of the GIL), so one large response
# does not hold up every other request on the event loop for milliseconds.
IN_THREAD_FROM = 64 * 1024


class ResponseCompression:
    """Compresses a response body with gzip when the client accepts it and it is long enough
    to gain from it. Level 0 turns compression off."""

    def __init__(self, *, level: int = 1, min_bytes: int = 1024) -> None:
        self.level = level
        self.min_bytes = min_bytes

    def applies(self, body: bytes) -> bool:
        """Whether a body this long is compressed for clients that accept gzip: its response
        then varies with Accept-Encoding."""
        return self.level > 0 and len(body) >= self.min_bytes

    @staticmethod
    def accepted(accept_encoding: str) -> bool:
        return accepts_coding(accept_encoding, "gzip")

    async def gzip(self, body: bytes) -> bytes:
        if len(body) < IN_THREAD_FROM:
            return zlib.compress(body, self.level, GZIP_CONTAINER)
        return await asyncio.to_thread(zlib.compress, body, self.level, GZIP_CONTAINER)
