"""The export ledger's rows for a source without a "transferred" flag (Tic-Tac), in the same table as
SmartTID's rows (``EXPORT_LEDGER_TABLE``) but in partitions of their own — SmartTID's ``time`` /
``job`` rows are never touched or re-keyed.

Rows (PartitionKey / RowKey; a Tic-Tac row id is a 13-digit string, kept as text, escaped without ``%``):

* ``tictac|row`` / ``<rowid>`` — one per Tic-Tac row ever exported: ``Version`` (1, then +1 per
  repost), ``Fingerprint`` (of the source values that matter), ``Sent`` (JSON: the values of the
  lines last sent, needed to reverse them), ``State`` (``exported`` | ``pending`` | ``reversed``),
  ``Date`` (the entry date: rows dated outside the read window are final), ``Missed`` (consecutive
  daily reconciles that did not return the row), ``RunId``, ``FileName``, ``ExportedAt``.
* ``tictac|held`` / ``<rowid>`` — a row that cannot be mapped yet (unknown user, project or
  activity): ``Row`` (its Tic-Tac fields as JSON) and ``Reason``; listed in every receipt until it
  can be mapped (then exported) or disappears.
* ``tictac|project`` / ``<projid>`` — what one Tic-Tac project list told (``ProjectNumber``,
  ``ActivityTypes`` JSON ``{actid: type}``, ``ActivityNames`` JSON ``{actid: name}``), for rows of
  projects the cross-references do not know (absence projects, projects made by hand), the activity
  types (WorkTypeCode) and names (OperationDescription).
* ``tictac|user`` / ``<userName>`` — what one Tic-Tac user list told (``EmployeeNumber``): the users
  made by hand, linked to the ERP by their employee number before any import linked them.
* ``state`` / ``tictac`` — ``LastReadAt`` (start of the last read whose rows are recorded),
  ``LastReconcileAt`` (the last full-window read), ``CatalogueAt`` (the last project list),
  ``PurgedBefore`` (rows dated before it were removed, see below).

**Retention.** A row dated before the read window (``TICTAC_EXPORT_LOOKBACK_DAYS``) is final: Tic-Tac
is never read for it again, so its ``Sent`` values (employee code, name, hours, remark) are not
needed any more. :meth:`SourceLedger.purge_final_rows` deletes such rows at the daily reconcile and
records the window's start in ``PurgedBefore`` (only when it deleted something); the export never
reads before that date again (a later, longer look-back starts there), so a purged row can never
be exported a second time.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared.platform.table_keys import decode_key, encode_key, legacy_key

ROW_PARTITION = "tictac|row"
HELD_PARTITION = "tictac|held"
PROJECT_PARTITION = "tictac|project"
USER_PARTITION = "tictac|user"
STATE_PARTITION, STATE_ROW = "state", "tictac"
TRANSACTION_SIZE = 100
READERS = 8


class RowState(StrEnum):
    EXPORTED = "exported"  # the values in ``sent`` are in the ERP
    PENDING = "pending"  # exported, then un-attested in Tic-Tac: nothing written until it is attested again
    REVERSED = "reversed"  # deleted (or zeroed) in Tic-Tac: its reversal was written


@dataclass
class SourceRow:
    """What the export ledger remembers of one exported Tic-Tac row."""

    rowid: str
    version: int
    fingerprint: str
    sent: dict[str, Any]
    state: str
    date: str
    missed: int = 0
    run_id: str = ""
    file_name: str = ""

    @property
    def in_erp(self) -> bool:
        """Its last lines are in the ERP (a reversal is owed when it goes)."""
        return self.state in (RowState.EXPORTED, RowState.PENDING)


@dataclass
class Catalogue:
    """Project numbers, activity types and names from the last project list; employee numbers from
    the last user list (userName folded to lower case → employeeNumber)."""

    project_numbers: dict[str, str] = field(default_factory=dict)
    activity_types: dict[str, str] = field(default_factory=dict)
    activity_names: dict[str, str] = field(default_factory=dict)
    user_numbers: dict[str, str] = field(default_factory=dict)


@dataclass
class SourceState:
    last_read_at: datetime | None = None
    last_reconcile_at: datetime | None = None
    catalogue_at: datetime | None = None
    purged_before: date | None = None  # rows dated before it are gone: never read or exported again


def _key(rowid: str) -> str:
    return encode_key(rowid)  # no ``%`` in a key (shared/platform/table_keys.py)


def _final(day: str, before: date) -> bool:
    try:
        return date.fromisoformat(day[:10]) < before
    except ValueError:
        return False  # a date that cannot be read is never treated as final


def _when(value: Any) -> datetime | None:
    return datetime.fromisoformat(str(value)) if value else None


class SourceLedger:
    def __init__(self, table: TableClient) -> None:
        self.table = table

    # --- exported rows ------------------------------------------------------------------------
    def rows(self, rowids: Iterable[str]) -> dict[str, SourceRow]:
        """The ledger rows of ``rowids`` (point reads, ``READERS`` at a time: a delta read returns few rows)."""

        def read(rowid: str) -> SourceRow | None:
            for key in (_key(rowid), legacy_key(rowid)):  # the current key, then an earlier version's
                if key is None:
                    continue
                with suppress(ResourceNotFoundError):
                    return self._row(self.table.get_entity(ROW_PARTITION, key))
            return None

        with ThreadPoolExecutor(max_workers=READERS, thread_name_prefix="ledger-read") as pool:
            return {row.rowid: row for row in pool.map(read, dict.fromkeys(rowids)) if row is not None}

    def all_rows(self) -> dict[str, SourceRow]:
        rows = self.table.query_entities("PartitionKey eq @pk", parameters={"pk": ROW_PARTITION})
        found: dict[str, SourceRow] = {}
        for entity in rows:
            row = self._row(entity)
            if "%" not in entity["RowKey"] or row.rowid not in found:  # a current row wins over an earlier one
                found[row.rowid] = row
        return found

    @staticmethod
    def _row(entity: Any) -> SourceRow:
        return SourceRow(rowid=decode_key(entity["RowKey"]), version=int(entity["Version"]),
                         fingerprint=str(entity["Fingerprint"]), sent=json.loads(entity["Sent"]),
                         state=str(entity["State"]), date=str(entity["Date"]), missed=int(entity.get("Missed") or 0),
                         run_id=str(entity.get("RunId") or ""), file_name=str(entity.get("FileName") or ""))

    def write_rows(self, rows: Iterable[SourceRow], exported_at: str = "") -> None:
        """Upserts in 100-row transactions (repeating them after a crash changes nothing)."""
        entities = [
            {"PartitionKey": ROW_PARTITION, "RowKey": _key(row.rowid), "Version": row.version,
             "Fingerprint": row.fingerprint, "Sent": json.dumps(row.sent, ensure_ascii=False, sort_keys=True),
             "State": row.state, "Date": row.date, "Missed": row.missed, "RunId": row.run_id,
             "FileName": row.file_name, "ExportedAt": exported_at}
            for row in rows
        ]
        self._upsert(entities)

    def set_missed(self, counts: dict[str, int]) -> None:
        """Only the ``Missed`` counter of existing rows (merge)."""
        self._upsert([{"PartitionKey": ROW_PARTITION, "RowKey": _key(rowid), "Missed": n}
                      for rowid, n in counts.items()], mode=UpdateMode.MERGE)

    # --- held rows ----------------------------------------------------------------------------
    def held(self) -> dict[str, tuple[dict[str, Any], str]]:
        rows = self.table.query_entities("PartitionKey eq @pk", parameters={"pk": HELD_PARTITION})
        return {decode_key(row["RowKey"]): (json.loads(row["Row"]), str(row.get("Reason") or "")) for row in rows}

    def hold(self, rows: dict[str, tuple[dict[str, Any], str]]) -> None:
        self._upsert([{"PartitionKey": HELD_PARTITION, "RowKey": _key(rowid),
                       "Row": json.dumps(row, ensure_ascii=False, sort_keys=True), "Reason": reason}
                      for rowid, (row, reason) in rows.items()])

    def release(self, rowids: Iterable[str]) -> None:
        for rowid in rowids:
            for key in (_key(rowid), legacy_key(rowid)):
                if key is not None:
                    with suppress(ResourceNotFoundError):
                        self.table.delete_entity(HELD_PARTITION, key)

    # --- catalogue and state ------------------------------------------------------------------
    def catalogue(self) -> Catalogue:
        catalogue = Catalogue()
        for row in self.table.query_entities("PartitionKey eq @pk", parameters={"pk": PROJECT_PARTITION}):
            projid = decode_key(row["RowKey"])
            catalogue.project_numbers[projid] = str(row.get("ProjectNumber") or "")
            catalogue.activity_types |= json.loads(row.get("ActivityTypes") or "{}")
            catalogue.activity_names |= json.loads(row.get("ActivityNames") or "{}")
        for row in self.table.query_entities("PartitionKey eq @pk", parameters={"pk": USER_PARTITION}):
            catalogue.user_numbers[decode_key(row["RowKey"])] = str(row.get("EmployeeNumber") or "")
        return catalogue

    def save_catalogue(self, projects: dict[str, tuple[str, dict[str, str]]],
                       names: dict[str, dict[str, str]] | None = None) -> None:
        """``projid → (projectNumber, {actid: type})`` and ``projid → {actid: name}`` as one project
        list told them."""
        names = names or {}
        self._upsert([{"PartitionKey": PROJECT_PARTITION, "RowKey": _key(projid), "ProjectNumber": number,
                       "ActivityTypes": json.dumps(types, sort_keys=True),
                       "ActivityNames": json.dumps(names.get(projid, {}), ensure_ascii=False, sort_keys=True)}
                      for projid, (number, types) in projects.items()])

    def save_users(self, numbers: dict[str, str]) -> None:
        """``userName (lower case) → employeeNumber`` as one user list told them; users no longer
        listed are forgotten."""
        old = {decode_key(row["RowKey"]) for row in
               self.table.query_entities("PartitionKey eq @pk", parameters={"pk": USER_PARTITION}, select=["RowKey"])}
        self._upsert([{"PartitionKey": USER_PARTITION, "RowKey": _key(name), "EmployeeNumber": number}
                      for name, number in numbers.items()])
        for name in old - set(numbers):
            with suppress(ResourceNotFoundError):
                self.table.delete_entity(USER_PARTITION, _key(name))

    def state(self) -> SourceState:
        try:
            row = self.table.get_entity(STATE_PARTITION, STATE_ROW)
        except ResourceNotFoundError:
            return SourceState()
        purged = row.get("PurgedBefore")
        return SourceState(_when(row.get("LastReadAt")), _when(row.get("LastReconcileAt")),
                           _when(row.get("CatalogueAt")), date.fromisoformat(str(purged)) if purged else None)

    def purge_final_rows(self, before: date) -> int:
        """Delete the rows dated before ``before`` (the start of the read window: final rows, never
        read again) and remember the date in ``PurgedBefore`` first (the export never reads before it
        again). A row whose date cannot be read is kept. Returns how many rows were deleted."""
        rows = self.table.query_entities("PartitionKey eq @pk and Date ge @lo and Date lt @hi",
                                         parameters={"pk": ROW_PARTITION, "lo": "1000", "hi": before.isoformat()},
                                         select=["PartitionKey", "RowKey", "Date"])
        final = [{"PartitionKey": ROW_PARTITION, "RowKey": row["RowKey"]} for row in rows
                 if _final(str(row.get("Date") or ""), before)]
        if not final:
            return 0  # nothing purged: a longer look-back later may still read these dates
        previous = self.state().purged_before
        if previous is None or previous < before:  # recorded first: a crash after it loses nothing
            self.table.upsert_entity({"PartitionKey": STATE_PARTITION, "RowKey": STATE_ROW,
                                      "PurgedBefore": before.isoformat()}, mode=UpdateMode.MERGE)
        for start in range(0, len(final), TRANSACTION_SIZE):
            self.table.submit_transaction([("delete", entity) for entity in final[start : start + TRANSACTION_SIZE]])
        return len(final)

    def save_state(self, **moments: datetime) -> None:
        """Merge ``last_read_at`` / ``last_reconcile_at`` / ``catalogue_at`` into the state row."""
        names = {"last_read_at": "LastReadAt", "last_reconcile_at": "LastReconcileAt", "catalogue_at": "CatalogueAt"}
        entity: dict[str, Any] = {"PartitionKey": STATE_PARTITION, "RowKey": STATE_ROW}
        entity |= {names[name]: moment.isoformat() for name, moment in moments.items()}
        self.table.upsert_entity(entity, mode=UpdateMode.MERGE)

    def _upsert(self, entities: list[dict[str, Any]], mode: UpdateMode = UpdateMode.REPLACE) -> None:
        unique = list({(e["PartitionKey"], e["RowKey"]): e for e in entities}.values())
        by_partition: dict[str, list[dict[str, Any]]] = {}
        for entity in unique:
            by_partition.setdefault(entity["PartitionKey"], []).append(entity)
        for batch_source in by_partition.values():
            for start in range(0, len(batch_source), TRANSACTION_SIZE):
                self.table.submit_transaction([("upsert", entity, {"mode": mode})
                                               for entity in batch_source[start : start + TRANSACTION_SIZE]])


def row_to_json(row: SourceRow) -> dict[str, Any]:
    return asdict(row)


def row_from_json(data: dict[str, Any]) -> SourceRow:
    return SourceRow(**data)
