"""The dry run: what a file *would* do to the target, found with reads only — zero writes.

Used by the ``validate`` drop zone (a blob trigger on ``VALIDATE_CONTAINER``) and by the operator
CLI (``python -m tools.timebridge validate FILE``). The plan is the real import's plan
(:class:`shared.importing.importer.Importer` with ``dry_run=True``), so the per-line answer is what the real
import then does — except where the target itself decides on a write (it may still refuse a value).

A report per file, human-readable text plus the same as JSON:
per line ``create`` / ``update`` (each changed field old → new) / ``unchanged`` / ``reject`` (with
the reason and what to do), and the counts, the reads made and the writes the import would need.

The file is read in passes like the import's (:mod:`shared.importing.passes`) and the report is
gathered outcome by outcome (:class:`ReportLines`): it lists the first :data:`REPORT_LIMIT` rejected
lines and as many of the others in full and counts the rest, so neither the check's memory nor the
report grows with the file.
"""

from __future__ import annotations

import heapq
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

from shared.errors import UnreadableFileError
from shared.importing.importer import Importer, ImportResult, LineStatus, Outcome
from shared.importing.intake import FileRun, connect, run_import
from shared.importing.parsing import ParsedFile
from shared.importing.passes import MASTERS, OPERATIONS, read_for_import
from shared.importing.personal_data import CPR_FIELD, WITHHELD
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
    #: lines of each kind listed in full at most (0: no cap), and how many more were only counted
    limit: int = 0
    rejected_left_off: int = 0
    others_left_off: int = 0

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
        if self.rejected_left_off:
            out += ["", f"… and {self.rejected_left_off:,} more rejected lines, not listed: a report lists the first "
                    f"{self.limit:,}. To see every one, fix these and check the file again, or run "
                    "timebridge validate FILE --limit 0; an import lists every rejected line in its error report "
                    "and rejected-lines file."]
        if self.others_left_off:
            out += [*([] if self.rejected_left_off else [""]),
                    f"… and {self.others_left_off:,} more lines that would be created, updated or left unchanged, "
                    f"not listed (a report lists the first {self.limit:,}; the counts above include them)."]
        return ("\n".join(out) + "\n").encode("utf-8-sig")


#: Rejected lines a dry-run report lists in full (and at most as many of the other lines): beyond
#: them it counts, and says how to see every one — the report never grows without bound.
REPORT_LIMIT = 1_000


class ReportLines:
    """The lines of a dry-run report, gathered outcome by outcome while the plan goes batch by batch.

    Every line is counted (its action, one byte per line number, so a line rejected after an outcome
    counts as rejected once); only the first ``limit`` lines of each kind (rejected, other) are kept
    in full (``None``: every line)."""

    def __init__(self, actions: dict[LineStatus, str] = ACTIONS, limit: int | None = REPORT_LIMIT) -> None:
        self.actions = actions
        self.limit = limit
        self.writes_needed = 0
        names = sorted({*actions.values(), "reject"})
        self._code = {name: code for code, name in enumerate(names, start=1)}
        self._name = dict(enumerate(names, start=1))
        self._actions = bytearray()  # line number → action code (0: no outcome)
        self._kept: list[tuple[int, int, dict[str, Any]]] = []  # a heap of (-line, order, entry): the first lines
        self._order = 0

    def _mark(self, line: int, action: str) -> None:
        if line >= len(self._actions):
            self._actions.extend(bytes(max(line + 1, 2 * len(self._actions)) - len(self._actions)))
        self._actions[line] = self._code[action]

    def add(self, outcome: Outcome) -> None:
        """One record's outcome (a rejected one is counted from its errors, in :meth:`report`)."""
        if outcome.status is LineStatus.REJECTED:
            return
        action = self.actions[outcome.status]
        if outcome.status in (LineStatus.CREATED, LineStatus.UPDATED):
            self.writes_needed += 1
        for line in outcome.record.lines:
            self._mark(line, action)
            if self.limit is not None and len(self._kept) >= self.limit and (
                    not self._kept or line > -self._kept[0][0]):
                continue  # later than every line kept: counted only
            entry: dict[str, Any] = {"line": line, "record": outcome.record.describe(), "action": action}
            if outcome.status is LineStatus.UPDATED:
                entry["changes"] = [{"field": name, "from": _reported(name, outcome.before.get(name)),
                                     "to": _reported(name, outcome.record.values[name])}
                                    for name in outcome.changed]
            self._order += 1
            heapq.heappush(self._kept, (-line, self._order, entry))
            if self.limit is not None and len(self._kept) > self.limit:
                heapq.heappop(self._kept)

    def report(self, source: str, target: str, parsed: ParsedFile, result: ImportResult,
               reads: int) -> DryRunReport:
        """The report, once every outcome is in; ``result.errors`` sorted by line."""
        report = DryRunReport(source=source, target=target, checked_at=now_iso(), encoding=parsed.encoding,
                              reads=reads, notes=list(result.notes), writes_needed=self.writes_needed,
                              limit=self.limit or 0)
        by_line = {entry["line"]: entry for _, _, entry in self._kept}
        others_shown = len(by_line)
        rejected: dict[int, dict[str, Any]] = {}
        for error in result.errors:
            self._mark(error.line, "reject")
            entry = rejected.get(error.line)
            if entry is None:
                if self.limit is not None and len(rejected) >= self.limit:
                    continue  # counted only
                entry = by_line.pop(error.line, None) or {"line": error.line, "record": str(error.record_type)}
                if entry.get("action", "reject") != "reject":
                    others_shown -= 1
                entry.update(action="reject", changes=[], reasons=entry.get("reasons", []))
                rejected[error.line] = entry
            entry["reasons"].append(describe_error(source, error))
        report.lines = sorted([*by_line.values(), *rejected.values()], key=lambda entry: entry["line"])
        for code, name in self._name.items():
            if count := self._actions.count(code):
                report.counts[name] = count
        report.rejected_left_off = report.counts.get("reject", 0) - len(rejected)
        report.others_left_off = sum(report.counts.values()) - report.counts.get("reject", 0) - others_shown
        return report


def build_report(source: str, target: str, parsed: ParsedFile, result: ImportResult, reads: int,
                 actions: dict[LineStatus, str] = ACTIONS, limit: int | None = None) -> DryRunReport:
    """The report of a plan whose outcomes were kept (``result.outcomes``)."""
    lines = ReportLines(actions, limit)
    for outcome in result.outcomes:
        lines.add(outcome)
    return lines.report(source, target, parsed, result, reads)


@dataclass
class Plan:
    """What a dry run found: the report, and the plan's errors and stop (for the CLI's summary)."""

    report: DryRunReport
    result: ImportResult
    importer: Importer | None = None


def plan_file(stream: Callable[[], Iterable[bytes]], connector: Connector | None, problem: str, *, source: str,
              target: str, concurrency: int, send_cpr_number: bool, size: int = 0, fold: bool | None = None,
              limit: int | None = REPORT_LIMIT, actions: dict[LineStatus, str] = ACTIONS,
              before_report: Callable[[Importer, ImportResult], None] | None = None) -> Plan:
    """Plan the file against the target with reads only (``connector`` None: it could not be built,
    every line is rejected with ``problem``), reading it in passes like the import.

    The CPR rule of the real import applies first (``send_cpr_number``, the setting ``SEND_CPR_NUMBER``):
    off, the CPR numbers are dropped before planning, so the plan is the import's plan.
    ``before_report``: may change the result's errors before the report is made of them.
    Raises :class:`UnreadableFileError` when the file cannot be read at all."""
    fold = (connector.codes_case_insensitive if connector else False) if fold is None else fold
    whole = connector is not None and connector.inline_children
    parsed, read = read_for_import(stream, fold=fold, target=target, size=size, whole=whole)
    lines = ReportLines(actions, limit)
    run = run_import(connector, problem, parsed, read, send_cpr_number=send_cpr_number, concurrency=concurrency,
                     target=target, dry_run=True, on_outcome=lines.add, then="check the file again")
    if run.importer is not None and before_report is not None:
        before_report(run.importer, run.result)
    report = lines.report(source, target, parsed, run.result, connector.calls.total if connector else 0)
    report.notes[:0] = run.notes
    return Plan(report, run.result, run.importer)


def offline_plan(stream: Callable[[], Iterable[bytes]], *, source: str, target: str, size: int = 0,
                 fold: bool = True, limit: int | None = REPORT_LIMIT) -> Plan:
    """The file checked on its own, read in passes: every line readable or rejected, the target not asked."""
    parsed, read = read_for_import(stream, fold=fold, target=target, size=size)
    lines = ReportLines({**ACTIONS, LineStatus.UNCHANGED: "readable"}, limit)
    for wanted in (MASTERS, OPERATIONS):
        for batch in read(wanted):
            for record in batch:
                lines.add(Outcome(record, LineStatus.UNCHANGED))
    result = ImportResult(errors=sorted(parsed.errors, key=lambda error: (error.line, error.field)))
    report = lines.report(source, f"{target} (not asked: offline check)", parsed, result, 0)
    return Plan(report, result)


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
                report = plan_file(stream, connector, problem, source=run.name, target=target,
                                   concurrency=self.settings.write_concurrency,
                                   send_cpr_number=self.settings.send_cpr_number, size=size).report
            except UnreadableFileError as exc:
                return DryRunReport(run.name, target, now_iso(), file_problem=f"{exc.reason}. What to do: {exc.action}")
        finally:
            if connector is not None:
                connector.close()
        log.info("dry run of %s took %.2f s", visible(run.name), time.monotonic() - started)
        return report


    def _match(self, source: BlobClient, run: FileRun, size: int) -> None:
        """The readiness report of a file under ``match/``, beside where its dry-run report would be."""
        from shared.importing.readiness import FOR_READINESS, Item, Readiness, readiness

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
                    parsed, batches = read_for_import(stream, fold=connector.codes_case_insensitive, target=target,
                                                      size=size, whole=True, why_whole=FOR_READINESS)
                    report = readiness(connector, parsed, batches, source=run.name, target=target,
                                       concurrency=self.settings.write_concurrency)
                except UnreadableFileError as exc:
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


__all__ = ["REPORT_LIMIT", "REPORT_MARKER", "DropZone", "DryRunReport", "Plan", "ReportLines", "build_report",
           "offline_plan", "plan_file"]
