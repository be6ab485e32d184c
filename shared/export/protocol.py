"""The exactly-once export protocol (docs/export.md, "The exactly-once protocol", explains it step by step).

One run, under the export lock (a lease on ``export.lock`` in the export's own container,
EXPORT_STATE_CONTAINER; the ERP sees only its files in the output container):

1. read the state row; if it holds an unfinished intent, *complete* that run first (steps 6-9);
2. read the new entries: untransferred job-ledger entries, and the time-ledger entries with
   ``Transfered = false`` of each active employee and of each recent leaver (see
   ``_employees_to_read``); leave out every entry already in the export ledger;
3. render the file (bytes) and *stage* it: the bytes and a manifest (run id, file name, entry ids,
   MD5) under ``runs/<run id>/`` in EXPORT_STATE_CONTAINER — invisible to the ERP;
4. record the *intent* in the state row (conditional on the ETag read in step 1: a second run
   that got this far at the same time fails here and stops);
5. (from here on a crash is completed by the next run, never started over)
6. write the output file under its deterministic name, create-only (``If-None-Match: *``); on a
   re-run the staged bytes are written, so the file is byte-identical; read it back and compare
   size and MD5 → state ``written``;
7. mark the job-ledger ids transferred in SmartTID in batches, saving progress after each batch
   (an entry deleted in SmartTID after the file was written is recorded, not marked)
   → state ``marked`` (a target without a transferred flag — Tic-Tac, ``tictac_export.py`` — has
   nothing to mark: what it sent is recorded in step 8);
8. record every entry (time and job) in the export ledger, then the run row and the receipt;
9. close the intent (state row, conditional) and delete the staging blobs.

When the job-ledger answer may have been cut short (capped, not paged), steps 2-9 repeat for the
job ledger in the same run until an answer brings nothing new (at most ``MAX_CYCLES`` files).
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
import time
import uuid
from array import array
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import IO, Any, cast

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobClient, BlobServiceClient, ContainerClient, ContentSettings

from shared.errors import ApiRejected, ApiUnavailable, ConfigurationError, ExportFailed
from shared.export import events
from shared.export.ledger_format import is_true
from shared.export.ledger_table import EntryKind, ExportLedger, InactiveEmployee, Intent, RunStatus, SortedIds
from shared.export.receipt import ExportReceipt, id_range
from shared.export.spool import LedgerSpool, PreparedLine, SpooledFile, md5_of, packed_ids, unpacked_ids
from shared.platform.clock import iso
from shared.platform.config import ExportEncoding, Settings
from shared.platform.memory import release_freed_memory
from shared.platform.safe_text import visible
from shared.targets.base import Connector, FlaggedConnector, TransferredFlagLedger

log = logging.getLogger(__name__)

# The export's bookkeeping lives in its own container (EXPORT_STATE_CONTAINER), never beside the
# ERP's files in the output container.
LOCK_BLOB = "export.lock"
RUNS_PREFIX = "runs/"
RECEIPTS_PREFIX = "receipts/"
#: Where versions before EXPORT_STATE_CONTAINER kept the bookkeeping, in the output container
#: (moved by :func:`shared.export.run.move_legacy_bookkeeping`).
LEGACY_PREFIXES = {"_state/runs/": RUNS_PREFIX, "receipts/": RECEIPTS_PREFIX, "_state/export.lock": None}
#: Staging blobs of runs that never recorded their intent are removed after this age (longer than
#: the function timeout, so they cannot belong to a run that is still going).
ORPHAN_AGE = timedelta(hours=1)
#: Rows read between two requests to hand freed memory back to the system (``platform.memory``).
TRIM_EVERY = 500
#: Files one run writes at most while the job-ledger answer may have been capped (see the docstring).
MAX_CYCLES = 20
#: How often a run reads every employee's time ledger in full instead of newest-first down to
#: what it exported (the safety net for the guess that later entries have higher ids).
FULL_READ_EVERY = timedelta(hours=24)
DELETED_NOTE = "deleted in SmartTID after export — reverse it in the ERP if it was posted"

JSON = ContentSettings(content_type="application/json; charset=utf-8")


def utc_now() -> datetime:
    return datetime.now(UTC)


def file_name_for(run_id: str, created: datetime) -> str:
    return f"ledger_{created:%Y%m%dT%H%MZ}_{run_id}.csv"


def receipt_name_for(file_name: str) -> str:
    return f"{RECEIPTS_PREFIX}{file_name}.receipt.json"


@dataclass
class Manifest:
    """Everything needed to finish a run without asking SmartTID again (stored as a staging blob).

    Ids, not entries: the file itself is staged beside it.
    """

    run_id: str
    file_name: str
    created_at: str
    time_ids: Sequence[int]
    job_ids: Sequence[int]
    size: int
    md5: str
    encoding: str
    decimal_separator: str
    notes: list[str] = field(default_factory=list)
    #: Employee code → its job-ledger ids in the file (to check whether an entry whose mark is
    #: refused still exists).
    job_ids_by_employee: dict[str, Sequence[int]] = field(default_factory=dict)
    #: Employee code → its highest time-ledger id in the file (its "exported through" mark).
    time_marks: dict[str, int] = field(default_factory=dict)
    #: Tic-Tac: every line of the file → (record, source row, version, reason), for the receipt.
    lines: list[dict[str, Any]] = field(default_factory=list)
    #: Tic-Tac: the export-ledger writes of the run (per source row: version, fingerprint, the values
    #: sent, state), so an interrupted run is recorded without asking Tic-Tac again.
    source: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> bytes:
        """Compact JSON; id lists packed (``spool.packed_ids``), so no Python object is made per id."""
        values: dict[str, Any] = {item.name: getattr(self, item.name) for item in fields(self)}
        values["time_ids"], values["job_ids"] = packed_ids(self.time_ids), packed_ids(self.job_ids)
        values["job_ids_by_employee"] = {code: packed_ids(ids) for code, ids in self.job_ids_by_employee.items()}
        return json.dumps(values, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        values = json.loads(data)
        values["time_ids"], values["job_ids"] = unpacked_ids(values["time_ids"]), unpacked_ids(values["job_ids"])
        values["job_ids_by_employee"] = {code: unpacked_ids(ids)
                                         for code, ids in (values.get("job_ids_by_employee") or {}).items()}
        # Manifests of runs interrupted under earlier versions map each id to its employee.
        for entry_id, code in (values.pop("job_employees", None) or {}).items():
            if code:
                values["job_ids_by_employee"].setdefault(code, array("q")).append(int(entry_id))
        for entry_id, code in (values.pop("time_employees", None) or {}).items():
            if code:
                marks = values.setdefault("time_marks", {})
                marks[code] = max(marks.get(code, 0), int(entry_id))
        return cls(**values)

    def employee_of_job_entry(self, entry_ids: set[int]) -> dict[int, str]:
        return {entry_id: code for code, ids in self.job_ids_by_employee.items() for entry_id in ids
                if entry_id in entry_ids}


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


class Exporter:
    def __init__(
        self,
        settings: Settings,
        service: BlobServiceClient,
        ledger: ExportLedger,
        connector_factory: Callable[[], Connector],
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.settings = settings
        self.output = service.get_container_client(settings.output_container)
        self.bookkeeping = service.get_container_client(settings.export_state_container)
        self.ledger = ledger
        self.connector_factory = connector_factory
        self.clock = clock
        self._full_read = False  # whether this run read every time ledger in full
        self._next_line_id = 1  # TimeBridge's line sequence (state row), carried by every intent

    # --- the run ------------------------------------------------------------------------------
    def run(self) -> ExportReceipt | None:
        """Complete an interrupted run if there is one, then export what is new.

        Returns the receipt of the first file written (or of the completed interrupted run).
        """
        built = self.connector_factory()
        if not isinstance(built, TransferredFlagLedger):
            built.close()
            raise ConfigurationError("this target's connector has no ledger with a transferred flag; its "
                                     "export is chosen by its registry entry (shared/targets/registry.py)")
        connector = cast(FlaggedConnector, built)
        try:
            recovered, etag = self._recover(connector)
            first: ExportReceipt | None = None
            self._full_read = False
            for cycle in range(MAX_CYCLES):
                receipt, etag = self._cycle(connector, etag, with_time=cycle == 0,
                                            recovered_runs=[recovered.run_id] if recovered and cycle == 0 else [])
                first = first or receipt
                if receipt is None or connector.job_ledger_read_complete:
                    break
                log.info("export: SmartTID's job-ledger answer may have been capped; reading it again")
            if self._full_read:
                self.ledger.note_full_read(self.clock())
            return first or recovered
        finally:
            connector.close()

    def _recover(self, connector: Connector) -> tuple[ExportReceipt | None, str]:
        """Step 1: read the state row; complete an interrupted run (or remove orphaned staging)."""
        state = self.ledger.read_state()
        etag = state.etag
        self._next_line_id = state.next_line_id
        if state.intent is None:
            self._remove_orphans()
            return None, etag
        log.warning("export run %s was interrupted (%s); completing it first",
                    state.intent.run_id, state.intent.status)
        return self._complete(state.intent, etag, connector, None, None)

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
            if entries.empty and not (with_time and self.settings.export_write_empty_file):
                log.info("export: nothing new")
                return None, etag
            spooled = entries.spool.write(entries.leave_out)
        with spooled:
            intent, manifest = self._stage(spooled, spooled.notes + notes)
            etag = self._commit_intent(intent, etag)
            return self._complete(intent, etag, connector, manifest, spooled,
                                  started=started, calls_before=calls_before, recovered_runs=recovered_runs)

    # --- steps (each a method, so tests can interrupt the run between them) --------------------
    def _read_new(self, connector: FlaggedConnector, *, with_time: bool = True) -> NewEntries:
        """Read the entries, each rendered to disk as it comes (memory stays flat), and find those
        already in the export ledger."""
        spool = LedgerSpool(encoding=self.settings.export_encoding,
                            decimal_separator=self.settings.export_decimal_separator)
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
            done_time = self.ledger.exported_ids(EntryKind.TIME, read[EntryKind.TIME])
            done_job = self.ledger.exported_ids(EntryKind.JOB, read[EntryKind.JOB])
        except BaseException:
            spool.close()
            raise
        for code, ids in leavers.items():
            if ids - done_time:  # a leaver's entries still unexported: keep reading for another grace period
                self.ledger.note_inactive(code, leaver_codes[code].since, last_new_entries=self.clock())
        return NewEntries(spool, {kind: len(ids) for kind, ids in read.items()},
                          {EntryKind.TIME: done_time, EntryKind.JOB: done_job}, sorted(done_job))

    def _read_time_ledgers(self, connector: FlaggedConnector, spool: LedgerSpool,
                           leavers: dict[str, set[int]]) -> dict[str, InactiveEmployee]:
        """Every employee's time ledger to read (see ``_employees_to_read``) into ``spool``; a few
        employees are read at a time, so only their answers are in memory at once."""
        last_full = self.ledger.last_full_read()
        codes, leaver_codes = self._employees_to_read(connector, first_run=last_full is None)
        self._full_read = last_full is None or self.clock() - last_full >= FULL_READ_EVERY
        marks = {} if self._full_read else self.ledger.time_marks()

        def prepare(row: dict[str, Any]) -> PreparedLine | None:
            return None if is_true(row.get("Transfered")) else spool.prepare(EntryKind.TIME, row)

        def read(code: str) -> list[PreparedLine | None]:
            if code in marks:
                return connector.time_ledger_entries(code, newer_than=marks[code], keep=prepare)
            return connector.time_ledger_entries(code, keep=prepare)

        workers = self.settings.write_concurrency
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
        now = self.clock()
        grace = timedelta(days=self.settings.export_inactive_grace_days)
        known = self.ledger.inactive_employees()
        codes: list[str] = []
        leavers: dict[str, InactiveEmployee] = {}
        for code, active in connector.employee_codes().items():
            if active:
                if code in known:
                    self.ledger.forget_inactive(code)
                codes.append(code)
                continue
            seen = known.get(code)
            if seen is None:
                seen = InactiveEmployee(since=now - grace if first_run else now, last_new_entries=None)
                self.ledger.note_inactive(code, seen.since)
            if now - seen.watched_from <= grace:
                codes.append(code)
                leavers[code] = seen
        return codes, leavers

    def _stage(self, spooled: SpooledFile, notes: list[str], *, lines: list[dict[str, Any]] | None = None,
               source: dict[str, Any] | None = None, next_line_id: int | None = None) -> tuple[Intent, Manifest]:
        created = self.clock()
        run_id = uuid.uuid4().hex[:12]
        file_name = file_name_for(run_id, created)
        manifest = Manifest(
            run_id=run_id, file_name=file_name, created_at=iso(created), time_ids=spooled.time_ids,
            job_ids=spooled.job_ids, size=spooled.size, md5=spooled.md5,
            encoding=self.settings.export_encoding.value,
            decimal_separator=self.settings.export_decimal_separator, notes=notes,
            job_ids_by_employee=spooled.job_ids_by_employee, time_marks=spooled.time_marks,
            lines=lines or [], source=source or {},
        )
        spooled.file.seek(0)
        self.bookkeeping.upload_blob(f"{RUNS_PREFIX}{run_id}/{file_name}", spooled.file, length=spooled.size,
                                     overwrite=True, content_settings=self._csv_settings())
        self.bookkeeping.upload_blob(f"{RUNS_PREFIX}{run_id}/manifest.json", manifest.to_json(), overwrite=True,
                                content_settings=JSON)
        intent = Intent(run_id=run_id, file_name=file_name, created_at=manifest.created_at,
                        next_line_id=self._next_line_id if next_line_id is None else next_line_id)
        return intent, manifest

    def _commit_intent(self, intent: Intent, etag: str) -> str:
        return self.ledger.save_intent(intent, etag)

    def _write_file(self, intent: Intent, manifest: Manifest, spooled: SpooledFile | None) -> None:
        """Create the output file; an existing one (an earlier attempt's) is left for the check.

        The bytes come from the run's spooled file, or — completing an interrupted run — from the
        staged copy, streamed through a temporary file and checked against the manifest first."""
        blob = self.output.get_blob_client(intent.file_name)
        if spooled is not None:
            spooled.file.seek(0)
            self._create(blob, spooled.file, manifest.size)
            return
        if blob.exists():
            return
        with tempfile.TemporaryFile() as staged:
            try:
                self.bookkeeping.get_blob_client(f"{RUNS_PREFIX}{intent.run_id}/{intent.file_name}") \
                    .download_blob().readinto(staged)
            except ResourceNotFoundError:
                staged.truncate(0)
            staged.seek(0)
            size, md5 = md5_of(staged)
            if (size, md5) != (manifest.size, manifest.md5):
                raise ExportFailed(f"the staged content of run {intent.run_id} is missing or damaged; "
                                   f"{intent.file_name} cannot be written again "
                                   "(see docs/export.md, 'The exactly-once protocol')")
            staged.seek(0)
            self._create(blob, staged, size)

    def _create(self, blob: BlobClient, stream: IO[bytes], size: int) -> None:
        with suppress(ResourceExistsError):
            blob.upload_blob(stream, length=size, overwrite=False, content_settings=self._csv_settings())

    def _verify_file(self, intent: Intent, manifest: Manifest) -> None:
        """Read the output file back in chunks and compare its size and MD5 with the manifest's."""
        try:
            downloader = self.output.get_blob_client(intent.file_name).download_blob()
        except ResourceNotFoundError:
            raise ExportFailed(f"{intent.file_name} is not in the output container after writing it") from None
        digest, size = hashlib.md5(), 0
        for chunk in downloader.chunks():
            digest.update(chunk)
            size += len(chunk)
        if size != manifest.size or digest.hexdigest() != manifest.md5:
            raise ExportFailed(
                f"{intent.file_name} in the output container differs from what run {intent.run_id} wrote "
                f"({size} bytes, MD5 {digest.hexdigest()}; expected {manifest.size} bytes, MD5 {manifest.md5}); "
                "nothing was marked transferred"
            )

    def _ids_to_mark(self, manifest: Manifest) -> Sequence[int]:
        """The ids step 7 marks transferred in the target (SmartTID: the job-ledger ids)."""
        return manifest.job_ids

    def _mark_batch(self, connector: FlaggedConnector, ids: Sequence[int]) -> None:
        connector.mark_job_ledger_entries_transferred(ids)

    def _record_ledger(self, intent: Intent, manifest: Manifest, finished_at: str) -> None:
        self.ledger.record(EntryKind.TIME, manifest.time_ids, intent.run_id, intent.file_name, finished_at)
        self.ledger.record(EntryKind.JOB, manifest.job_ids, intent.run_id, intent.file_name, finished_at)
        self.ledger.advance_time_marks(manifest.time_marks)
        self.ledger.record_run(intent.run_id, intent.file_name, len(manifest.time_ids), len(manifest.job_ids),
                               finished_at)

    # --- completing a run (the first time, or after an interruption) ---------------------------
    def _complete(
        self,
        intent: Intent,
        etag: str,
        connector: Connector,
        manifest: Manifest | None,
        spooled: SpooledFile | None,
        *,
        started: float | None = None,
        calls_before: Counter[str] | None = None,
        recovered_runs: list[str] | None = None,
    ) -> tuple[ExportReceipt, str]:
        started = time.monotonic() if started is None else started
        calls_before = Counter(connector.calls.counts) if calls_before is None else calls_before
        interrupted = manifest is None
        manifest = manifest or self._load_manifest(intent)
        if intent.status is RunStatus.INTENT:
            self._write_file(intent, manifest, spooled)
            self._verify_file(intent, manifest)
            intent.status = RunStatus.WRITTEN
            etag = self.ledger.save_intent(intent, etag)
        if intent.status is RunStatus.WRITTEN:
            ids, size = self._ids_to_mark(manifest), self.settings.export_mark_batch_size
            while intent.marked_through < len(ids):
                batch = ids[intent.marked_through : intent.marked_through + size]
                # only a flagged ledger has ids to mark (a sent ledger's _ids_to_mark is empty)
                self._mark_checked(cast(FlaggedConnector, connector), intent, manifest, batch)
                intent.marked_through += len(batch)
                etag = self.ledger.save_intent(intent, etag)
            intent.status = RunStatus.MARKED
            etag = self.ledger.save_intent(intent, etag)
        finished = self.clock()
        self._record_ledger(intent, manifest, iso(finished))
        receipt = self._receipt(intent, manifest, connector, started, calls_before, finished, interrupted)
        receipt.recovered_runs = recovered_runs or []
        self.bookkeeping.upload_blob(receipt_name_for(intent.file_name), receipt.to_json(), overwrite=True,
                                content_settings=JSON)
        etag = self.ledger.close_intent(intent, receipt.finished_at, etag)
        self._next_line_id = max(self._next_line_id, intent.next_line_id)
        self._drop_staging(intent.run_id)
        log.info("export run %s: %s", intent.run_id, receipt.summary())
        events.export_finished(receipt, target=self.settings.target_system)
        return receipt, etag

    def _mark_checked(self, connector: FlaggedConnector, intent: Intent, manifest: Manifest,
                      batch: Sequence[int]) -> None:
        """Mark a batch; when SmartTID refuses, leave out the entries deleted in SmartTID meanwhile."""
        try:
            self._mark_batch(connector, batch)
            return
        except ApiRejected as exc:
            refused = exc
        gone = self._deleted(connector, manifest, batch)
        if not gone:
            raise ExportFailed(
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
                self._mark_batch(connector, rest)
            except ApiRejected as exc:
                raise ExportFailed(
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
            except (ApiRejected, ApiUnavailable) as exc:
                log.warning("could not check employee %s's job ledger entries: %s", visible(code), visible(str(exc)))
                continue
            gone += [entry_id for entry_id in ids if entry_id not in existing]
        return sorted(gone)

    def _receipt(self, intent: Intent, manifest: Manifest, connector: Connector, started: float,
                 calls_before: Counter[str], finished: datetime, interrupted: bool) -> ExportReceipt:
        calls = Counter(connector.calls.counts)
        calls.subtract(calls_before)
        by_endpoint = {key: n for key, n in sorted(calls.items()) if n > 0}
        if interrupted:
            status = "completed-after-interruption"
        else:
            status = "exported" if manifest.time_ids or manifest.job_ids else "exported-empty"
        return ExportReceipt(
            run_id=intent.run_id,
            file=f"{self.settings.output_container}/{intent.file_name}",
            status=status,
            started_at=manifest.created_at,
            finished_at=iso(finished),
            duration_seconds=round(time.monotonic() - started, 3),
            counts={"time_ledger_entries": len(manifest.time_ids),
                    "job_ledger_entries": len(manifest.job_ids),
                    "lines": len(manifest.time_ids) + len(manifest.job_ids)},
            ids={"time_ledger": id_range(manifest.time_ids), "job_ledger": id_range(manifest.job_ids)},
            bytes=manifest.size,
            md5=manifest.md5,
            encoding=manifest.encoding,
            decimal_separator=manifest.decimal_separator,
            marked_transferred=len(manifest.job_ids) - len(intent.vanished),
            deleted_in_smarttid=list(intent.vanished),
            api_calls={"total": sum(by_endpoint.values()), "by_endpoint": by_endpoint},
            notes=list(manifest.notes) + ([f"job ledger entries {intent.vanished} were {DELETED_NOTE}"]
                                          if intent.vanished else []),
        )

    # --- helpers ------------------------------------------------------------------------------
    def _mark_stale(self, connector: FlaggedConnector, ids: list[int]) -> None:
        size = self.settings.export_mark_batch_size
        for start in range(0, len(ids), size):
            self._mark_batch(connector, ids[start : start + size])

    def _load_manifest(self, intent: Intent) -> Manifest:
        data = self._download(self.bookkeeping, f"{RUNS_PREFIX}{intent.run_id}/manifest.json")
        if data is None:
            raise ExportFailed(
                f"the manifest of interrupted run {intent.run_id} is missing; "
                "see docs/export.md, 'The exactly-once protocol'"
            )
        return Manifest.from_json(data)

    @staticmethod
    def _download(container: ContainerClient, name: str) -> bytes | None:
        try:
            return container.get_blob_client(name).download_blob().readall()
        except ResourceNotFoundError:
            return None

    def _drop_staging(self, run_id: str) -> None:
        for blob in self.bookkeeping.list_blobs(name_starts_with=f"{RUNS_PREFIX}{run_id}/"):
            with suppress(ResourceNotFoundError):
                self.bookkeeping.delete_blob(blob.name)

    def _remove_orphans(self) -> None:
        """Staging blobs of runs that stopped before recording their intent (never in any file)."""
        cutoff = self.clock() - ORPHAN_AGE
        for blob in self.bookkeeping.list_blobs(name_starts_with=RUNS_PREFIX):
            if blob.last_modified and blob.last_modified < cutoff:
                with suppress(ResourceNotFoundError):
                    self.bookkeeping.delete_blob(blob.name)

    def _csv_settings(self) -> ContentSettings:
        charset = "utf-8" if self.settings.export_encoding is ExportEncoding.UTF8_BOM else "windows-1252"
        return ContentSettings(content_type=f"text/csv; charset={charset}")
