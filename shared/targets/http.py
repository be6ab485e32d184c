"""What every target's HTTP client shares: the signal for a response worth retrying, and a short
description of a failed attempt for the logs (never request data)."""

from __future__ import annotations

import httpx


class RetryableResponse(Exception):
    """A response worth retrying (429 / 5xx): raised inside a tenacity attempt, never outside a client."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


def describe_failure(exc: BaseException | None) -> str:
    """``HTTP 503``, ``ReadTimeout``, … for a log line about a failed attempt."""
    if isinstance(exc, RetryableResponse):
        return f"HTTP {exc.response.status_code}"
    if exc is None:
        return "unknown error"
    return type(exc).__name__
