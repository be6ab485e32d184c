"""One input file from arrival to outcome: the host-free core of the blob-trigger function.

Order of work (so nothing is lost and nothing is done twice):

1. skip when a receipt for this blob's ETag already exists (a duplicate trigger) — and remove the
   input file if an earlier run stored the outcome but stopped before deleting it;
2. lease the input blob, so a second instance triggered for the same file waits it out;
3. parse (streamed), plan and apply;
4. store the outcome: the archive copy, the error report and the rejected-lines file when any line
   failed, and last the receipt (the marker that the outcome is complete);
5. only then delete the input blob — and only if it is still the same version (ETag).
"""

from __future__ import annotations

import logging
import posixpath
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceModifiedError, ResourceNotFoundError
from azure.storage.blob import BlobClient, BlobServiceClient, ContentSettings

from shared.config import ConfigurationError, Settings
from shared.connectors.base import Connector
from shared.importer import Importer, ImportResult, reject_all
from shared.parsing import ParsedFile, UnreadableFile, parse_file, split_lines
from shared.personal_data import withhold_cpr_numbers
from shared.reports import Receipt, error_report, file_rejection_report, now_iso
from shared.safe_text import formula_line, visible
from shared.secrets import MissingSecretError, SecretStoreUnavailableError
from shared.storage import held_lease

log = logging.getLogger(__name__)

CSV = ContentSettings(content_type="text/csv")
TEXT = ContentSettings(content_type="text/plain; charset=utf-8")
JSON = ContentSettings(content_type="application/json; charset=utf-8")

ConnectorFactory = Callable[[], Connector]


@dataclass(frozen=True)
class FileRun:
    """Names of everything one version (ETag) of one input file produces."""

    name: str
    etag: str

    @property
    def run_id(self) -> str:
        return self.etag.strip('"')

    @property
    def folder(self) -> str:
        return f"{self.name}/{self.run_id}"

    @property
    def basename(self) -> str:
        return posixpath.basename(self.name)

    @property
    def receipt(self) -> str:
        return f"{self.folder}/receipt.json"

    @property
    def archived_copy(self) -> str:
        return f"{self.folder}/{self.basename}"

    @property
    def error_report(self) -> str:
        return f"{self.folder}/errors.txt"

    @property
    def rejected_lines(self) -> str:
        stem, ext = posixpath.splitext(self.basename)
        return f"{self.folder}/{stem}.rejected{ext or '.csv'}"


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
            log.info("%s (ETag %s) was already imported; removing the leftover input file", visible(name), run.run_id)
            self._delete_input(source, run, lease=None)
            return None
        with held_lease(source) as lease:
            if lease is None:
                log.info("%s is being imported by another instance; skipping this trigger", visible(name))
                return None
            receipt = self._import(source, run, properties.size)
            self._delete_input(source, run, lease=lease)
            return receipt

    # --- steps --------------------------------------------------------------------------------
    def _import(self, source: BlobClient, run: FileRun, size: int) -> Receipt:
        started = time.monotonic()
        receipt = Receipt(source=run.name, etag=run.run_id, status="imported", received_at=now_iso())

        def stream() -> Iterable[bytes]:
            return source.download_blob(etag=run.etag, match_condition=MatchConditions.IfNotModified).chunks()

        try:
            if size > self.settings.max_file_bytes:
                raise UnreadableFile(
                    f"the file is {size:,} bytes; the limit is {self.settings.max_file_bytes:,} bytes (MAX_FILE_BYTES)",
                    "split the file into smaller files, or raise MAX_FILE_BYTES in the app settings",
                )
            parsed = parse_file(stream)
        except UnreadableFile as exc:
            return self._reject_file(run, receipt, stream, exc, started)

        receipt.encoding = parsed.encoding
        receipt.lines = parsed.lines_read
        result = self._apply(parsed, receipt)
        receipt.counts = result.line_counts()
        receipt.duration_seconds = round(time.monotonic() - started, 3)
        receipt.notes += _notes(parsed)

        self._upload(self.settings.archive_container, run.archived_copy, stream(), CSV, size)
        receipt.outputs["archived_copy"] = f"{self.settings.archive_container}/{run.archived_copy}"
        if result.errors:
            receipt.status = "imported-with-errors" if any(receipt.counts[k] for k in
                                                           ("created", "updated", "unchanged")) else "rejected"
            rejected = sorted({error.line for error in result.errors})
            formulas: list[int] = []
            self._upload(self.settings.error_container, run.rejected_lines, _pick_lines(stream(), rejected, formulas),
                         CSV)
            self._upload(
                self.settings.error_container,
                run.error_report,
                error_report(receipt, result.errors, posixpath.basename(run.rejected_lines), formulas),
                TEXT,
            )
            receipt.outputs["error_report"] = f"{self.settings.error_container}/{run.error_report}"
            receipt.outputs["rejected_lines"] = f"{self.settings.error_container}/{run.rejected_lines}"
        self._write_receipt(run, receipt)
        log.info(
            "imported %s: %s (API calls: %s)", visible(run.name), receipt.counts, receipt.api_calls.get("total", 0)
        )
        return receipt

    def _apply(self, parsed: ParsedFile, receipt: Receipt) -> ImportResult:
        receipt.notes += withhold_cpr_numbers(parsed, self.settings.send_cpr_number)
        try:
            connector = self.connector_factory()
        except (MissingSecretError, SecretStoreUnavailableError, ConfigurationError) as exc:
            log.error("import of %s stopped: %s", visible(receipt.source), visible(exc))
            return reject_all(parsed, str(exc), "fix the configuration as described, then upload the rejected "
                              "lines again")
        try:
            result = Importer(connector, concurrency=self.settings.write_concurrency).run(parsed)
            receipt.api_calls = {
                "total": connector.calls.total,
                "writes": connector.calls.writes,
                "by_endpoint": dict(sorted(connector.calls.counts.items())),
            }
            return result
        finally:
            connector.close()

    def _reject_file(
        self, run: FileRun, receipt: Receipt, stream: Callable[[], Iterable[bytes]], exc: UnreadableFile, started: float
    ) -> Receipt:
        log.warning("%s was not imported: %s", visible(run.name), visible(exc.reason))
        receipt.status = "rejected-file"
        receipt.notes.append(f"The whole file was not imported: {exc.reason}. What to do: {exc.action}.")
        receipt.duration_seconds = round(time.monotonic() - started, 3)
        error = self.settings.error_container
        self._upload(error, f"{run.folder}/{run.basename}", stream(), CSV)
        self._upload(error, f"{run.folder}/reason.txt",
                     file_rejection_report(run.name, receipt.received_at, exc.reason, exc.action), TEXT)
        receipt.outputs["moved_to"] = f"{error}/{run.folder}/{run.basename}"
        receipt.outputs["error_report"] = f"{error}/{run.folder}/reason.txt"
        self._write_receipt(run, receipt)
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

    def _delete_input(self, source: BlobClient, run: FileRun, lease: object | None) -> None:
        try:
            source.delete_blob(lease=lease, etag=run.etag, match_condition=MatchConditions.IfNotModified)
        except ResourceModifiedError:
            log.info("%s was replaced by a newer upload; leaving the new version for its own import", visible(run.name))
        except ResourceNotFoundError:
            pass
        except HttpResponseError as exc:
            if exc.status_code != 412:  # 412: another instance holds the lease and deletes it itself
                raise
            log.info("%s is leased by another instance, which removes it when done", visible(run.name))


def _pick_lines(chunks: Iterable[bytes], numbers: list[int], formulas: list[int] | None = None) -> Iterator[bytes]:
    """The original bytes of the given physical lines (CRLF endings), streamed; the numbers of the
    lines a spreadsheet would run a formula from are appended to ``formulas``."""
    wanted = set(numbers)
    for number, raw in split_lines(chunks):
        if number in wanted:
            if formulas is not None and formula_line(raw):
                formulas.append(number)
            yield raw + b"\r\n"


def _notes(parsed: ParsedFile) -> list[str]:
    notes = []
    if parsed.encoding != "utf-8":
        notes.append("The file is not valid UTF-8, so it was read as Windows-1252.")
    for record_type, positions in sorted(parsed.ignored_positions.items()):
        listed = ", ".join(str(p) for p in sorted(positions))
        notes.append(
            f"{record_type} lines have values at positions {listed}, whose meaning SmartTID does not document; "
            "they were ignored."
        )
    return notes
