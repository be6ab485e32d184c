"""What every target's HTTP client shares: reading an answer within a size limit, reading its JSON
within a depth limit, the target's error text with every secret redacted *before* it is shortened,
the ``Retry-After`` header, the signal for a response worth retrying, and a short description of
a failed attempt for the logs (never request data).

The rules both targets follow (docs/targets.md, "Answers TimeBridge accepts"):

* a 2xx answer is success; ``204 No Content`` is the only empty answer a list may give (or an
  empty list); a ``200`` whose body is empty where data was expected is an unreadable answer;
* a 3xx answer is never followed and never success: for a read it is an error ("answered with a
  redirect"), for a write its outcome is unknown (the target may have processed it, as in
  post-redirect-get) and is looked up or reported as "may or may not have been applied";
* an answer larger than the limit (``MAX_ANSWER_BYTES``) is refused while it streams in; JSON
  nested deeper than :data:`MAX_JSON_DEPTH` is unreadable, not an internal error.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from shared.errors import ApiUnavailable
from shared.targets.base import redact

#: The largest answer read by default: a few MiB above the largest realistic list (Tic-Tac: 2,000
#: users ≈ 1.4 MiB, 2,000 projects with 10 activities each ≈ 6 MiB; a year of entries for 200 users
#: ≈ 20 MiB as JSON). Setting MAX_ANSWER_BYTES.
DEFAULT_MAX_ANSWER_BYTES = 32 * 1024 * 1024
#: Deeper than this is no answer any documented resource gives (the deepest, a project with its
#: activities inside a wrapper, is 4).
MAX_JSON_DEPTH = 32
#: How much of a target's error text a message quotes (after redaction).
MESSAGE_LENGTH = 500
REDIRECT_STATUSES = range(300, 400)


class RetryableResponse(Exception):
    """A response worth retrying (429 / 5xx): raised inside a tenacity attempt, never outside a client."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


class AnswerTooLarge(ApiUnavailable):
    """The answer was longer than the limit: refused while it streamed in (nothing of it is used)."""


def describe_failure(exc: BaseException | None) -> str:
    """``HTTP 503``, ``ReadTimeout``, … for a log line about a failed attempt."""
    if isinstance(exc, RetryableResponse):
        return f"HTTP {exc.response.status_code}"
    if exc is None:
        return "unknown error"
    return type(exc).__name__


def send_limited(client: httpx.Client, request: httpx.Request, max_bytes: int, target: str) -> httpx.Response:
    """Send ``request`` and read its answer, refusing it once more than ``max_bytes`` (decoded) came in.

    The answer returned is read and holds no stream that points back at it: httpx ties every
    streamed answer to its stream in a reference cycle, which only the cyclic garbage collector
    frees (one export run once held 21 answers, 4.6 MB); a fresh answer built from the bytes has none.
    """
    response = client.send(request, stream=True)
    try:
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > max_bytes:
                raise AnswerTooLarge(
                    f"{target}'s answer to {request.method} {request.url.path} was larger than "
                    f"{max_bytes:,} bytes (MAX_ANSWER_BYTES) and was not read; if such a list is real, "
                    "raise MAX_ANSWER_BYTES in the app settings")
            chunks.append(chunk)
    finally:
        response.close()
        response.stream = httpx.ByteStream(b"")  # the streamed answer's cycle, broken
    headers = [(name, value) for name, value in response.headers.multi_items()
               if name.lower() not in ("content-encoding", "content-length", "transfer-encoding")]
    return httpx.Response(response.status_code, headers=headers, content=b"".join(chunks), request=request,
                          extensions=response.extensions)


def load_json(content: bytes | str, target: str, what: str) -> Any:
    """The JSON of an answer; :class:`ApiUnavailable` when it is not JSON or nested beyond
    :data:`MAX_JSON_DEPTH` (never a ``RecursionError``)."""
    try:
        payload = json.loads(content)
    except RecursionError:
        payload = None
        deep = True
    except ValueError:
        raise ApiUnavailable(f"{target}'s answer for {what} cannot be read: it is not JSON") from None
    else:
        deep = _too_deep(payload)
    if deep:
        raise ApiUnavailable(f"{target}'s answer for {what} cannot be read: its JSON is nested more than "
                             f"{MAX_JSON_DEPTH} levels deep")
    return payload


def _too_deep(payload: Any) -> bool:
    """Whether ``payload`` nests containers deeper than :data:`MAX_JSON_DEPTH` (iterative: no recursion)."""
    stack: list[tuple[Any, int]] = [(payload, 1)]
    while stack:
        value, depth = stack.pop()
        children: Iterable[Any]
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > MAX_JSON_DEPTH:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def error_text(response: httpx.Response, secrets: Iterable[str | None] = ()) -> str:
    """The target's error text (plain text, or a JSON string / object with a message), every secret
    redacted first, then shortened to :data:`MESSAGE_LENGTH` characters (redacting after shortening
    would leave the start of a secret cut at the end)."""
    text = redact(response.text.strip(), list(secrets))
    try:
        parsed: Any = json.loads(text) if len(text) <= 100_000 else text
    except (ValueError, RecursionError):
        parsed = text
    if isinstance(parsed, dict):
        parsed = parsed.get("message") or parsed.get("Message") or parsed.get("error") or text
    message = str(parsed).strip()
    if len(message) > MESSAGE_LENGTH:
        message = message[:MESSAGE_LENGTH] + " …"
    return message or f"HTTP {response.status_code} without a message"


def retry_after_seconds(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds: a number of seconds or an HTTP date (RFC 9110 §10.2.3); None
    when absent or unreadable."""
    text = response.headers.get("Retry-After", "").strip()
    if not text:
        return None
    if text.isdigit():
        return float(text)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    date_header = response.headers.get("Date", "")
    try:
        now = parsedate_to_datetime(date_header) if date_header else None
    except (TypeError, ValueError, IndexError):
        now = None
    if moment.tzinfo is None or (now is not None and now.tzinfo is None):
        return None
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())


def redirect_text(response: httpx.Response) -> str:
    """``HTTP 302 to https://…`` for a message about an answer that was not followed."""
    location = response.headers.get("Location", "")
    return f"HTTP {response.status_code}" + (f" to {location[:200]}" if location else " without a Location")


def is_redirect(response: httpx.Response) -> bool:
    return response.status_code in REDIRECT_STATUSES

