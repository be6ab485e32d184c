"""A ledger source whose entries carry a "transferred" flag (SmartTID's ``Transfered``): steps 2
and 7 of the exactly-once protocol (``protocol.py``) for it.

Step 2 reads the untransferred job-ledger entries and the time-ledger entries of each active
employee and each recent leaver (``_employees_to_read``), leaving out what the export ledger already
holds; step 7 marks the job-ledger ids transferred in batches (an entry deleted in SmartTID after
the file was written is recorded, not marked). When the job-ledger answer may have been cut short,
steps 2-9 repeat for the job ledger in the same run (at most ``MAX_CYCLES`` files).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

from shared.errors import ApiRejectedError, ApiUnavailableError, ConfigurationError, ExportFailedError
from shared.export.ledger_format import is_true
from shared.export.ledger_table import EntryKind, InactiveEmployee, Intent, SortedIds
from shared.export.protocol import (
    DELETED_NOTE,
    FULL_READ_EVERY,
    MAX_CYCLES,
    TRIM_EVERY,
    Manifest,
)
from shared.export.receipt import ExportReceipt
from shared.export.spool import LedgerSpool, PreparedLine
from shared.platform.memory import release_freed_memory
from shared.platform.safe_text import visible
from shared.targets.base import Connector, FlaggedConnector, TransferredFlagLedger

if TYPE_CHECKING:
    from shared.export.protocol import Exporter

log = logging.getLogger(__name__)


@dataclass
class NewEntries:
    """What a run read that is not in the export ledger yet, spooled to disk (see ``spool.py``)."""

    spool: LedgerSpool
    #: How many different entries of each kind were read.
    read: dict[EntryKind, int]
    leave_out: dict[EntryKind, SortedIds | set[int]]
    #: Job-ledger entries in the export ledger that SmartTID still returns as untransferred.
    stale_job_ids: list[int]

    @property
    def empty(self) -> bool:
        return all(self.read[kind] == len(self.leave_out[kind]) for kind in EntryKind)


def _flagged(connector: Connector) -> FlaggedConnector:
    if not isinstance(connector, TransferredFlagLedger):
        raise ConfigurationError("this target's connector has no ledger with a transferred flag; its export is "
                                 "chosen by its registry entry (shared/targets/registry.py)")
    return cast(FlaggedConnector, connector)


class FlaggedSource:
    """Entries with a transferred flag: read the unflagged, flag what was written."""

    def __init__(self, exporter: Exporter) -> None:
        self.exporter = exporter
        self._full_read = False  # whether this run read every time ledger in full

    def export(self, connector: Connector, etag: str, recovered: ExportReceipt | None) -> ExportReceipt | None:
        flagged = _flagged(connector)
        first: ExportReceipt | None = None
        self._full_read = False
        for cycle in range(MAX_CYCLES):
            receipt, etag = self._cycle(flagged, etag, with_time=cycle == 0,
                                        recovered_runs=[recovered.run_id] if recovered and cycle == 0 else [])
            first = first or receipt
            if receipt is None or flagged.job_ledger_read_complete:
                break
            log.info("export: SmartTID's job-ledger answer may have been capped; reading it again")
        if self._full_read:
            self.exporter.ledger.note_full_read(self.exporter.clock())
        return first or recovered

    def complete_receipt(self, receipt: ExportReceipt, manifest: Manifest) -> None:
        return None

    def _cycle(self, connector: FlaggedConnector, etag: str, *, with_time: bool,
               recovered_runs: list[str]) -> tuple[ExportReceipt | None, str]:
        """Read, stage, commit and complete one file (steps 2-9)."""
        started, calls_before = time.monotonic(), Counter(connector.calls.counts)
        entries = self._read_new(connector, with_time=with_time)
        with entries.spool:
            notes: list[str] = []
            if entries.stale_job_ids:
                self._mark_stale(connector, entries.stale_job_ids)
                notes.append(f"{len(entries.stale_job_ids)} job ledger entries exported earlier were still "
                             f"untransferred in SmartTID and were marked again: {entries.stale_job_ids}")
            if entries.empty and not (with_time and self.exporter.settings.export_write_empty_file):
                if notes:  # no file, so no receipt: the re-marking is said in the log
                    log.warning("export: nothing new; %s", notes[0])
                else:
                    log.info("export: nothing new")
                return None, etag
            spooled = entries.spool.write(entries.leave_out)
        with spooled:
            intent, manifest = self.exporter._stage(spooled, spooled.notes + notes)
            etag = self.exporter._commit_intent(intent, etag)
            return self.exporter._complete(intent, etag, connector, manifest, spooled,
                                  started=started, calls_before=calls_before, recovered_runs=recovered_runs)

    # --- steps (each a method, so tests can interrupt the run between them) --------------------
    def _read_new(self, connector: FlaggedConnector, *, with_time: bool = True) -> NewEntries:
        """Read the entries, each rendered to disk as it comes (memory stays flat), and find those
        already in the export ledger."""
        spool = LedgerSpool(encoding=self.exporter.settings.export_encoding,
                            decimal_separator=self.exporter.settings.export_decimal_separator)
        try:
            for count, row in enumerate(connector.untransferred_job_ledger_entries(), start=1):
                if not is_true(row.get("Transfered")):
                    spool.add(EntryKind.JOB, row)
                if count % TRIM_EVERY == 0:
                    release_freed_memory()
            leavers: dict[str, set[int]] = {}
            leaver_codes: dict[str, InactiveEmployee] = {}
            if with_time:
                leaver_codes = self._read_time_ledgers(connector, spool, leavers)
            read = {kind: spool.ids(kind) for kind in EntryKind}
            done_time = self.exporter.ledger.exported_ids(EntryKind.TIME, read[EntryKind.TIME])
            done_job = self.exporter.ledger.exported_ids(EntryKind.JOB, read[EntryKind.JOB])
        except BaseException:
            spool.close()
            raise
        for code, ids in leavers.items():
            if ids - done_time:  # a leaver's entries still unexported: keep reading for another grace period
                self.exporter.ledger.note_inactive(code, leaver_codes[code].since,
                                                   last_new_entries=self.exporter.clock())
        return NewEntries(spool, {kind: len(ids) for kind, ids in read.items()},
                          {EntryKind.TIME: done_time, EntryKind.JOB: done_job}, sorted(done_job))

    def _read_time_ledgers(self, connector: FlaggedConnector, spool: LedgerSpool,
                           leavers: dict[str, set[int]]) -> dict[str, InactiveEmployee]:
        """Every employee's time ledger to read (see ``_employees_to_read``) into ``spool``; a few
        employees are read at a time, so only their answers are in memory at once."""
        last_full = self.exporter.ledger.last_full_read()
        codes, leaver_codes = self._employees_to_read(connector, first_run=last_full is None)
        self._full_read = last_full is None or self.exporter.clock() - last_full >= FULL_READ_EVERY
        marks = {} if self._full_read else self.exporter.ledger.time_marks()

        def prepare(row: dict[str, Any]) -> PreparedLine | None:
            return None if is_true(row.get("Transfered")) else spool.prepare(EntryKind.TIME, row)

        def read(code: str) -> list[PreparedLine | None]:
            if code in marks:
                return connector.time_ledger_entries(code, newer_than=marks[code], keep=prepare)
            return connector.time_ledger_entries(code, keep=prepare)

        workers = self.exporter.settings.write_concurrency
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="export-read") as pool:
            for start in range(0, len(codes), workers):
                window = codes[start : start + workers]
                for code, lines in zip(window, pool.map(read, window), strict=True):
                    for line in lines:
                        if line is not None:
                            spool.append(line)
                            if code in leaver_codes:
                                leavers.setdefault(code, set()).add(line.entry_id)
                release_freed_memory()
        return leaver_codes

    def _employees_to_read(
        self, connector: FlaggedConnector, *, first_run: bool = False
    ) -> tuple[list[str], dict[str, InactiveEmployee]]:
        """Employees whose time ledger this run reads, and which of them are leavers.

        Every active employee; and an inactive one (a leaver) from the first run that sees it
        inactive until ``EXPORT_INACTIVE_GRACE_DAYS`` after that — or after the last run that
        still found unexported entries of it, whichever is later. The hours a leaver posted just
        before being deactivated are exported, and late corrections too. On the ``first_run``
        (no full read recorded yet) the employees already inactive are read once and then only
        while entries of theirs turn up: they left before TimeBridge knew them, and reading every
        one of them for a whole grace period would cost one call each, every run.
        """
        now = self.exporter.clock()
        grace = timedelta(days=self.exporter.settings.export_inactive_grace_days)
        known = self.exporter.ledger.inactive_employees()
        codes: list[str] = []
        leavers: dict[str, InactiveEmployee] = {}
        for code, active in connector.employee_codes().items():
            if active:
                if code in known:
                    self.exporter.ledger.forget_inactive(code)
                codes.append(code)
                continue
            seen = known.get(code)
            if seen is None:
                seen = InactiveEmployee(since=now - grace if first_run else now, last_new_entries=None)
                self.exporter.ledger.note_inactive(code, seen.since)
            if now - seen.watched_from <= grace:
                codes.append(code)
                leavers[code] = seen
        return codes, leavers

    def ids_to_mark(self, manifest: Manifest) -> Sequence[int]:
        """The ids step 7 marks transferred in the target (SmartTID: the job-ledger ids)."""
        return manifest.job_ids

    def _mark_batch(self, connector: FlaggedConnector, ids: Sequence[int]) -> None:
        connector.mark_job_ledger_entries_transferred(ids)

    def record_ledger(self, intent: Intent, manifest: Manifest, finished_at: str) -> None:
        self.exporter.ledger.record(EntryKind.TIME, manifest.time_ids, intent.run_id, intent.file_name, finished_at)
        self.exporter.ledger.record(EntryKind.JOB, manifest.job_ids, intent.run_id, intent.file_name, finished_at)
        self.exporter.ledger.advance_time_marks(manifest.time_marks)
        self.exporter.ledger.record_run(intent.run_id, intent.file_name, len(manifest.time_ids), len(manifest.job_ids),
                               finished_at)

    def mark(self, connector: Connector, intent: Intent, manifest: Manifest, batch: Sequence[int]) -> None:
        """Mark a batch; when SmartTID refuses, leave out the entries deleted in SmartTID meanwhile."""
        flagged = _flagged(connector)
        try:
            self._mark_batch(flagged, batch)
            return
        except ApiRejectedError as exc:
            refused = exc
        gone = self._deleted(flagged, manifest, batch)
        if not gone:
            raise ExportFailedError(
                f"SmartTID refused to mark job ledger entries {batch[0]}…{batch[-1]} of {intent.file_name} "
                f"(run {intent.run_id}) as transferred: {refused.message}. The entries still exist in SmartTID; "
                "fix the cause in SmartTID, and the next run continues (see docs/export.md, 'Manual intervention')"
            ) from None
        for entry_id in gone:
            log.warning("export run %s: job ledger entry %s in %s was %s", intent.run_id, entry_id,
                        intent.file_name, DELETED_NOTE)
        intent.vanished = sorted(set(intent.vanished) | set(gone))
        rest = [entry_id for entry_id in batch if entry_id not in gone]
        if rest:
            try:
                self._mark_batch(flagged, rest)
            except ApiRejectedError as exc:
                raise ExportFailedError(
                    f"SmartTID refused to mark job ledger entries {rest[0]}…{rest[-1]} of {intent.file_name} "
                    f"(run {intent.run_id}) as transferred: {exc.message}. Fix the cause in SmartTID, and the "
                    "next run continues"
                ) from None

    def _deleted(self, connector: FlaggedConnector, manifest: Manifest, batch: Sequence[int]) -> list[int]:
        """The ids of ``batch`` that no longer exist in SmartTID (checked per employee)."""
        by_employee: dict[str, list[int]] = {}
        for entry_id, code in sorted(manifest.employee_of_job_entry(set(batch)).items()):
            by_employee.setdefault(code, []).append(entry_id)
        gone: list[int] = []
        for code, ids in by_employee.items():
            try:
                existing = connector.job_ledger_entry_ids(code)
            except (ApiRejectedError, ApiUnavailableError) as exc:
                log.warning("could not check employee %s's job ledger entries: %s", visible(code), visible(str(exc)))
                continue
            gone += [entry_id for entry_id in ids if entry_id not in existing]
        return sorted(gone)

    def _mark_stale(self, connector: FlaggedConnector, ids: list[int]) -> None:
        size = self.exporter.settings.export_mark_batch_size
        for start in range(0, len(ids), size):
            self._mark_batch(connector, ids[start : start + size])
