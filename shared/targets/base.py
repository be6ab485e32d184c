"""The connector interface the import and export pipelines talk to.

Records are described with SmartTID's Create-function parameter names (``sEmployeeCode``, …),
which is also the vocabulary of the incoming file; each connector translates to its own API.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol

from shared.importing.layouts import RecordType
from shared.importing.values import Value


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

    def create(self, record_type: RecordType, values: dict[str, Value]) -> None: ...

    def update(self, record_type: RecordType, remote_id: int | str, values: dict[str, Value]) -> None:
        """Write ``values`` (the key fields plus the changed fields) to an existing record."""
        ...

    # --- export -----------------------------------------------------------------------------
    def untransferred_job_ledger_entries(self) -> list[dict[str, Any]]: ...

    def mark_job_ledger_entries_transferred(self, ids: list[int]) -> None: ...

    def time_ledger_entries(self, employee_code: str) -> list[dict[str, Any]]: ...

    def active_employee_codes(self) -> list[str]: ...

    def close(self) -> None: ...
