"""The connector interface the import and export pipelines talk to.

Records are described with SmartTID's Create-function parameter names (``sEmployeeCode``, …),
which is also the vocabulary of the incoming file; each connector translates to its own API.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote, quote_plus

from shared.errors import CircuitOpen
from shared.importing.layouts import RecordType
from shared.importing.values import Value, same_value

if TYPE_CHECKING:
    from shared.importing.parsing import LineError, Record


@dataclass(frozen=True)
class RemoteRecord:
    """A record as the target system holds it: its id and its values keyed by parameter name."""

    id: int | str
    values: dict[str, Value]
    #: The target's own names of the fields its answer held (also those without a value).
    present: frozenset[str] = frozenset()
    #: How the record carries the ERP's key: "" (its own field: SmartTID's codes, Tic-Tac's employee
    #: and project numbers), "cross-reference" (a link TimeBridge recorded), "name" (linked by name),
    #: or "ambiguous" (listed without a key because several records carry its code)
    matched_by: str = ""


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

    def each_record(self, record_type: RecordType) -> Iterator[RemoteRecord]:
        """Every employee / job (as ``list_records``), handed over as they are read: a caller that
        keeps only part of each record never holds the whole list."""
        ...

    def create(self, record_type: RecordType, values: dict[str, Value]) -> int | str | None:
        """Create the record; returns its new remote id when the target tells it (never a secret)."""
        ...

    def update(self, record_type: RecordType, remote_id: int | str, values: dict[str, Value]) -> None:
        """Write ``values`` (the key fields plus the changed fields) to an existing record."""
        ...

    # --- matching, diff and cost (defaults in :class:`ConnectorDefaults`) -----------------------
    def held_fields(self, record_type: RecordType) -> frozenset[str] | None:
        """The fields of the file the diff compares (None: every field). A field the target cannot
        hold (or cannot read back) is not among them, so it never causes a write."""
        ...

    def unheld_fields(self, record_type: RecordType) -> tuple[str, ...]:
        """Fields of the file the target has no place for (named once in the receipt)."""
        ...

    def differs(self, record_type: RecordType, name: str, wanted: Value, stored: Value | None) -> bool:
        """Whether the file's ``wanted`` value differs from the ``stored`` one as the target sees it."""
        ...

    def link(self, record: Record, candidates: Sequence[RemoteRecord]) -> RemoteRecord | None:
        """A second chance for a record no stored record has the key of: the one candidate (stored
        records without a known key) it is the same as, e.g. by name. Raises
        :class:`shared.errors.AmbiguousMatch` when several are."""
        ...

    def write_cost(self, record_type: RecordType, *, create: bool, values: Mapping[str, Value] | None = None) -> int:
        """API calls one create / update of this record type takes at most (of a record with these
        ``values``, when given: some calls are needed only for some values)."""
        ...

    def matched(self, record: Record, remote: RemoteRecord) -> None:
        """``record`` is the stored ``remote`` (matched by its key, a cross-reference or by name), in
        a real import or a dry run: a target that keeps links records this one (at :meth:`finish`)."""
        ...

    def read_cost(self, record_type: RecordType, *, job_code: str | None = None) -> int:
        """API calls the next ``list_records`` of this type takes at most (0 once read)."""
        ...

    # --- a daily call limit (defaults: none) --------------------------------------------------
    def remaining_calls(self) -> int | None:
        """Calls that could be reserved now; None when the target has no call limit."""
        ...

    def reserve(self, calls: int) -> bool:
        """Reserve ``calls`` calls for what follows (True), or say they do not fit now (False).
        The previous reservation is settled first; no call is made beyond a reservation."""
        ...

    def settle(self) -> None:
        """Hand back what the current reservation did not use."""
        ...

    def block_until(self, moment: datetime) -> None:
        """The target refused a call for its limit: no call before ``moment`` (every instance)."""
        ...

    def next_free_at(self, calls: int) -> datetime | None:
        """When ``calls`` calls (at most the whole budget) fit; None when there is no limit."""
        ...

    #: True when a new job is created with its operations in the same call (Tic-Tac: a project POST
    #: carries its activities); the importer then passes them to :meth:`create_with_children`.
    inline_children: bool

    def create_with_children(self, record_type: RecordType, values: dict[str, Value],
                             children: list[dict[str, Value]]) -> int | str | None:
        """Create the record and its children (operations of a new job) in one call."""
        ...

    def refuse_create(self, record: Record, planned: Sequence[Record]) -> LineError | None:
        """Why ``record`` cannot be created (None: it can), decided while planning; ``planned`` are
        the records of its type in the same file (e.g. a Template job another job refers to)."""
        ...

    def write_first(self, record: Record) -> bool:
        """Whether ``record`` is written before the other writes of its phase (e.g. a Template job
        the new jobs of the same file are expanded from)."""
        ...

    def finish(self) -> None:
        """After the writes of a real (not dry) run: persist what the import learned (links)."""
        ...

    # --- export -----------------------------------------------------------------------------
    #: False after a read of the untransferred job-ledger entries that may have been cut short
    #: (an answer without paging information that repeats itself): mark what was read, read again.
    job_ledger_read_complete: bool

    def untransferred_job_ledger_entries(self) -> Iterable[dict[str, Any]]:
        """The untransferred job-ledger entries, read as the caller goes (a page at a time)."""
        ...

    def mark_job_ledger_entries_transferred(self, ids: Sequence[int]) -> None: ...

    def time_ledger_entries(self, employee_code: str, newer_than: int | None = None, *,
                            keep: Callable[[dict[str, Any]], Any] | None = None) -> list[Any]:
        """The employee's time-ledger entries: at least every untransferred one, or with
        ``newer_than`` at least every untransferred one with a higher id. With ``keep`` (a pure
        function), what it returns for each row, applied as the rows arrive."""
        ...

    def job_ledger_entry_ids(self, employee_code: str) -> set[int]:
        """Ids of every job-ledger entry of the employee that still exists (transferred or not)."""
        ...

    def employee_codes(self) -> dict[str, bool]:
        """Every employee's code → whether the employee is active."""
        ...

    def close(self) -> None: ...


class ConnectorDefaults:
    """The answers of a target whose records carry the ERP's keys and every field (SmartTID)."""

    def held_fields(self, record_type: RecordType) -> frozenset[str] | None:
        return None

    def unheld_fields(self, record_type: RecordType) -> tuple[str, ...]:
        return ()

    def differs(self, record_type: RecordType, name: str, wanted: Value, stored: Value | None) -> bool:
        return not same_value(wanted, stored)

    def link(self, record: Record, candidates: Sequence[RemoteRecord]) -> RemoteRecord | None:
        return None

    def write_cost(self, record_type: RecordType, *, create: bool, values: Mapping[str, Value] | None = None) -> int:
        return 1

    def matched(self, record: Record, remote: RemoteRecord) -> None:
        return None

    def read_cost(self, record_type: RecordType, *, job_code: str | None = None) -> int:
        return 1

    def remaining_calls(self) -> int | None:
        return None

    def reserve(self, calls: int) -> bool:
        return True

    def settle(self) -> None:
        return None

    def block_until(self, moment: datetime) -> None:
        return None

    def next_free_at(self, calls: int) -> datetime | None:
        return None

    inline_children = False

    def create_with_children(self, record_type: RecordType, values: dict[str, Value],
                             children: list[dict[str, Value]]) -> int | str | None:
        raise NotImplementedError("this target creates children one by one")

    def refuse_create(self, record: Record, planned: Sequence[Record]) -> LineError | None:
        return None

    def write_first(self, record: Record) -> bool:
        return False

    def finish(self) -> None:
        return None
