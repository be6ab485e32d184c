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
import logging
import re
import threading
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
import tenacity

from shared.errors import ApiUnavailableError, CircuitOpenError

log = logging.getLogger(__name__)

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


class RetryableResponseError(Exception):
    """A response worth retrying (429 / 5xx): raised inside a tenacity attempt, never outside a client."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


class AnswerTooLargeError(ApiUnavailableError):
    """The answer was longer than the limit: refused while it streamed in (nothing of it is used)."""


class CircuitBreaker:
    """Stops calling a target that is clearly unavailable (thread-safe; one per connector, i.e. per run).

    Every attempt that fails for availability reasons (5xx, 429, timeout, connection error) counts;
    any answer from the target resets the count of its route, and of the whole target. After
    ``threshold`` failures in a row on one route (e.g. every ``POST /employees`` fails while reads
    work) that route is open; after ``threshold`` in a row on the whole target, everything is. An
    open breaker stays open for the rest of the run: the remaining work is reported at once
    instead of each record waiting out its retries.
    """

    def __init__(self, threshold: int, target: str) -> None:
        self.threshold = threshold
        self.target = target
        self._lock = threading.Lock()
        self._in_a_row = 0
        self._route_in_a_row: Counter[str] = Counter()
        self._open_routes: set[str] = set()
        self._open_all = False
        self._last_failure = ""
        self.opened = threading.Event()  # set when the whole target is open (ends retry sleeps early)

    def check(self, route: str) -> None:
        if self._open_all or route in self._open_routes:
            scope = "" if self._open_all else f" for {route}"
            raise CircuitOpenError(
                f"{self.target} was unavailable{scope} ({self.threshold} requests in a row failed, the last "
                f"with {self._last_failure}); TimeBridge stopped calling it for the rest of this run"
            )

    def success(self, route: str) -> None:
        with self._lock:
            self._in_a_row = 0
            self._route_in_a_row[route] = 0

    def failure(self, route: str, what: str) -> None:
        with self._lock:
            self._last_failure = what
            self._in_a_row += 1
            self._route_in_a_row[route] += 1
            if self._route_in_a_row[route] >= self.threshold:
                self._open_routes.add(route)  # its sleeping retries fail at their next check
            if self._in_a_row >= self.threshold:
                self._open_all = True
                self.opened.set()

    def sleep(self, seconds: float) -> None:
        """A retry's wait, ended early when the whole target opens (tenacity's ``sleep``)."""
        self.opened.wait(seconds)

    @property
    def is_open(self) -> bool:
        return self._open_all


_NUMERIC_SEGMENT = re.compile(r"/\d+(?=/|$)")


def route_of(path: str) -> str:
    """``/employees/103`` → ``/employees/{ID}``: one counter per route, not per record."""
    return _NUMERIC_SEGMENT.sub("/{ID}", path)


REDACTED = "[redacted]"


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` (from the target) with every secret value replaced, plain or URL-encoded."""
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        for form in {secret, quote(secret, safe=""), quote_plus(secret)}:
            text = text.replace(form, REDACTED)
    return text


@dataclass
class CallCounter:
    """Counts HTTP requests by ``METHOD /path`` (thread-safe); reported in receipts."""

    counts: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, method: str, path: str) -> None:
        """Count one request, grouped by route (``PUT /employees/{ID}``) so receipts stay small."""
        with self._lock:
            self.counts[f"{method} {route_of(path)}"] += 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def writes(self) -> int:
        return sum(n for key, n in self.counts.items() if key.split(" ", 1)[0] in ("POST", "PUT", "PATCH", "DELETE")
                   and not key.endswith("/apilogin"))


def describe_failure(exc: BaseException | None) -> str:
    """``HTTP 503``, ``ReadTimeout``, … for a log line about a failed attempt."""
    if isinstance(exc, RetryableResponseError):
        return f"HTTP {exc.response.status_code}"
    if exc is None:
        return "unknown error"
    return type(exc).__name__


def send_limited(client: httpx.Client, request: httpx.Request, max_bytes: int, target: str,
                 auth: httpx.Auth | None = None) -> httpx.Response:
    """Send ``request`` and read its answer, refusing it once more than ``max_bytes`` (decoded) came in.

    The answer returned is read and holds no stream that points back at it: httpx ties every
    streamed answer to its stream in a reference cycle, which only the cyclic garbage collector
    frees (one export run once held 21 answers, 4.6 MB); a fresh answer built from the bytes has none.
    """
    response = client.send(request, stream=True, auth=auth)
    try:
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > max_bytes:
                raise AnswerTooLargeError(
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
    """The JSON of an answer; :class:`ApiUnavailableError` when it is not JSON or nested beyond
    :data:`MAX_JSON_DEPTH` (never a ``RecursionError``)."""
    try:
        payload = json.loads(content)
    except RecursionError:
        payload = None
        deep = True
    except ValueError:
        raise ApiUnavailableError(f"{target}'s answer for {what} cannot be read: it is not JSON") from None
    else:
        deep = _too_deep(payload)
    if deep:
        raise ApiUnavailableError(f"{target}'s answer for {what} cannot be read: its JSON is nested more than "
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



# --- the one request loop every target uses -------------------------------------------------------
#: Transport errors raised before the request left: it certainly was not processed.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of one request, keyed by whether repeating it is safe.

    Every attempt that fails for availability reasons is retried with exponential backoff and jitter
    (waits of ``initial_wait`` × 2ⁿ plus up to ``initial_wait`` at random, at most ``max_wait``; a
    ``Retry-After`` is honoured up to ``max_retry_after`` seconds), at most ``attempts`` in all.
    Which answers are worth retrying is the target's to say (:class:`ApiClient`'s ``retry_statuses``);
    these are the numbers an operator may tune. ``breaker_threshold``: failed attempts in a row after
    which the target counts as unavailable for the rest of the run (:class:`CircuitBreaker`).
    """

    attempts: int = 5
    initial_wait: float = 0.5
    max_wait: float = 20.0
    max_retry_after: float = 60.0
    breaker_threshold: int = 12


class _LimitedStream(httpx.SyncByteStream):
    def __init__(self, inner: httpx.SyncByteStream, max_bytes: int, target: str, what: str) -> None:
        self._inner, self._max, self._target, self._what = inner, max_bytes, target, what

    def __iter__(self) -> Iterator[bytes]:
        size = 0
        for chunk in self._inner:
            size += len(chunk)
            if size > self._max:
                raise AnswerTooLargeError(
                    f"{self._target}'s answer to {self._what} was larger than {self._max:,} bytes "
                    "(MAX_ANSWER_BYTES) and was not read; if such a list is real, raise MAX_ANSWER_BYTES "
                    "in the app settings")
            yield chunk

    def close(self) -> None:
        self._inner.close()


class LimitedTransport(httpx.BaseTransport):
    """Every answer's bytes as they arrive, refused beyond ``max_bytes`` — also the answers httpx reads
    itself (an authentication flow's rejected answer); :func:`send_limited` bounds the decoded size."""

    def __init__(self, inner: httpx.BaseTransport, max_bytes: int, target: str) -> None:
        self._inner, self._max, self._target = inner, max_bytes, target

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        headers = response.headers
        stream = response.stream
        if response.is_stream_consumed:  # an inner transport read it (already decoded)
            stream = httpx.ByteStream(response.content)
            headers = httpx.Headers([(k, v) for k, v in headers.multi_items() if k.lower() != "content-encoding"])
        if not isinstance(stream, httpx.SyncByteStream):  # pragma: no cover - every sync transport's is
            return response
        what = f"{request.method} {request.url.path}"
        return httpx.Response(response.status_code, headers=headers,
                              stream=_LimitedStream(stream, self._max, self._target, what),
                              extensions=response.extensions)

    def close(self) -> None:
        self._inner.close()


def attempts_text(count: int) -> str:
    """``1 attempt``, ``5 attempts``."""
    return f"{count} attempt" if count == 1 else f"{count} attempts"


def backoff_wait(policy: RetryPolicy) -> tenacity.wait_exponential_jitter:
    """The policy's exponential backoff with jitter (tenacity's wait)."""
    return tenacity.wait_exponential_jitter(multiplier=policy.initial_wait, max=policy.max_wait,
                                            jitter=policy.initial_wait)


@dataclass(frozen=True)
class Sent:
    """The last answer to a request, and whether any attempt may have been processed without one."""

    response: httpx.Response
    ambiguous: bool
    attempts: int
    #: Every attempt ended in a status worth retrying (the client's ``retry_statuses``).
    kept_failing: bool = False


_LABEL = "timebridge.label"


class ApiClient:
    """One target's HTTP client: an ``httpx.Client`` plus everything above the transport that every
    target shares — the call counter (every request sent, retries and re-sent requests of an
    authentication flow included, grouped by route), the budget hook (``before_call``, called before
    every request and allowed to refuse it), the circuit breaker, the retry policy, answers read
    within ``max_answer_bytes``, and the target's error text with its secrets redacted.

    Retries follow ``retry`` (:class:`RetryPolicy`) and the target's statuses:

    * an answer with a status in ``retry_statuses``, a timeout or a dropped connection is retried
      for a request that is safe to repeat (reads, PUTs);
    * for one that is not (a POST that creates) only failures after which the request certainly was
      not processed are: the connection was refused, or a status in ``unprocessed_statuses``.

    Any attempt that may have been processed without a usable answer (a timeout or a dropped
    connection after sending, a retried status not in ``unprocessed_statuses``, an answer too large
    to read) makes a write *ambiguous*, whatever a later attempt answers.

    ``send`` returns the last answer (:class:`Sent`) or raises :class:`ApiUnavailableError` (unreachable
    after the retries, with ``maybe_applied`` for a write that may have been processed),
    :class:`AnswerTooLargeError` or :class:`shared.errors.CircuitOpenError`; what an answer *means* (success,
    empty, a refusal, a rejected session) is the target's to say with the helpers above.
    """

    def __init__(self, target: str, base_url: str, *, timeout: float, retry: RetryPolicy,
                 secrets: Callable[[], Iterable[str | None]], retry_statuses: frozenset[int],
                 unprocessed_statuses: frozenset[int], transport: httpx.BaseTransport | None = None,
                 max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
                 before_call: Callable[[str, str], None] | None = None) -> None:
        self.target = target
        self.retry = retry
        self.retry_statuses = retry_statuses
        self.unprocessed_statuses = unprocessed_statuses
        self.max_answer_bytes = max_answer_bytes
        self.calls = CallCounter()
        self.breaker = CircuitBreaker(retry.breaker_threshold, target)
        #: Called with (method, label) before every request is sent; may raise to stop it (a budget).
        self.before_call = before_call
        self._secrets = secrets
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=httpx.Timeout(timeout),
            headers={"Accept": "application/json", "User-Agent": "TimeBridge"},
            transport=LimitedTransport(transport or httpx.HTTPTransport(), max_answer_bytes, target),
            event_hooks={"request": [self._count]},
        )

    def close(self) -> None:
        self._client.close()

    def message(self, response: httpx.Response) -> str:
        """The target's error text, every secret redacted before it is shortened."""
        return error_text(response, self._secrets())

    def redact(self, text: str) -> str:
        return redact(text, self._secrets())

    def _count(self, request: httpx.Request) -> None:
        label = str(request.extensions.get(_LABEL) or request.url.path)
        if self.before_call is not None:
            self.before_call(request.method, label)
        self.calls.add(request.method, label)

    def send(self, method: str, path: str, *, params: Mapping[str, Any] | None = None, json_body: Any = None,
             files: Any = None, headers: Mapping[str, str] | None = None, auth: httpx.Auth | None = None,
             label: str | None = None, safe_to_repeat: bool | None = None, attempts: int | None = None) -> Sent:
        """Send one request under the retry policy. ``label``: how the call is counted and named
        (``/v1/users/{userName}``; default the path). ``safe_to_repeat``: default every method but
        POST. ``auth``: an ``httpx.Auth`` flow for this request (a session that may be renewed)."""
        policy = self.retry
        attempts = attempts or policy.attempts
        label = label or path
        route = f"{method} {route_of(label)}"
        repeat = method != "POST" if safe_to_repeat is None else safe_to_repeat
        write = method != "GET"
        breaker = self.breaker
        ambiguous = False
        made = 0

        def retryable(exc: BaseException) -> bool:
            if isinstance(exc, RetryableResponseError):
                return repeat or exc.response.status_code in self.unprocessed_statuses
            if isinstance(exc, NOT_SENT):
                return True
            return repeat and isinstance(exc, httpx.TimeoutException | httpx.TransportError)

        backoff = backoff_wait(policy)

        def wait(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, RetryableResponseError):
                seconds = retry_after_seconds(exc.response)
                if seconds is not None:
                    return min(seconds, policy.max_retry_after)
            return float(backoff(state))

        def attempt() -> httpx.Response:
            nonlocal ambiguous, made
            breaker.check(route)
            made += 1
            request = self._client.build_request(method, path, params=params, json=json_body, files=files,
                                                 headers=headers, extensions={_LABEL: label})
            try:
                response = send_limited(self._client, request, self.max_answer_bytes, self.target, auth)
            except AnswerTooLargeError:
                breaker.success(route)  # the target answered
                ambiguous = True
                raise
            except httpx.HTTPError as exc:
                breaker.failure(route, describe_failure(exc))
                if not isinstance(exc, NOT_SENT):
                    ambiguous = True  # sent: it may have been processed
                raise
            if response.status_code in self.retry_statuses:
                breaker.failure(route, f"HTTP {response.status_code}")
                ambiguous = ambiguous or response.status_code not in self.unprocessed_statuses
                raise RetryableResponseError(response)
            breaker.success(route)
            return response

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(attempts),
            wait=wait,
            sleep=breaker.sleep,  # an opening breaker ends the wait
            retry=tenacity.retry_if_exception(retryable),
            reraise=True,
            before_sleep=lambda state: log.warning(
                "%s %s %s failed (%s); retrying (attempt %d of %d)", self.target, method, route_of(label),
                describe_failure(state.outcome.exception() if state.outcome else None), state.attempt_number + 1,
                attempts),
        )
        try:
            return Sent(retrying(attempt), ambiguous, made)
        except RetryableResponseError as exc:
            return Sent(exc.response, ambiguous, made, kept_failing=True)
        except CircuitOpenError as exc:
            raise CircuitOpenError(str(exc), maybe_applied=ambiguous and write) from None
        except AnswerTooLargeError as exc:
            raise AnswerTooLargeError(str(exc), maybe_applied=write) from None
        except httpx.HTTPError as exc:
            raise ApiUnavailableError(
                f"{self.target} could not be reached ({describe_failure(exc)}) after {attempts_text(made)}",
                maybe_applied=ambiguous and write,
            ) from None


# --- one list read page by page -----------------------------------------------------------------
_EMPTY = -(2**63)  # an empty slot: the one 64-bit int the table does not hold (it goes to the set)
_GOLDEN = 0x9E3779B97F4A7C15  # Fibonacci hashing: consecutive ids spread over the table
_BITS64 = 2**64 - 1
_LARGEST = 2**63 - 1  # the largest id held in the table


class SeenIdentities:
    """The identities of the rows a strict read has seen, held compactly; membership is exact.

    A strict read keeps every row identity of a list while it reads it (a row seen on an earlier page
    is not handed on again). For a list of 200,000 jobs a set of Python ints takes 13.3 MiB (about
    70 bytes an id: the int object and the set's slot); here an int id that fits in 64 bits is held
    as itself in an open-addressing table of 8-byte slots, at most two thirds full (12–24 bytes an
    id: 4.0 MiB), and any other identity (a row without an id: its JSON text) in a set. A slot holds
    the id itself, so an id is found only when it was added: nothing is taken as seen on a hash
    alone. ``True``/``False`` count as 1/0, as in a set.
    """

    def __init__(self) -> None:
        self._bits = 4
        self._slots = array("q", [_EMPTY]) * (1 << self._bits)
        self._count = 0
        self._other: set[int | str] = set()

    def __len__(self) -> int:
        return self._count + len(self._other)

    def __contains__(self, identity: int | str) -> bool:
        if isinstance(identity, int) and _EMPTY < identity <= _LARGEST:
            return self._slots[self._find(int(identity))] != _EMPTY
        return identity in self._other

    def add(self, identity: int | str) -> None:
        if not (isinstance(identity, int) and _EMPTY < identity <= _LARGEST):
            self._other.add(identity)
            return
        value = int(identity)
        slot = self._find(value)
        if self._slots[slot] == _EMPTY:
            self._slots[slot] = value
            self._count += 1
            if 3 * self._count > 2 * len(self._slots):
                self._grow()

    def nbytes(self) -> int:
        """Bytes of the table (for the benchmarks; the set of other identities not counted)."""
        return self._slots.itemsize * len(self._slots)

    def _find(self, value: int) -> int:
        """The slot holding ``value``, or the empty slot where it would go."""
        mask = len(self._slots) - 1
        slot = ((value * _GOLDEN) & _BITS64) >> (64 - self._bits)
        while (held := self._slots[slot]) != _EMPTY and held != value:
            slot = (slot + 1) & mask
        return slot

    def _grow(self) -> None:
        old = self._slots
        self._bits += 1
        self._slots = array("q", [_EMPTY]) * (1 << self._bits)
        for value in old:
            if value != _EMPTY:
                self._slots[self._find(value)] = value


class Pager:
    """One list read page by page (offset/limit) that knows whether it is complete.

    ``fetch(offset, limit)`` returns a page's rows and the total the target says the list has (None
    when its answer says none). The read goes on until that total is reached or an empty page comes
    back — never stops on a short page (a server-side cap); ``enough(page)`` may end it early (a
    newest-first read that reached what it needs). The first page asks for ``first_limit`` rows, the
    second for ``second_limit`` (default: twice as many), each next one for twice as many, up to ``page_size``.
    ``on_page(page)`` sees every page as it arrives (e.g. to check its order), whatever ends the read.

    A page that brings nothing new is an answer that repeats itself (``offset`` ignored, or the list
    capped). ``strict`` (a master-data list): a page whose rows were all seen fails the read — the
    list cannot be read page by page — and only new rows are handed on. Not ``strict`` (a list whose
    rows move while it is read, e.g. entries marked as they are exported): a page with only the
    previous page's rows ends the read with :attr:`complete` False (the caller uses what was read and
    reads again), and whole pages are handed on (the caller keeps one row per id).
    """

    def __init__(self, fetch: Callable[[int, int], tuple[list[dict[str, Any]], int | None]], *,
                 identity: Callable[[dict[str, Any]], int | str], target: str, what: str, page_size: int,
                 max_pages: int, first_limit: int | None = None, strict: bool = True,
                 enough: Callable[[list[dict[str, Any]]], bool] | None = None,
                 second_limit: int | None = None,
                 on_page: Callable[[list[dict[str, Any]]], None] | None = None) -> None:
        self._fetch, self._identity, self._target, self._what = fetch, identity, target, what
        self._page_size, self._max_pages, self._strict, self._enough = page_size, max_pages, strict, enough
        self._first_limit = first_limit or page_size
        self._second_limit = second_limit
        self._on_page = on_page
        #: True once the list was read to its end (its total, or an empty page)
        self.complete = False

    def __iter__(self) -> Iterator[list[dict[str, Any]]]:
        seen = SeenIdentities()  # every row of a strict read (a long list's ids: 8 bytes each, not an object)
        previous: set[int | str] = set()
        offset, limit = 0, self._first_limit
        for _ in range(self._max_pages):
            page, total = self._fetch(offset, limit)
            if self._on_page is not None:
                self._on_page(page)
            if not page:
                self.complete = True
                return
            identities = [self._identity(row) for row in page]
            if self._strict:
                new = [row for row, key in zip(page, identities, strict=True) if key not in seen]
                for key in identities:
                    seen.add(key)
                yield new
            else:
                if set(identities) <= previous:  # the answer repeats itself: not paged, possibly capped
                    return
                previous = set(identities)
                yield page
            if total is not None and offset + len(page) >= total:
                self.complete = True
                return
            if self._strict and not new:
                raise ApiUnavailableError(
                    f"{self._target} returned the same records again for {self._what} at offset {offset}: the "
                    f"list cannot be read page by page; contact {self._target} support")
            if self._enough is not None and self._enough(page):
                self.complete = True
                return
            offset += len(page)
            limit = min(self._page_size, self._second_limit if offset == len(page) and self._second_limit
                        else limit * 2)
        if self._strict:
            raise ApiUnavailableError(f"{self._target}'s list {self._what} did not end after {self._max_pages} pages")
