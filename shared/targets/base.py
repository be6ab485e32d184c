"""The contract every target meets, split by purpose: :class:`MasterData`, :class:`Matching`,
:class:`Budget` (together the :class:`Connector` the import talks to) and a ledger source for the
export (:class:`TransferredFlagLedger`; the sent-ledger export reads Tic-Tac's entries itself).

Records are described with SmartTID's Create-function parameter names (``sEmployeeCode``, …),
which is also the vocabulary of the incoming file; each connector translates to its own API.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from shared.records.layouts import RecordType
from shared.records.values import Value, same_value
from shared.targets.http import CallCounter

if TYPE_CHECKING:
    from shared.records.record import LineError, Record


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


class MasterData(Protocol):
    """The target's employees, jobs and operations: read them, create and update them."""

    calls: CallCounter
    #: True when the target compares codes (employee number, job number, …) without regard to case,
    #: as SmartTID does: the file's ``a360`` then is the stored ``A360``.
    codes_case_insensitive: bool
    #: True when a new job is created with its operations in the same call (Tic-Tac: a project POST
    #: carries its activities); the importer then passes them to :meth:`create_with_children`.
    inline_children: bool

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

    def create_with_children(self, record_type: RecordType, values: dict[str, Value],
                             children: list[dict[str, Value]]) -> int | str | None:
        """Create the record and its children (operations of a new job) in one call."""
        ...

    def finish(self) -> None:
        """After the writes of a real (not dry) run: persist what the import learned (links)."""
        ...

    def close(self) -> None: ...


class Matching(Protocol):
    """The planning rules of a target, as data the importer asks for (defaults: SmartTID's — the
    records carry the ERP's keys and every field)."""

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
        :class:`shared.errors.AmbiguousMatchError` when several are."""
        ...

    def matched(self, record: Record, remote: RemoteRecord) -> None:
        """``record`` is the stored ``remote`` (matched by its key, a cross-reference or by name), in
        a real import or a dry run: a target that keeps links records this one (at ``finish``)."""
        ...

    def refuse_create(self, record: Record, planned: Sequence[Record]) -> LineError | None:
        """Why ``record`` cannot be created (None: it can), decided while planning; ``planned`` are
        the records of its type in the same file (e.g. a Template job another job refers to)."""
        ...

    def write_first(self, record: Record) -> bool:
        """Whether ``record`` is written before the other writes of its phase (e.g. a Template job
        the new jobs of the same file are expanded from)."""
        ...


class Budget(Protocol):
    """A daily call limit (defaults: none, every call costs 1)."""

    def read_cost(self, record_type: RecordType, *, job_code: str | None = None) -> int:
        """API calls the next ``list_records`` of this type takes at most (0 once read)."""
        ...

    def write_cost(self, record_type: RecordType, *, create: bool, values: Mapping[str, Value] | None = None) -> int:
        """API calls one create / update of this record type takes at most (of a record with these
        ``values``, when given: some calls are needed only for some values)."""
        ...

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


class Connector(MasterData, Matching, Budget, Protocol):
    """What the import (and the dry run, the readiness report) needs from a target: its master data,
    its planning rules and its call budget. A target implements :class:`MasterData` and inherits
    :class:`ConnectorDefaults` for whatever of the rest it has no rule of its own for."""


@runtime_checkable
class TransferredFlagLedger(Protocol):
    """A ledger source whose entries carry a "transferred" flag the export sets (SmartTID's
    ``Transfered``): what the export of :class:`LedgerKind.TRANSFERRED_FLAG` reads and marks."""

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


@dataclass(frozen=True)
class Entry:
    """One registration of a target without a transferred flag, as its connector hands it to the export
    (the sent ledger): the target's ids, the values the ledger lines are made of, and the target's own row
    (kept only while the entry is held, so a held entry can be read back after a restart)."""

    #: the target's id of the row ("" when the target gave none: the row is left out, saying so)
    id: str
    #: a registration of hours (other kinds — costs, mileage, sales — are left out of the export)
    is_time: bool
    #: the target's own name of the kind (named in the receipt when left out)
    kind: str
    #: the user's id in the target, as given (shown), and as the links are keyed (``entry_links``)
    user: str
    user_key: str
    project: str
    project_name: str
    activity: str
    #: the person's name for the ledger line's Name column
    person_name: str
    #: the date as the target gave it (ISO, possibly with a time)
    date: str
    #: the hours; None when the target's value is not a number (``hours_text`` is what it sent)
    hours: Decimal | None
    hours_text: str
    #: whether the hours were approved; None when the target's value cannot be read
    attested: bool | None
    attested_text: str
    remark: str
    #: a hash of the values whose change makes a correction (the target decides which)
    fingerprint: str
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class EntryRules:
    """The target's settings for its sent-ledger export (a target's own settings model holds them)."""

    attested_only: bool
    #: project numbers whose time is absence (TimeLedgerEntry only, Type Absence)
    absence_projects: frozenset[str]
    #: activity type (upper case) → WorkTypeCode
    worktypes: Mapping[str, str]
    lookback_days: int
    forward_days: int
    max_loss_percent: int
    #: the setting names, for messages
    absence_setting: str
    loss_setting: str


@runtime_checkable
class EntriesLedger(Protocol):
    """A ledger source without a transferred flag (Tic-Tac): its entries as rows (each with a row id
    and the values the export maps), the links TimeBridge keeps between the target's users, projects
    and activities and the ERP's codes, and the target's own lists the export maps by when a link is
    missing. The export keeps its own ledger of what it sent (``shared/export/sent_ledger.py``)."""

    #: HTTP attempts one call may take (each may count against a call limit)
    max_attempts: int

    def read_entries(self, start: date, end: date, *, days_changed_within: int | None) -> list[Entry]:
        """The entries dated ``start``..``end`` (changed within that many days, when given)."""
        ...

    def entry(self, raw: Mapping[str, Any]) -> Entry:
        """An entry from its ``raw`` row (a held entry read back from the ledger)."""
        ...

    def changed_days(self, since: datetime, now: datetime) -> int | None:
        """The ``days_changed_within`` that covers every change since ``since`` (the last recorded read);
        None: too long ago for a read of changes (read the whole window)."""
        ...

    def entry_rules(self) -> EntryRules:
        """The export's rules from the target's own settings."""
        ...

    def entry_links(self) -> tuple[dict[str, str], dict[str, str], dict[str, dict[str, str]]]:
        """The links: user (folded) → employee code, project → job code, activity → the operation's
        ERP values."""
        ...

    def record_entry_links(self, users: Mapping[str, str], projects: Mapping[str, str]) -> None:
        """Links the export made by number (employee code → user, job code → project)."""
        ...

    def entry_catalogue(self) -> tuple[dict[str, tuple[str, dict[str, str]]], dict[str, dict[str, str]],
                                       dict[str, str]]:
        """The target's lists: project → (project number, activity → type), project → (activity →
        name), user (folded) → employee number."""
        ...


class EntriesConnector(Connector, EntriesLedger, Protocol):
    """A connector that is also an :class:`EntriesLedger` (Tic-Tac)."""


class FlaggedConnector(Connector, TransferredFlagLedger, Protocol):
    """A connector that is also a :class:`TransferredFlagLedger` (SmartTID)."""


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

    def each_record(self, record_type: RecordType) -> Iterator[RemoteRecord]:
        """``list_records``, one at a time (a target that pages its lists overrides this)."""
        return iter(self.list_records(record_type))  # type: ignore[attr-defined]

    def create_with_children(self, record_type: RecordType, values: dict[str, Value],
                             children: list[dict[str, Value]]) -> int | str | None:
        raise NotImplementedError("this target creates children one by one")

    def refuse_create(self, record: Record, planned: Sequence[Record]) -> LineError | None:
        return None

    def write_first(self, record: Record) -> bool:
        return False

    def finish(self) -> None:
        return None
