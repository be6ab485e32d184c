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
   → state ``marked`` (a target without a transferred flag — Tic-Tac, ``sent_ledger.py`` — has
   nothing to mark: what it sent is recorded in step 8);
8. record every entry (time and job) in the export ledger, then the run row and the receipt;
9. close the intent (state row, conditional) and delete the staging blobs.

The protocol is neutral: steps 2 and 7 (and what step 8 records) are its :class:`LedgerSource`'s —
``flagged_source.FlaggedSource`` for entries with a transferred flag (SmartTID: the steps as written
above; when the job-ledger answer may have been cut short, steps 2-9 repeat in the same run, at most
``MAX_CYCLES`` files) and ``sent_ledger.SentLedgerSource`` for a target without one (Tic-Tac:
TimeBridge's own ledger of what it sent, reversal lines for corrections, nothing marked).
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
from contextlib import suppress
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import IO, Any, Protocol

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobClient, BlobServiceClient, ContainerClient, ContentSettings

from shared.errors import ExportFailedError
from shared.export import events
from shared.export.ledger_table import ExportLedger, Intent, RunStatus
from shared.export.receipt import ExportReceipt, ExportStatus, id_range
from shared.export.spool import SpooledFile, md5_of, packed_ids, unpacked_ids
from shared.platform.clock import iso
from shared.platform.config import ExportEncoding, Settings
from shared.targets.base import Connector

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


class LedgerSource(Protocol):
    """What the exactly-once protocol asks of a ledger source (``flagged_source.py``: entries with a
    transferred flag, SmartTID; ``sent_ledger.py``: TimeBridge's own ledger of what it sent)."""

    def export(self, connector: Connector, etag: str, recovered: ExportReceipt | None) -> ExportReceipt | None:
        """Read what is new and export it through the exporter's steps (stage, commit, complete);
        the receipt of the first file written, else ``recovered``."""
        ...

    def ids_to_mark(self, manifest: Manifest) -> Sequence[int]:
        """The ids step 7 marks in the target (none for a source without a flag)."""
        ...

    def mark(self, connector: Connector, intent: Intent, manifest: Manifest, batch: Sequence[int]) -> None:
        """Step 7 for one batch of :meth:`ids_to_mark`."""
        ...

    def record_ledger(self, intent: Intent, manifest: Manifest, finished_at: str) -> None:
        """Step 8: record what the run exported."""
        ...

    def complete_receipt(self, receipt: ExportReceipt, manifest: Manifest) -> None:
        """Add what the source knows to the run's receipt."""
        ...


class Exporter:
    """The exactly-once protocol over a :class:`LedgerSource` (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        service: BlobServiceClient,
        ledger: ExportLedger,
        connector_factory: Callable[[], Connector],
        clock: Callable[[], datetime] = utc_now,
        *,
        source: Callable[[Exporter], LedgerSource],
    ) -> None:
        self.settings = settings
        self.output = service.get_container_client(settings.output_container)
        self.bookkeeping = service.get_container_client(settings.export_state_container)
        self.ledger = ledger
        self.connector_factory = connector_factory
        self.clock = clock
        self._next_line_id = 1  # TimeBridge's line sequence (state row), carried by every intent
        #: where the entries come from and how the target learns they were exported
        self.source: LedgerSource = source(self)

    # --- the run ------------------------------------------------------------------------------
    def run(self) -> ExportReceipt | None:
        """Complete an interrupted run if there is one, then export what is new from the source.

        Returns the receipt of the first file written (or of the completed interrupted run).
        """
        connector = self.connector_factory()
        try:
            recovered, etag = self._recover(connector)
            return self.source.export(connector, etag, recovered)
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
                raise ExportFailedError(f"the staged content of run {intent.run_id} is missing or damaged; "
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
            raise ExportFailedError(f"{intent.file_name} is not in the output container after writing it") from None
        digest, size = hashlib.md5(), 0
        for chunk in downloader.chunks():
            digest.update(chunk)
            size += len(chunk)
        if size != manifest.size or digest.hexdigest() != manifest.md5:
            raise ExportFailedError(
                f"{intent.file_name} in the output container differs from what run {intent.run_id} wrote "
                f"({size} bytes, MD5 {digest.hexdigest()}; expected {manifest.size} bytes, MD5 {manifest.md5}); "
                "nothing was marked transferred"
            )

    def _record_ledger(self, intent: Intent, manifest: Manifest, finished_at: str) -> None:
        """Step 8: what the run exported, into the export ledger (the source says how)."""
        self.source.record_ledger(intent, manifest, finished_at)

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
            ids, size = self.source.ids_to_mark(manifest), self.settings.export_mark_batch_size
            while intent.marked_through < len(ids):
                batch = ids[intent.marked_through : intent.marked_through + size]
                self.source.mark(connector, intent, manifest, batch)
                intent.marked_through += len(batch)
                etag = self.ledger.save_intent(intent, etag)
            intent.status = RunStatus.MARKED
            etag = self.ledger.save_intent(intent, etag)
        finished = self.clock()
        self._record_ledger(intent, manifest, iso(finished))
        receipt = self._receipt_with_source(intent, manifest, connector, started, calls_before, finished,
                                            interrupted)
        receipt.recovered_runs = recovered_runs or []
        self.bookkeeping.upload_blob(receipt_name_for(intent.file_name), receipt.to_json(), overwrite=True,
                                content_settings=JSON)
        etag = self.ledger.close_intent(intent, receipt.finished_at, etag)
        self._next_line_id = max(self._next_line_id, intent.next_line_id)
        self._drop_staging(intent.run_id)
        log.info("export run %s: %s", intent.run_id, receipt.summary())
        events.export_finished(receipt, target=self.settings.target_system)
        return receipt, etag

    def _receipt(self, intent: Intent, manifest: Manifest, connector: Connector, started: float,
                 calls_before: Counter[str], finished: datetime, interrupted: bool) -> ExportReceipt:
        calls = Counter(connector.calls.counts)
        calls.subtract(calls_before)
        by_endpoint = {key: n for key, n in sorted(calls.items()) if n > 0}
        if interrupted:
            status = ExportStatus.COMPLETED_AFTER_INTERRUPTION
        else:
            status = ExportStatus.EXPORTED if manifest.time_ids or manifest.job_ids else ExportStatus.EXPORTED_EMPTY
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

    def _receipt_with_source(self, intent: Intent, manifest: Manifest, connector: Connector, started: float,
                             calls_before: Counter[str], finished: datetime, interrupted: bool) -> ExportReceipt:
        receipt = self._receipt(intent, manifest, connector, started, calls_before, finished, interrupted)
        self.source.complete_receipt(receipt, manifest)
        return receipt

    # --- helpers ------------------------------------------------------------------------------
    def _load_manifest(self, intent: Intent) -> Manifest:
        data = self._download(self.bookkeeping, f"{RUNS_PREFIX}{intent.run_id}/manifest.json")
        if data is None:
            raise ExportFailedError(
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
