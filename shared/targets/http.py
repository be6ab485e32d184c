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


def unbound(response: httpx.Response) -> httpx.Response:
    """``response``, read, without the stream that points back at it.

    httpx wraps every answer's stream in a ``BoundSyncStream`` that refers to the response, so each
    response is part of a reference cycle and is freed only by the cyclic garbage collector — often
    much later, after the answers of a long read have piled up (one export run held 21 answers,
    4.6 MB). Once the body is read the stream is spent; replacing it breaks the cycle, and the
    answer is freed as soon as the caller lets go of it.
    """
    response.read()
    response.stream = httpx.ByteStream(b"")
    return response
