"""Content negotiation: what an Accept or Accept-Encoding header allows."""

from __future__ import annotations


def accepted(header: str) -> dict[str, float]:
    """Media types or codings of an Accept or Accept-Encoding header with their q-values."""
    result: dict[str, float] = {}
    for item in header.split(","):
        name, *params = (part.strip() for part in item.split(";"))
        if not name:
            continue
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        result[name.lower()] = q
    return result


def accepts_coding(header: str, coding: str) -> bool:
    """Whether an Accept-Encoding header allows `coding`: named with q > 0, or not named and
    allowed by `*`."""
    found = accepted(header)
    return found.get(coding, found.get("*", 0.0)) > 0.0


EVENT_STREAM = "text/event-stream"
_ANSWERS = ("application/json", "application/graphql-response+json")


def wants_event_stream(accept: str) -> bool:
    """Does an Accept header ask for an event stream (sse.py) rather than one JSON answer?"""
    if EVENT_STREAM not in accept:  # the usual request: one substring test
        return False
    found = accepted(accept)
    q = found.get(EVENT_STREAM, 0.0)
    return q > 0 and q >= max(found.get(answer, 0.0) for answer in _ANSWERS)
