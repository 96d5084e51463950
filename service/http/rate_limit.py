"""Requests a minute per caller, by role (RATE_LIMITS), as Hasura's API limits.

`RATE_LIMITS='{"anon": 120, "authenticated": 600}'`: each signed-in user (by the token's
`sub`) and each anonymous client address may send that many operations a minute, in bursts
of up to a minute's worth (a token bucket that refills continuously); roles not named are not
limited. Past it, an operation is refused before it runs, with the seconds until the next one
may go (`Retry-After`). Every operation counts, however it comes: over HTTP (each of a batch),
as a REST endpoint, an event stream or a WebSocket subscribe message.

Per process: behind N replicas (or workers) a caller may send up to N times the limit, as
the load balancer spreads them. The buckets of the most recent callers are kept (at most
`max_callers`); a caller forgotten starts again with a full bucket.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping

from service.auth import Principal
from service.graphql.errors import LimitExceeded
from service.http.metrics import RATE_LIMITED


class RateLimited(LimitExceeded):
    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RateLimiter:
    def __init__(
        self,
        per_minute: Mapping[str, int],
        *,
        max_callers: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_minute = dict(per_minute)
        self.max_callers = max_callers
        self.clock = clock
        # (role, caller) -> (tokens left, when counted), least recently seen first
        self._buckets: OrderedDict[tuple[str, str], tuple[float, float]] = OrderedDict()

    def take(self, principal: Principal, client: str | None, cost: int = 1) -> None:
        """Count `cost` operations of this caller; RateLimited when they are over the limit
        (and then none of them is counted)."""
        limit = self.per_minute.get(principal.role)
        if limit is None:
            return
        # anonymous callers by their address; a token without `sub` (a service's) is one
        # caller per set of claims
        signed_in = principal.user_id or principal.claims_json
        key = (principal.role, (client or "") if principal.anonymous else signed_in)
        now = self.clock()
        tokens, counted = self._buckets.pop(key, (float(limit), now))
        tokens = min(float(limit), tokens + (now - counted) * limit / 60)
        if tokens >= cost:
            tokens -= cost
            refused = None
        else:
            # a batch larger than a whole minute's worth never fits: a minute, and it is not
            wait = 60.0 if cost > limit else (cost - tokens) * 60 / limit
            refused = RateLimited(
                f"rate limit: {limit} operations a minute for role {principal.role}; "
                f"try again in {math.ceil(wait)} s",
                math.ceil(wait),
            )
        self._buckets[key] = (tokens, now)
        if len(self._buckets) > self.max_callers:
            self._buckets.popitem(last=False)
        if refused is not None:
            RATE_LIMITED.labels(principal.role).inc()
            raise refused
