"""One input file from arrival to outcome: the host-free core of the blob-trigger function.

Order of work (so nothing is lost and nothing is done twice):

1. skip when a receipt for this blob's ETag already exists (a duplicate trigger) — and remove the
   input file if an earlier run stored the outcome but stopped before deleting it;
2. lease the input blob; a second instance triggered for the same file meanwhile finds the lease taken
   and skips its trigger (the holder finishes the file);
3. parse (streamed), plan and apply;
4. store the outcome: the archive copy, the error report and the rejected-lines file when any line
   failed, and last the receipt (the marker that the outcome is complete);
5. only then delete the input blob — and only if it is still the same version (ETag).
"""

from __future__ import annotations

import hashlib
import logging
import posixpath
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from azure.core import MatchConditions
from azure.core.exceptions import AzureError, HttpResponseError, ResourceModifiedError, ResourceNotFoundError
from azure.storage.blob import BlobClient, BlobLeaseClient, BlobServiceClient, ContentSettings

from shared.errors import ConfigurationError, MissingSecretError, SecretStoreUnavailableError, UnreadableFileError
from shared.importing import events
from shared.importing.deferral import REASONS, Deferrals, PendingEntry, calls_to_start
from shared.importing.deferral import waiting_until as waiting_until_of
from shared.importing.importer import Importer, ImportResult, Outcome, reject_all
from shared.importing.parsing import WINDOWS_1252, ParsedFile, physical_lines
from shared.importing.passes import Batches, in_memory, read_for_import
from shared.importing.personal_data import CprWithholding
from shared.importing.reports import ImportStatus, Receipt, error_report_chunks, file_rejection_report
from shared.platform import telemetry
from shared.platform.clock import now_iso
from shared.platform.config import Settings
from shared.platform.safe_text import formula_line, visible
from shared.platform.storage import held_lease
from shared.records.layouts import RecordType
from shared.records.record import Record
from shared.targets.base import Connector
from shared.targets.factory import ConnectorFactory
from shared.targets.registry import target_settings, target_spec

log = logging.getLogger(__name__)

CSV = ContentSettings(content_type="text/csv")
TEXT = ContentSettings(content_type="text/plain; charset=utf-8")
JSON = ContentSettings(content_type="application/json; charset=utf-8")




#: A path segment kept as it is in output names: letters, digits and a few punctuation marks (never
#: ``~``, which marks a shortened name, and never control, format or bidi characters).
_PLAIN_SEGMENT = re.compile(r"^\w[\w .,()+@=&'-]*$")
_NOT_PLAIN = re.compile(r"[^\w.()+@=&'-]+")
MAX_PLAIN_NAME, MAX_PLAIN_SEGMENT, MAX_SEGMENTS = 200, 120, 8
SHORT_NAME = 80


def output_folder(name: str) -> str:
    """Where the outputs of input ``name`` go: the name itself when it is plain (``jobs.csv``,
    ``2026/11/jobs.csv``), otherwise a shortened form made of safe characters plus ``~`` and a hash of
    the original name, so every output name stays within Azure Storage's rules and no two inputs share
    a folder. The receipt keeps the original name."""
    segments = name.split("/")
    if len(name) <= MAX_PLAIN_NAME and len(segments) <= MAX_SEGMENTS and all(map(_plain, segments)):
        return name
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"{_flatten(name) or 'file'}~{digest}"


def _plain(segment: str) -> bool:
    return (len(segment) <= MAX_PLAIN_SEGMENT and bool(_PLAIN_SEGMENT.match(segment))
            and not segment.endswith((".", " ")))


def _flatten(text: str) -> str:
    return _NOT_PLAIN.sub("_", text).strip("._ -")[:SHORT_NAME].rstrip("._ -")


@dataclass(frozen=True)
class FileRun:
    """Names of everything one version (ETag) of one input file produces.

    ``<folder>/<etag>/`` holds the product's files under fixed names (``receipt.json``,
    ``errors.txt``, ``reason.txt``, ``<stem>.rejected<ext>``) and the original bytes under
    ``original/``, so no input name can collide with an output.
    """

    name: str
    etag: str

    @property
    def run_id(self) -> str:
        return self.etag.strip('"')

    @property
    def renamed(self) -> bool:
        return output_folder(self.name) != self.name

    @property
    def folder(self) -> str:
        return f"{output_folder(self.name)}/{self.run_id}"

    @property
    def basename(self) -> str:
        last = self.name.rsplit("/", 1)[-1]
        return (_flatten(last) or "file.csv") if self.renamed else last

    @property
    def receipt(self) -> str:
        return f"{self.folder}/receipt.json"

    @property
    def original(self) -> str:
        return f"{self.folder}/original/{self.basename}"

    @property
    def error_report(self) -> str:
        return f"{self.folder}/errors.txt"

    @property
    def reason(self) -> str:
        return f"{self.folder}/reason.txt"

    @property
    def rejected_lines(self) -> str:
        return self._lines_file("rejected")

    @property
    def deferred_lines(self) -> str:
        return self._lines_file("deferred")

    def _lines_file(self, kind: str) -> str:
        """``<folder>/<stem>.<kind><ext>``: some of the original's lines, named after it."""
        stem, ext = posixpath.splitext(self.basename)
        return f"{self.folder}/{stem}.{kind}{ext or '.csv'}"


class Intake:
    def __init__(self, settings: Settings, service: BlobServiceClient, connector_factory: ConnectorFactory) -> None:
        self.settings = settings
        self.service = service
        self.connector_factory = connector_factory

    def _blob(self, container: str, name: str) -> BlobClient:
        return self.service.get_blob_client(container, name)

    def process(self, name: str) -> Receipt | None:
        """Import the input blob ``name``; returns its receipt (None if there was nothing to do)."""
        source = self._blob(self.settings.input_container, name)
        try:
            properties = source.get_blob_properties()
        except ResourceNotFoundError:
            log.info("%s is no longer in the input container; nothing to do", visible(name))
            return None
        run = FileRun(name, properties.etag)
        if self._blob(self.settings.archive_container, run.receipt).exists():
            log.info("%s (ETag %s) was already imported; removing the leftover input file", visible(name),
                     run.run_id)
            self._delete_input(source, run, lease=None)
            return None
        with held_lease(source) as lease:
            if lease is None:
                log.info("%s is being imported by another instance; skipping this trigger", visible(name))
                return None
            receipt = self._import_in_turn(source, run, properties.size)
            self._delete_input(source, run, lease=lease)
            return receipt

    # --- steps --------------------------------------------------------------------------------
    def _import(self, source: BlobClient, run: FileRun, size: int) -> Receipt:
        started = time.monotonic()
        receipt = Receipt(source=run.name, etag=run.run_id, status=ImportStatus.IMPORTED, received_at=now_iso(),
                          folder=run.folder)
        if run.renamed:
            receipt.notes.append(f"The file name cannot be used as it is in output names; the outputs are stored "
                                 f"under {run.folder}/.")

        def stream() -> Iterable[bytes]:
            return source.download_blob(etag=run.etag, match_condition=MatchConditions.IfNotModified).chunks()

        if size > self.settings.max_file_bytes:
            return self._reject_file(run, receipt, stream, UnreadableFileError(
                f"the file is {size:,} bytes; the limit is {self.settings.max_file_bytes:,} bytes (MAX_FILE_BYTES)",
                "split the file into smaller files, or raise MAX_FILE_BYTES in the app settings",
            ), started)
        connector, problem = connect(self.connector_factory, receipt.source)
        waiting_until = ""
        try:
            try:
                parsed, batches = read_file(self.settings, connector, stream, size)
            except UnreadableFileError as exc:
                return self._reject_file(run, receipt, stream, exc, started)
            except AzureError:
                raise  # storage trouble: the host retries, the input stays where it is
            except Exception as exc:  # last resort: the file is stored with a reason, never left behind
                log.exception("reading %s failed with an unexpected %s", visible(run.name), type(exc).__name__)
                return self._reject_file(run, receipt, stream, UnreadableFileError(
                    f"TimeBridge could not read the file because of an internal error ({type(exc).__name__})",
                    "upload the file again; if it fails again, send this report and the file to TimeBridge support",
                ), started)
            result, waiting_until = apply_parsed(self.settings, connector, problem, parsed, receipt, batches,
                                                 deadline=started + self.settings.import_time_limit_seconds)
        finally:
            if connector is not None:
                connector.close()

        receipt.encoding = parsed.encoding
        receipt.lines = parsed.lines_read
        receipt.windows_1252_lines = line_ranges(parsed.fallback_lines)
        receipt.counts = result.line_counts()
        receipt.duration_seconds = round(time.monotonic() - started, 3)
        receipt.notes += _notes(parsed) + result.notes

        self._upload(self.settings.archive_container, run.original, stream(), CSV, size)
        receipt.outputs["archived_copy"] = f"{self.settings.archive_container}/{run.original}"
        if result.errors:
            applied = any(receipt.counts[k] for k in ("created", "updated", "unchanged"))
            receipt.status = ImportStatus.IMPORTED_WITH_ERRORS if applied else ImportStatus.REJECTED
            rejected = {line for error in result.errors for line in parsed.span(error.line)}
            formulas: list[int] = []
            self._upload(self.settings.error_container, run.rejected_lines,
                         _pick_lines(stream(), rejected, formulas), CSV)
            self._upload(
                self.settings.error_container,
                run.error_report,
                error_report_chunks(receipt, result.errors, posixpath.basename(run.rejected_lines), formulas),
                TEXT,
            )
            receipt.outputs["error_report"] = f"{self.settings.error_container}/{run.error_report}"
            receipt.outputs["rejected_lines"] = f"{self.settings.error_container}/{run.rejected_lines}"
        if result.has_deferred():
            self._keep_deferred(run, receipt, stream, parsed, result, waiting_until)
        self._write_receipt(run, receipt)
        log.info(
            "imported %s: %s (API calls: %s)", visible(run.name), receipt.counts, receipt.api_calls.get("total", 0)
        )
        events.import_finished(receipt, target=self.settings.target_system, errors=result.errors)
        return receipt

    # --- a target with a daily call limit: one import at a time, deferred lines in order -----------
    def _deferrals(self) -> Deferrals:
        return Deferrals(self.service, self.settings.archive_container, self.settings.target_system)

    def _import_in_turn(self, source: BlobClient, run: FileRun, size: int) -> Receipt:
        """Import now, or — while older lines of this target wait, or another import of it runs —
        queue the whole file behind them (old ERP data must never overwrite new)."""
        deferrals = self._deferrals()
        if not target_spec(self.settings.target_system).call_limited and not deferrals.entries():
            return self._import(source, run, size)  # nothing waits: imports of SmartTID run side by side
        with deferrals.turn() as turn:
            pending = deferrals.entries() if turn is not None else []
            if turn is not None and not pending:
                self._turn_started = time.time_ns()  # orders a remainder before every file queued later
                return self._import(source, run, size)
            behind = pending[-1].source if pending else "an import of the same target that is running"
            return self._queue(source, run, size, deferrals, behind)

    def _queue(self, source: BlobClient, run: FileRun, size: int, deferrals: Deferrals, behind: str) -> Receipt:
        def stream() -> Iterable[bytes]:
            return source.download_blob(etag=run.etag, match_condition=MatchConditions.IfNotModified).chunks()

        receipt = Receipt(source=run.name, etag=run.run_id, status=ImportStatus.QUEUED, received_at=now_iso(),
                          folder=run.folder)
        lines = sum(1 for line in physical_lines(stream()) if line.content.strip(b" \t;"))
        self._upload(self.settings.archive_container, run.original, stream(), CSV, size)
        self._upload(self.settings.archive_container, run.deferred_lines, stream(), CSV, size)
        target = target_spec(self.settings.target_system).display_name
        receipt.lines = lines
        receipt.counts = {"deferred": lines}
        receipt.outputs["archived_copy"] = f"{self.settings.archive_container}/{run.original}"
        receipt.deferred = {"lines": lines, "next_attempt_after": "", "queued_behind": visible(behind),
                            "file": f"{self.settings.archive_container}/{run.deferred_lines}"}
        receipt.notes.append(f"The whole file waits behind {visible(behind)}, whose lines are not all in {target} "
                             "yet: files are applied in the order they arrive, so older data never overwrites "
                             "newer. It is applied automatically; nothing to do.")
        since = now_iso()
        deferrals.save(PendingEntry(deferrals.entry_name(time.time_ns(), run.run_id), run.name, run.folder,
                                    run.deferred_lines, [], lines, "", behind, deferred_since=since, reason="queued"))
        self._write_receipt(run, receipt)
        log.warning("%s waits behind %s (%d lines)", visible(run.name), visible(behind), lines)
        telemetry.deferral(file=run.name, etag=run.run_id, target=self.settings.target_system, status="deferred",
                           records_pending=lines, deferred_since=since, reason="queued")
        return receipt

    def _keep_deferred(self, run: FileRun, receipt: Receipt, stream: Callable[[], Iterable[bytes]],
                       parsed: ParsedFile, result: ImportResult, waiting_until: str) -> None:
        """The lines that did not fit: their original bytes beside the receipt, a pending entry, the
        receipt's count and note. Nothing goes to the error container."""
        waiting = sorted({line for first in result.deferred_lines for line in parsed.span(first)})
        self._upload(self.settings.archive_container, run.deferred_lines,
                     _pick_lines(stream(), set(waiting), []), CSV)
        count = receipt.counts.get("deferred", 0)
        applied = any(receipt.counts.get(k) for k in ("created", "updated", "unchanged"))
        receipt.status = ImportStatus.PARTIALLY_APPLIED if applied else ImportStatus.DEFERRED
        receipt.deferred = {"lines": count, "next_attempt_after": waiting_until,
                            "file": f"{self.settings.archive_container}/{run.deferred_lines}"}
        receipt.notes.append(deferral_note(self.settings, result, count, waiting_until))
        deferrals = self._deferrals()
        started = getattr(self, "_turn_started", None) or time.time_ns()
        since, reason = now_iso(), REASONS.get(result.stopped_by, "call-budget")
        deferrals.save(PendingEntry(deferrals.entry_name(started, run.run_id), run.name, run.folder,
                                    run.deferred_lines, waiting, count, waiting_until,
                                    calls_to_start=result.calls_to_start,
                                    deferred_since=since, reason=reason))
        log.warning("%s: %d lines wait (%s; first calls expected to fit after %s)", visible(run.name), count, reason,
                    waiting_until or "the next run")
        telemetry.deferral(file=run.name, etag=run.run_id, target=self.settings.target_system, status="deferred",
                           records_pending=count, deferred_since=since, reason=reason)

    def _reject_file(
        self, run: FileRun, receipt: Receipt, stream: Callable[[], Iterable[bytes]], exc: UnreadableFileError,
        started: float
    ) -> Receipt:
        log.warning("%s was not imported: %s", visible(run.name), visible(exc.reason))
        receipt.status = ImportStatus.REJECTED_FILE
        receipt.notes.append(f"The whole file was not imported: {exc.reason}. What to do: {exc.action}.")
        receipt.duration_seconds = round(time.monotonic() - started, 3)
        error = self.settings.error_container
        self._upload(error, run.original, stream(), CSV)
        target = target_spec(self.settings.target_system).display_name
        self._upload(error, run.reason, file_rejection_report(run.name, receipt.received_at, exc.reason, exc.action,
                                                             target), TEXT)
        receipt.outputs["moved_to"] = f"{error}/{run.original}"
        receipt.outputs["error_report"] = f"{error}/{run.reason}"
        self._write_receipt(run, receipt)
        events.import_finished(receipt, target=self.settings.target_system)
        return receipt

    def _write_receipt(self, run: FileRun, receipt: Receipt) -> None:
        self._upload(self.settings.archive_container, run.receipt, receipt.to_json(), JSON)

    def _upload(
        self,
        container: str,
        name: str,
        data: bytes | Iterable[bytes],
        settings: ContentSettings,
        length: int | None = None,
    ) -> None:
        self._blob(container, name).upload_blob(data, length=length, overwrite=True, content_settings=settings)

    def _delete_input(self, source: BlobClient, run: FileRun, lease: BlobLeaseClient | None) -> None:
        try:
            source.delete_blob(lease=lease, etag=run.etag, match_condition=MatchConditions.IfNotModified)
        except ResourceModifiedError:
            log.info("%s was replaced by a newer upload; leaving the new version for its own import",
                     visible(run.name))
        except ResourceNotFoundError:
            pass
        except HttpResponseError as exc:
            if exc.status_code != 412:  # 412: another instance holds the lease and deletes it itself
                raise
            log.info("%s is leased by another instance, which removes it when done", visible(run.name))


def deferral_note(settings: Settings, result: ImportResult, count: int, waiting_until: str) -> str:
    """The receipt's sentence on lines that wait, naming what actually stopped the import."""
    target = target_spec(settings.target_system).display_name
    when = (f"as soon as the budget has room (the first of them are expected to fit after {waiting_until})"
            if waiting_until else "at the next run of the resume_deferred timer (RESUME_SCHEDULE)")
    tail = f"{count} lines wait and are applied automatically {when}, in file order; nothing to do."
    if result.stopped_by == "time":
        return (f"The import stopped writing after its time limit ({settings.import_time_limit_seconds:,} s, "
                f"IMPORT_TIME_LIMIT_SECONDS, set within the function timeout): {tail}")
    if result.stopped_by == "limit":
        return f"{target} refused a call because its own daily call limit was reached (HTTP 429): {tail}"
    if result.stopped_by == "retries":
        return (f"{target} kept failing and the retries used up the calls reserved for this import (no call is "
                f"made beyond a reservation): {tail}")
    budget = target_settings(settings).call_budget_text()
    share = f" ({budget})" if budget else ""
    return (f"TimeBridge's share of {target}'s daily calls{share} has no room for more calls now — the calls of "
            f"the last 24 hours use it: {tail}")


def read_file(settings: Settings, connector: Connector | None, stream: Callable[[], Iterable[bytes]],
              size: int = 0) -> tuple[ParsedFile, Batches]:
    """Read the file for an import: its errors and facts, and how to read its records in batches.

    A file is scanned once (each line only keyed) and then read again in batches, each line checked
    as its batch is read (:mod:`shared.importing.passes`), so memory does not grow with it. Only for
    a target whose job create carries the job's operations (Tic-Tac: a project's POST carries its
    activities) the file is parsed whole, up to ``passes.WHOLE_FILE_LIMIT`` (a larger one is
    refused before anything is written).
    """
    fold = connector.codes_case_insensitive if connector else False
    target = target_spec(settings.target_system).display_name
    return read_for_import(stream, fold=fold, target=target, size=size,
                           whole=connector is not None and connector.inline_children)


@dataclass
class Run:
    """One run of the import's plan over a file: its result, the notes of the CPR rule, and the
    importer (None when there was no connector: every line was rejected with the problem)."""

    result: ImportResult
    notes: list[str]
    importer: Importer | None


def run_import(connector: Connector | None, problem: str, parsed: ParsedFile, batches: Batches, *,
               send_cpr_number: bool, concurrency: int, target: str, dry_run: bool = False,
               deadline: float | None = None, on_outcome: Callable[[Outcome], None] | None = None,
               then: str = "upload the rejected lines again") -> Run:
    """The one function that plans a file and — unless ``dry_run`` — applies it, for the blob trigger,
    the resume timer, the validate drop zone and the CLI: the CPR rule first (``send_cpr_number``),
    every line rejected with ``problem`` when there is no connector (``then``: what to do after fixing
    the configuration), ``deadline`` (``time.monotonic()``) after which nothing more is written,
    ``on_outcome`` told of every line's outcome as it is decided."""
    withholding = CprWithholding(send_cpr_number)

    def prepared(wanted: frozenset[RecordType]) -> Iterator[list[Record]]:
        for batch in batches(wanted):
            for record in batch:
                withholding(record)
            yield batch

    if connector is None:
        result = reject_all(parsed, problem, f"fix the configuration as described, then {then}", prepared)
        return Run(result, withholding.notes(), None)
    importer = Importer(connector, concurrency=concurrency, deadline=deadline, dry_run=dry_run, target_name=target,
                        on_outcome=on_outcome)
    result = importer.run_batches(parsed, prepared)
    return Run(result, withholding.notes(), importer)


def apply_parsed(settings: Settings, connector: Connector | None, problem: str, parsed: ParsedFile,
                 receipt: Receipt, batches: Batches | None = None, *,
                 deadline: float | None = None) -> tuple[ImportResult, str]:
    """Plan and apply a file (a new file, or lines resumed after a deferral) with :func:`run_import`,
    the API calls into the receipt. ``batches``: its records (default: ``parsed.records``, a file
    parsed whole). Returns the result and, when lines were deferred, when they are expected to fit
    ("" if none)."""
    notes_at = len(receipt.notes)
    run = run_import(connector, problem, parsed, batches or in_memory(parsed), send_cpr_number=settings.send_cpr_number,
                     concurrency=settings.write_concurrency, target=target_spec(settings.target_system).display_name,
                     deadline=deadline)
    receipt.notes[notes_at:notes_at] = run.notes
    result = run.result
    if connector is None:
        return result, ""
    receipt.api_calls = {
        "total": connector.calls.total,
        "writes": connector.calls.writes,
        "by_endpoint": dict(sorted(connector.calls.counts.items())),
    }
    if result.has_deferred():
        result.calls_to_start = calls_to_start(connector, result)
    return result, waiting_until_of(connector, result)


def connect(connector_factory: ConnectorFactory, source: str) -> tuple[Connector | None, str]:
    """The target's connector, or None and the reason it cannot be built (a secret or a setting)."""
    try:
        return connector_factory(), ""
    except (MissingSecretError, SecretStoreUnavailableError, ConfigurationError) as exc:
        log.error("import of %s stopped: %s", visible(source), visible(exc))
        return None, str(exc)


def _pick_lines(chunks: Iterable[bytes], wanted: set[int], formulas: list[int]) -> Iterator[bytes]:
    """The original bytes of the given physical lines, line endings included (byte-exact), streamed;
    the numbers of the lines a spreadsheet would run a formula from are appended to ``formulas``."""
    for line in physical_lines(chunks):
        if line.number in wanted:
            if formula_line(line.content):
                formulas.append(line.number)
            yield line.raw


def line_ranges(numbers: list[int], limit: int = 50) -> str:
    """``"3, 7-9, 12"`` for a sorted list of line numbers (the first ``limit`` ranges)."""
    ranges: list[list[int]] = []
    for number in numbers:
        if ranges and number == ranges[-1][1] + 1:
            ranges[-1][1] = number
        else:
            ranges.append([number, number])
    text = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in ranges[:limit])
    return text + (f", … ({len(numbers):,} lines in all)" if len(ranges) > limit else "")


def _notes(parsed: ParsedFile) -> list[str]:
    notes = []
    if parsed.fallback_lines:
        if parsed.encoding == WINDOWS_1252:  # every line: there are no "other lines" to speak of
            notes.append("The file is not valid UTF-8, so it was read as Windows-1252.")
        else:
            notes.append(f"Lines {line_ranges(parsed.fallback_lines)} are not valid UTF-8, so they were read as "
                         "Windows-1252; the other lines were read as UTF-8.")
    for record_type, positions in sorted(parsed.ignored_positions.items()):
        listed = ", ".join(str(p) for p in sorted(positions))
        which = f"positions {listed}, whose meaning" if len(positions) > 1 else f"position {listed}, whose meaning"
        notes.append(f"{record_type} lines have values at {which} the file format (the parameters of SmartTID's "
                     "create functions) does not define; they were ignored.")
    return notes
