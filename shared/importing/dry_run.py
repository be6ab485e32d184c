"""The dry run: what a file *would* do to the target, found with reads only — zero writes.

Used by the ``validate`` drop zone (a blob trigger on ``VALIDATE_CONTAINER``) and by the operator
CLI (``python -m tools.timebridge validate FILE``). The plan is the real import's plan
(:class:`shared.importing.importer.Importer` with ``dry_run=True``), so the per-line answer is what the real
import then does — except where the target itself decides on a write (it may still refuse a value).

A report per file, human-readable text plus the same as JSON:
per line ``create`` / ``update`` (each changed field old → new) / ``unchanged`` / ``reject`` (with
the reason and what to do), and the counts, the reads made and the writes the import would need.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
from azure.storage.blob import BlobClient, BlobServiceClient, ContentSettings

from shared.errors import UnreadableFile
from shared.importing.importer import Importer, ImportResult, LineStatus, Outcome, reject_all
from shared.importing.intake import FileRun, connect
from shared.importing.parsing import ParsedFile, parse_file
from shared.importing.personal_data import CPR_FIELD, WITHHELD, withhold_cpr_numbers
from shared.importing.reports import describe_error
from shared.platform.clock import now_iso
from shared.platform.config import Settings
from shared.platform.safe_text import json_visible, visible
from shared.records.values import Value
from shared.targets.base import Connector
from shared.targets.registry import target_spec

log = logging.getLogger(__name__)

#: Metadata that marks a blob as a TimeBridge report, so the drop zone never validates its own output.
REPORT_MARKER = {"timebridge": "dry-run-report"}
TEXT = ContentSettings(content_type="text/plain; charset=utf-8")
JSON = ContentSettings(content_type="application/json; charset=utf-8")

ACTIONS = {LineStatus.CREATED: "create", LineStatus.UPDATED: "update", LineStatus.UNCHANGED: "unchanged",
           LineStatus.REJECTED: "reject"}


@dataclass
class DryRunReport:
    source: str
    target: str
    checked_at: str
    encoding: str = ""
    lines: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    reads: int = 0
    writes_needed: int = 0
    notes: list[str] = field(default_factory=list)
    file_problem: str = ""  # the whole file cannot be imported (and why)

    def to_json(self) -> bytes:
        """The report as JSON; hidden characters (of a blob name, a value, a target's answer) are written
        as ``\\uXXXX`` escapes, as in the receipts, so the document cannot hide or forge text."""
        return json_visible(json.dumps(self.__dict__, indent=2, ensure_ascii=False, default=_plain)).encode("utf-8")

    def to_text(self) -> bytes:
        counts = self.counts
        out = [
            "TimeBridge dry run — nothing was written",
            "",
            f"File:      {visible(self.source)}",
            f"Target:    {self.target}",
            f"Checked:   {self.checked_at}",
        ]
        if self.file_problem:
            out += ["", f"The whole file would be rejected: {visible(self.file_problem)}"]
            return ("\n".join(out) + "\n").encode("utf-8-sig")
        if "readable" in counts:  # the offline check: the target was not asked
            out += [f"Lines:     readable {counts['readable']}, reject {counts.get('reject', 0)} (what the readable "
                    "lines would change is not known without asking the target)", ""]
        else:
            out += [
                f"Lines:     would create {counts.get('create', 0)}, update {counts.get('update', 0)}, leave "
                f"{counts.get('unchanged', 0)} unchanged, reject {counts.get('reject', 0)}",
                f"Calls:     {self.reads} reads for this check; the import would need {self.writes_needed} writes",
                "",
            ]
        out += [f"Note: {visible(note)}" for note in self.notes]
        for entry in self.lines:
            head = f"Line {entry['line']} ({visible(entry['record'])}): {entry['action']}"
            if entry["action"] == "update":
                head += " — " + "; ".join(f"{change['field']}: {_shown(change['from'])} → {_shown(change['to'])}"
                                          for change in entry["changes"])
            out.append(head)
            out += [f"    {reason}" for reason in entry.get("reasons", [])]
        return ("\n".join(out) + "\n").encode("utf-8-sig")


def build_report(source: str, target: str, parsed: ParsedFile, result: ImportResult, reads: int,
                 actions: dict[LineStatus, str] = ACTIONS) -> DryRunReport:
    report = DryRunReport(source=source, target=target, checked_at=now_iso(), encoding=parsed.encoding,
                          reads=reads, notes=list(result.notes))
    by_line: dict[int, dict[str, Any]] = {}
    for outcome in result.outcomes:
        if outcome.status is LineStatus.REJECTED:
            continue  # the errors below say why
        for line in outcome.record.lines:
            entry: dict[str, Any] = {"line": line, "record": outcome.record.describe(),
                                     "action": actions[outcome.status]}
            if outcome.status is LineStatus.UPDATED:
                entry["changes"] = [{"field": name, "from": _reported(name, outcome.before.get(name)),
                                     "to": _reported(name, outcome.record.values[name])}
                                    for name in outcome.changed]
            by_line[line] = entry
        if outcome.status in (LineStatus.CREATED, LineStatus.UPDATED):
            report.writes_needed += 1
    for error in result.errors:
        entry = by_line.setdefault(error.line, {"line": error.line, "record": str(error.record_type),
                                                "action": "reject", "reasons": []})
        entry["action"], entry["changes"] = "reject", []
        entry.setdefault("reasons", []).append(describe_error(source, error))
    report.lines = [by_line[line] for line in sorted(by_line)]
    for entry in report.lines:
        report.counts[entry["action"]] = report.counts.get(entry["action"], 0) + 1
    return report


def dry_run(parsed: ParsedFile, connector: Connector | None, problem: str, *, source: str, target: str,
            concurrency: int, send_cpr_number: bool) -> DryRunReport:
    """Plan ``parsed`` against the target with reads only (``connector`` None: it could not be built).

    The CPR rule of the real import applies first (``send_cpr_number``, the setting ``SEND_CPR_NUMBER``):
    off, the CPR numbers are dropped before planning, so the plan is the import's plan."""
    notes = withhold_cpr_numbers(parsed, send_cpr_number)
    if connector is None:
        result = reject_all(parsed, problem, "fix the configuration as described, then check the file again")
    else:
        result = Importer(connector, concurrency=concurrency, dry_run=True, target_name=target).run(parsed)
    report = build_report(source, target, parsed, result, connector.calls.total if connector else 0)
    report.notes[:0] = notes
    return report


def offline_report(parsed: ParsedFile, *, source: str, target: str) -> DryRunReport:
    """The file checked on its own: every line readable or rejected, the target not asked."""
    result = ImportResult(outcomes=[Outcome(record, LineStatus.UNCHANGED) for record in parsed.records],
                          errors=list(parsed.errors))
    return build_report(source, f"{target} (not asked: offline check)", parsed, result, 0,
                        actions={**ACTIONS, LineStatus.UNCHANGED: "readable"})


#: A file dropped under this folder of the validate container gets the matching readiness report
#: (``readiness.txt`` / ``readiness.json``, :mod:`shared.importing.readiness`) instead of a dry run.
MATCH_FOLDER = "match/"


class DropZone:
    """The ``validate`` container: each file dropped there gets a dry-run report beside it and is removed
    (under ``match/``: the matching readiness report)."""

    def __init__(self, settings: Settings, service: BlobServiceClient,
                 connector_factory: Callable[[], Connector]) -> None:
        self.settings = settings
        self.service = service
        self.connector_factory = connector_factory

    def _blob(self, name: str) -> BlobClient:
        return self.service.get_blob_client(self.settings.validate_container, name)

    def process(self, name: str) -> DryRunReport | None:
        source = self._blob(name)
        try:
            properties = source.get_blob_properties()
        except ResourceNotFoundError:
            return None
        if (properties.metadata or {}).get("timebridge"):
            return None  # one of our own reports
        run = FileRun(name, properties.etag)
        if name.startswith(MATCH_FOLDER):
            self._match(source, run, properties.size)
            with suppress(ResourceModifiedError, ResourceNotFoundError):
                source.delete_blob(etag=properties.etag, match_condition=MatchConditions.IfNotModified)
            return None
        report_json = self._blob(f"{run.folder}/report.json")
        if not report_json.exists():
            report = self._check(source, run, properties.size)
            self._blob(f"{run.folder}/report.txt").upload_blob(report.to_text(), overwrite=True, metadata=REPORT_MARKER,
                                                                content_settings=TEXT)
            report_json.upload_blob(report.to_json(), overwrite=True, metadata=REPORT_MARKER, content_settings=JSON)
            log.info("dry run of %s: %s", visible(name), report.counts or report.file_problem)
        else:
            report = None
        # The report is stored: the file has done its job. Replaced meanwhile: the new version's own
        # trigger checks it; already gone: nothing to do.
        with suppress(ResourceModifiedError, ResourceNotFoundError):
            source.delete_blob(etag=properties.etag, match_condition=MatchConditions.IfNotModified)
        return report

    def _check(self, source: BlobClient, run: FileRun, size: int) -> DryRunReport:
        target = target_spec(self.settings.target_system).display_name
        started = time.monotonic()

        def stream() -> Iterable[bytes]:
            return source.download_blob(etag=run.etag, match_condition=MatchConditions.IfNotModified).chunks()

        if size > self.settings.max_file_bytes:
            return DryRunReport(run.name, target, now_iso(), file_problem=(
                f"the file is {size:,} bytes; the limit is {self.settings.max_file_bytes:,} bytes (MAX_FILE_BYTES)"))
        connector, problem = connect(self.connector_factory, run.name)
        try:
            try:
                parsed = parse_file(stream, fold_codes=connector.codes_case_insensitive if connector else False,
                                    target=target)
            except UnreadableFile as exc:
                return DryRunReport(run.name, target, now_iso(), file_problem=f"{exc.reason}. What to do: {exc.action}")
            report = dry_run(parsed, connector, problem, source=run.name, target=target,
                             concurrency=self.settings.write_concurrency,
                             send_cpr_number=self.settings.send_cpr_number)
        finally:
            if connector is not None:
                connector.close()
        log.info("dry run of %s took %.2f s", visible(run.name), time.monotonic() - started)
        return report


    def _match(self, source: BlobClient, run: FileRun, size: int) -> None:
        """The readiness report of a file under ``match/``, beside where its dry-run report would be."""
        from shared.importing.passes import in_memory
        from shared.importing.readiness import Item, Readiness, readiness

        target = target_spec(self.settings.target_system).display_name
        done = self._blob(f"{run.folder}/readiness.json")
        if done.exists():
            return
        connector, problem = connect(self.connector_factory, run.name)
        try:
            if connector is None or size > self.settings.max_file_bytes:
                limit = self.settings.max_file_bytes
                report = Readiness(run.name, target, problems=[Item(problem or (
                    f"the file is {size:,} bytes; the limit is {limit:,} bytes (MAX_FILE_BYTES)"))])
            else:
                def stream() -> Iterable[bytes]:
                    return source.download_blob(etag=run.etag, match_condition=MatchConditions.IfNotModified).chunks()

                try:
                    parsed = parse_file(stream, fold_codes=connector.codes_case_insensitive, target=target)
                    report = readiness(connector, parsed, in_memory(parsed), source=run.name, target=target,
                                       concurrency=self.settings.write_concurrency)
                except UnreadableFile as exc:
                    report = Readiness(run.name, target, problems=[Item(f"{exc.reason}", exc.action)])
        finally:
            if connector is not None:
                connector.close()
        self._blob(f"{run.folder}/readiness.txt").upload_blob(report.to_text().encode("utf-8-sig"), overwrite=True,
                                                               metadata=REPORT_MARKER, content_settings=TEXT)
        done.upload_blob(report.to_json(), overwrite=True, metadata=REPORT_MARKER, content_settings=JSON)
        log.info("readiness of %s: %s", visible(run.name), "ready" if report.ready else "not ready")


def _reported(name: str, value: Value | None) -> Value | None:
    """A value as a report may show it: never a CPR number (``(withheld)`` instead)."""
    return WITHHELD if name == CPR_FIELD and value not in (None, "") else value


def _shown(value: Value | None) -> str:
    if value == WITHHELD:
        return WITHHELD
    return "(empty)" if value in (None, "") else f'"{visible(_plain(value))}"'


def _plain(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, date):
        return value.strftime("%d-%m-%Y")
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return str(value)


__all__ = ["REPORT_MARKER", "DropZone", "DryRunReport", "build_report", "dry_run", "offline_report"]
