"""The export ledger: an Azure Table (``EXPORT_LEDGER_TABLE``) that remembers what was exported.

Rows (PartitionKey / RowKey):

* ``state`` / ``export`` — the one state row. While a run is unfinished it holds that run's
  *intent* (``OpenRunId``, ``Status``, ``FileName``, ``MarkedThrough``); every change to it is a
  conditional write on its ETag, so two runs can never both believe they own the export.
* ``time`` / ``<EntryID, 10 digits>`` and ``job`` / ``<ID, 10 digits>`` — one row per exported
  entry (``RunId``, ``FileName``, ``ExportedAt``). New runs leave out every entry found here.
* ``run`` / ``<run id>`` — one row per finished run (file name, counts), for the administrator.
* ``inactive`` / ``<employee code>`` — an employee TimeBridge has seen inactive: ``InactiveSince``
  (the first run that saw it) and ``LastNewEntriesAt`` (the last run that still found unexported
  entries of it). Its time ledger is read until ``EXPORT_INACTIVE_GRACE_DAYS`` after the later
  of the two; the row is removed when the employee is active again.
* ``through`` / ``<employee code>`` — ``EntryID``: the highest time-ledger id of the employee
  exported so far (the newest-first read stops there).
* ``state`` / ``fullread`` — ``At``: when a run last read every employee's time ledger in full.
* ``NextLineId`` in the state row: TimeBridge's own line sequence (the ID column of Tic-Tac's
  lines), advanced in the same conditional write that records a run's intent.
* Tic-Tac's rows live in their own partitions (``shared/export/source_ledger.py``).
"""

from __future__ import annotations

import logging
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared.errors import ConfigurationError, ExportStateChangedError
from shared.platform.config import Settings
from shared.platform.storage import table_service
from shared.platform.table_keys import decode_key, encode_key, legacy_key

log = logging.getLogger(__name__)

STATE_PARTITION, STATE_ROW = "state", "export"
RUN_PARTITION = "run"
INACTIVE_PARTITION = "inactive"
THROUGH_PARTITION = "through"
FULL_READ_ROW = "fullread"
#: Entity-group transactions take at most 100 operations, all in one partition.
TRANSACTION_SIZE = 100


class EntryKind(StrEnum):
    TIME = "time"
    JOB = "job"


class RunStatus(StrEnum):
    INTENT = "intent"  # intent recorded, staging blobs written; the output file may or may not exist
    WRITTEN = "written"  # the output file exists and was read back byte for byte
    MARKED = "marked"  # every job-ledger entry of the run is marked transferred in SmartTID


@dataclass
class Intent:
    run_id: str
    file_name: str
    created_at: str
    status: RunStatus = RunStatus.INTENT
    marked_through: int = 0  # how many of the run's job-ledger ids are marked (in manifest order)
    #: Job-ledger ids of the run that were deleted in SmartTID after the file was written.
    vanished: list[int] = field(default_factory=list)
    #: TimeBridge's own line sequence after this run's lines (Tic-Tac: the ID / EntryID column);
    #: committed with the intent, so two runs never share a line id.
    next_line_id: int = 1


@dataclass(frozen=True)
class InactiveEmployee:
    since: datetime
    last_new_entries: datetime | None

    @property
    def watched_from(self) -> datetime:
        return max(self.since, self.last_new_entries or self.since)


class SortedIds:
    """A sorted, duplicate-free array of entry ids with a fast ``in`` (8 bytes per id)."""

    def __init__(self, ids: Iterable[int]) -> None:
        ordered = sorted(ids)
        self._ids = array("q", (value for at, value in enumerate(ordered) if at == 0 or ordered[at - 1] != value))

    def __contains__(self, entry_id: object) -> bool:
        if not isinstance(entry_id, int):
            return False
        at = bisect_left(self._ids, entry_id)
        return at < len(self._ids) and self._ids[at] == entry_id

    def __iter__(self) -> Iterator[int]:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def lowest(self) -> int:
        return self._ids[0]

    @property
    def highest(self) -> int:
        return self._ids[-1]


@dataclass(frozen=True)
class StateSnapshot:
    intent: Intent | None
    etag: str
    #: The next free line id of TimeBridge's own sequence (see ``Intent.next_line_id``).
    next_line_id: int = 1


def _row_key(entry_id: int) -> str:
    return f"{entry_id:010d}"


class ExportLedger:
    def __init__(self, table: TableClient) -> None:
        self.table = table

    @classmethod
    def connect(cls, settings: Settings) -> ExportLedger:
        return cls(table_service(settings).get_table_client(settings.export_ledger_table))

    # --- the state row (intent) ----------------------------------------------------------------
    def read_state(self) -> StateSnapshot:
        """The state row and its ETag (the row is created on first use; the table must exist)."""
        try:
            entity = self.table.get_entity(STATE_PARTITION, STATE_ROW)
        except ResourceNotFoundError:
            return self._create_state()
        etag = str(entity.metadata["etag"])
        next_line_id = max(1, int(entity.get("NextLineId") or 1))
        if not entity.get("OpenRunId"):
            return StateSnapshot(None, etag, next_line_id)
        intent = Intent(
            run_id=entity["OpenRunId"],
            file_name=entity["FileName"],
            created_at=entity["CreatedAt"],
            status=RunStatus(entity["Status"]),
            marked_through=int(entity.get("MarkedThrough") or 0),
            vanished=[int(part) for part in str(entity.get("Vanished") or "").split(",") if part],
            next_line_id=next_line_id,
        )
        return StateSnapshot(intent, etag, next_line_id)

    def _create_state(self) -> StateSnapshot:
        """The state row on the first run. The table itself is never created here: infra/ creates it
        (the app's role is scoped to it), locally ``python -m tools.timebridge init``."""
        try:
            created = self.table.create_entity(
                {"PartitionKey": STATE_PARTITION, "RowKey": STATE_ROW, "OpenRunId": ""}
            )
        except ResourceExistsError:  # another run created it a moment ago
            return self.read_state()
        except ResourceNotFoundError:
            raise ConfigurationError(
                f"The export ledger table '{self.table.table_name}' (EXPORT_LEDGER_TABLE) does not exist in the "
                "storage account. infra/ creates it (azd provision); for local development run "
                "'python -m tools.timebridge init'. Check that EXPORT_LEDGER_TABLE names the table infra/ created."
            ) from None
        return StateSnapshot(None, created["etag"])

    def save_intent(self, intent: Intent, etag: str) -> str:
        """Record (or advance) the open intent; returns the new ETag."""
        return self._replace_state(
            {
                "OpenRunId": intent.run_id,
                "FileName": intent.file_name,
                "CreatedAt": intent.created_at,
                "Status": intent.status.value,
                "MarkedThrough": intent.marked_through,
                "Vanished": ",".join(str(i) for i in intent.vanished),
                "NextLineId": intent.next_line_id,
            },
            etag,
        )

    def close_intent(self, intent: Intent, finished_at: str, etag: str) -> str:
        return self._replace_state(
            {"OpenRunId": "", "LastRunId": intent.run_id, "LastFileName": intent.file_name,
             "LastFinishedAt": finished_at, "NextLineId": intent.next_line_id},
            etag,
        )

    def _replace_state(self, values: dict[str, object], etag: str) -> str:
        entity = {"PartitionKey": STATE_PARTITION, "RowKey": STATE_ROW, **values}
        try:
            result = self.table.update_entity(
                entity, mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified
            )
        except ResourceModifiedError:
            raise ExportStateChangedError(
                "another export run changed the export state meanwhile; this run stops and leaves the work "
                "to it"
            ) from None
        return str(result["etag"])

    # --- entry rows ----------------------------------------------------------------------------
    def exported_ids(self, kind: EntryKind, candidates: Iterable[int]) -> set[int]:
        """The ``candidates`` already in the ledger (one range query over their RowKeys, streamed)."""
        wanted = candidates if isinstance(candidates, SortedIds) else SortedIds(candidates)
        if not len(wanted):
            return set()
        rows = self.table.query_entities(
            "PartitionKey eq @pk and RowKey ge @lo and RowKey le @hi",
            parameters={"pk": kind.value, "lo": _row_key(wanted.lowest), "hi": _row_key(wanted.highest)},
            select=["RowKey"],
        )
        return {entry_id for row in rows if (entry_id := int(row["RowKey"])) in wanted}

    def record(self, kind: EntryKind, ids: Sequence[int], run_id: str, file_name: str, exported_at: str) -> None:
        """One row per exported entry (upserts: repeating this after a crash is harmless)."""
        for start in range(0, len(ids), TRANSACTION_SIZE):
            self.table.submit_transaction(
                [
                    ("upsert", {"PartitionKey": kind.value, "RowKey": _row_key(entry_id), "RunId": run_id,
                                "FileName": file_name, "ExportedAt": exported_at})
                    for entry_id in ids[start : start + TRANSACTION_SIZE]
                ]
            )

    def record_run(
        self, run_id: str, file_name: str, time_count: int, job_count: int, finished_at: str
    ) -> None:
        self.table.upsert_entity(
            {"PartitionKey": RUN_PARTITION, "RowKey": run_id, "FileName": file_name,
             "TimeLedgerEntries": time_count, "JobLedgerEntries": job_count, "FinishedAt": finished_at}
        )

    # --- inactive employees (leavers) -----------------------------------------------------------
    # Employee codes are keys in the ``inactive`` and ``through`` partitions, escaped without ``%``
    # (shared/platform/table_keys.py); rows of earlier versions (``%``-escaped) are still read.
    def inactive_employees(self) -> dict[str, InactiveEmployee]:
        rows = self.table.query_entities("PartitionKey eq @pk", parameters={"pk": INACTIVE_PARTITION})
        found: dict[str, InactiveEmployee] = {}
        for row in rows:
            code = decode_key(row["RowKey"])
            if "%" not in row["RowKey"] or code not in found:  # a current row wins over an earlier one
                found[code] = InactiveEmployee(
                    since=_utc(row["InactiveSince"]),
                    last_new_entries=_utc(row["LastNewEntriesAt"]) if row.get("LastNewEntriesAt") else None,
                )
        return found

    def note_inactive(self, code: str, since: datetime, last_new_entries: datetime | None = None) -> None:
        entity: dict[str, object] = {"PartitionKey": INACTIVE_PARTITION, "RowKey": encode_key(code),
                                     "InactiveSince": since.isoformat()}
        if last_new_entries is not None:
            entity["LastNewEntriesAt"] = last_new_entries.isoformat()
        self.table.upsert_entity(entity)

    def forget_inactive(self, code: str) -> None:
        with suppress(ResourceNotFoundError):
            self.table.delete_entity(INACTIVE_PARTITION, encode_key(code))
        if (earlier := legacy_key(code)) is not None:
            self._forget_legacy(INACTIVE_PARTITION, earlier)

    def _forget_legacy(self, partition: str, key: str) -> None:
        """Delete a row an earlier version keyed with ``%`` — if the service lets a point operation
        reach it (the pitfall the new keys avoid); if not, it stays and a current row wins over it."""
        try:
            self.table.delete_entity(partition, key)
        except ResourceNotFoundError:
            pass
        except HttpResponseError as exc:
            log.warning("export ledger: an earlier row in partition %s could not be removed (%s); "
                        "it is read as superseded", partition, exc.status_code)

    # --- how far each employee's time ledger was exported ----------------------------------------
    def time_marks(self) -> dict[str, int]:
        """Each employee's mark (the highest, when an earlier version's row is also there)."""
        rows = self.table.query_entities("PartitionKey eq @pk", parameters={"pk": THROUGH_PARTITION})
        marks: dict[str, int] = {}
        for row in rows:
            code = decode_key(row["RowKey"])
            marks[code] = max(marks.get(code, -1), int(row["EntryID"]))
        return marks

    def advance_time_marks(self, highest: dict[str, int]) -> None:
        """Raise each employee's mark to ``highest`` (never lower it; upserts in transactions)."""
        known = self.time_marks() if highest else {}
        changes = [(code, entry_id) for code, entry_id in highest.items() if entry_id > known.get(code, -1)]
        for start in range(0, len(changes), TRANSACTION_SIZE):
            self.table.submit_transaction(
                [("upsert", {"PartitionKey": THROUGH_PARTITION, "RowKey": encode_key(code), "EntryID": entry_id})
                 for code, entry_id in changes[start : start + TRANSACTION_SIZE]]
            )

    def last_full_read(self) -> datetime | None:
        try:
            return _utc(self.table.get_entity(STATE_PARTITION, FULL_READ_ROW)["At"])
        except (ResourceNotFoundError, KeyError):
            return None

    def note_full_read(self, at: datetime) -> None:
        self.table.upsert_entity({"PartitionKey": STATE_PARTITION, "RowKey": FULL_READ_ROW, "At": at.isoformat()})

    def entry(self, kind: EntryKind, entry_id: int) -> dict[str, object] | None:
        rows = list(self.table.query_entities(
            "PartitionKey eq @pk and RowKey eq @rk", parameters={"pk": kind.value, "rk": _row_key(entry_id)}
        ))
        return dict(rows[0]) if rows else None


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(str(text))
