"""The connector interface the import and export pipelines talk to.

Records are described with SmartTID's Create-function parameter names (``sEmployeeCode``, …),
which is also the vocabulary of the incoming file; each connector translates to its own API.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from shared.importing.layouts import RecordType
from shared.importing.values import Value, same_value

if TYPE_CHECKING:
    from shared.importing.parsing import Record


@dataclass(frozen=True)
class RemoteRecord:
    """A record as the target system holds it: its id and its values keyed by parameter name."""

    id: int | str
    values: dict[str, Value]


@dataclass
class CallCounter:
    """Counts HTTP requests by ``METHOD /path`` (thread-safe); reported in receipts."""

    counts: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, method: str, path: str) -> None:
        with self._lock:
            self.counts[f"{method} {path}"] += 1

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

    def write_cost(self, record_type: RecordType, *, create: bool) -> int:
        """API calls one create / update of this record type takes at most."""
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

    def finish(self) -> None:
        """After the writes of a real (not dry) run: persist what the import learned (links)."""
        ...

    # --- export -----------------------------------------------------------------------------
    def untransferred_job_ledger_entries(self) -> list[dict[str, Any]]: ...

    def mark_job_ledger_entries_transferred(self, ids: list[int]) -> None: ...

    def time_ledger_entries(self, employee_code: str) -> list[dict[str, Any]]: ...

    def active_employee_codes(self) -> list[str]: ...

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

    def write_cost(self, record_type: RecordType, *, create: bool) -> int:
        return 1

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

    def finish(self) -> None:
        return None
