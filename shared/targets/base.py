"""The connector interface the import and export pipelines talk to.

Records are described with SmartTID's Create-function parameter names (``sEmployeeCode``, …),
which is also the vocabulary of the incoming file; each connector translates to its own API.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote, quote_plus

from shared.errors import CircuitOpen
from shared.importing.layouts import RecordType
from shared.importing.values import Value


@dataclass(frozen=True)
class RemoteRecord:
    """A record as the target system holds it: its id and its values keyed by parameter name."""

    id: int | str
    values: dict[str, Value]
    #: The target's own names of the fields its answer held (also those without a value).
    present: frozenset[str] = frozenset()


class CircuitBreaker:
    """Stops calling a target that is clearly unavailable (thread-safe; one per connector, i.e. per run).

    Every attempt that fails for availability reasons (5xx, 429, timeout, connection error) counts;
    any answer from the target resets the count of its route, and of the whole target. After
    ``threshold`` failures in a row on one route (e.g. every ``POST /employees`` fails while reads
    work) that route is open; after ``threshold`` in a row on the whole target, everything is. An
    open breaker stays open for the rest of the run: the remaining work is reported at once
    instead of each record waiting out its retries.
    """

    def __init__(self, threshold: int, target: str = "SmartTID") -> None:
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
            raise CircuitOpen(
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


class Connector(Protocol):
    """What the pipelines need from a time-registration system."""

    calls: CallCounter
    #: True when the target compares codes (employee number, job number, …) without regard to case,
    #: as SmartTID does: the file's ``a360`` then is the stored ``A360``.
    codes_case_insensitive: bool

    def list_records(self, record_type: RecordType, *, job_code: str | None = None) -> list[RemoteRecord]:
        """Every employee / job, or the operations of one job (``job_code``)."""
        ...

    def create(self, record_type: RecordType, values: dict[str, Value]) -> None: ...

    def update(self, record_type: RecordType, remote_id: int | str, values: dict[str, Value]) -> None:
        """Write ``values`` (the key fields plus the changed fields) to an existing record."""
        ...

    # --- export -----------------------------------------------------------------------------
    #: False after a read of the untransferred job-ledger entries that may have been cut short
    #: (an answer without paging information that repeats itself): mark what was read, read again.
    job_ledger_read_complete: bool

    def untransferred_job_ledger_entries(self) -> list[dict[str, Any]]: ...

    def mark_job_ledger_entries_transferred(self, ids: list[int]) -> None: ...

    def time_ledger_entries(self, employee_code: str, newer_than: int | None = None) -> list[dict[str, Any]]:
        """The employee's time-ledger entries: at least every untransferred one, or with
        ``newer_than`` at least every untransferred one with a higher id."""
        ...

    def job_ledger_entry_ids(self, employee_code: str) -> set[int]:
        """Ids of every job-ledger entry of the employee that still exists (transferred or not)."""
        ...

    def employee_codes(self) -> dict[str, bool]:
        """Every employee's code → whether the employee is active."""
        ...

    def active_employee_codes(self) -> list[str]: ...

    def close(self) -> None: ...
