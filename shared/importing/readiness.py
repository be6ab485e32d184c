"""The matching readiness report: before the first import, how the ERP's file and the target match.

Integration guides ask people to check by hand, before the first transfer, that the codes in the
time system equal the ERP's. This report does it for them with reads only: the target is read once
(within Tic-Tac's call budget, as a dry run is) and, per kind (employees ↔ users, jobs ↔ projects,
operations ↔ activities), it lists

* the target records matched — by their own code field (SmartTID's codes, Tic-Tac's employee and
  project numbers), by a cross-reference TimeBridge recorded, or by name (activities);
* the ERP lines that would create a new record (and what to check first: a person made by hand
  without the ERP's number would get a second user);
* the target records no line of the file matches — for Tic-Tac, users without an employee number,
  whose hours could never be exported, and projects without a project number;
* duplicates and ambiguous names (several target records carry one code, or one name);
* for each, what to change in the target or in the file.

The plan behind it is the import's own (:class:`~shared.importing.importer.Importer`, dry run), so
what the report says is what the import then does.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from shared.importing.importer import Importer, LineStatus
from shared.importing.parsing import ParsedFile
from shared.importing.reports import describe_error
from shared.platform.safe_text import visible
from shared.records.layouts import RecordType
from shared.records.record import Record
from shared.targets.base import Connector, RemoteRecord

#: What a record of each kind is called in the target's words, and its code field there.
_WORDS: dict[str, dict[RecordType, tuple[str, str]]] = {
    "Tic-Tac": {RecordType.EMPLOYEE: ("user", "employee number"), RecordType.JOB: ("project", "project number"),
                RecordType.OPERATION: ("activity", "name inside its project")},
}
_DEFAULT_WORDS = {RecordType.EMPLOYEE: ("employee", "employee code"), RecordType.JOB: ("job", "job code"),
                  RecordType.OPERATION: ("operation", "job code and line number")}
#: At most this many items per list are named one by one (the counts are exact).
NAMED = 200


@dataclass
class Item:
    """One line of the report: what, and what to do about it."""

    what: str
    action: str = ""
    line: int = 0


@dataclass
class KindReport:
    kind: str  # Employee / Job / Operation
    lines: int = 0
    matched: dict[str, int] = field(default_factory=dict)  # "by employee number": n, …
    would_create: list[Item] = field(default_factory=list)
    not_in_file: list[Item] = field(default_factory=list)
    never_exported: list[Item] = field(default_factory=list)  # target records without the ERP's code
    ambiguous: list[Item] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # exact sizes of the lists above


@dataclass
class Readiness:
    source: str
    target: str
    kinds: list[KindReport] = field(default_factory=list)
    problems: list[Item] = field(default_factory=list)  # lines that would be rejected for other reasons
    reads: int = 0

    @property
    def ready(self) -> bool:
        """Nothing to look at: every line matched or is meant to be new, no ambiguity, no problem."""
        return not self.problems and not any(kind.ambiguous or kind.never_exported for kind in self.kinds)

    def to_json(self) -> bytes:
        data = asdict(self) | {"ready": self.ready}
        return json.dumps(data, indent=2, ensure_ascii=False).encode("utf-8")

    def to_text(self) -> str:
        out = [f"TimeBridge matching readiness — {visible(self.source)} against {self.target} (nothing was written; "
               f"{self.reads} reads)", ""]
        for kind in self.kinds:
            matched = ", ".join(f"{n} {how}" for how, n in kind.matched.items() if n) or "none"
            out.append(f"{kind.kind}: {kind.lines} lines — matched {matched}; would create "
                       f"{kind.counts.get('would_create', 0)}")
            for title, items, key in (("Would be created", kind.would_create, "would_create"),
                                      ("Ambiguous", kind.ambiguous, "ambiguous"),
                                      (f"In {self.target} without the ERP's code", kind.never_exported,
                                       "never_exported"),
                                      (f"In {self.target}, not in this file", kind.not_in_file, "not_in_file")):
                if items:
                    out.append(f"  {title} ({kind.counts.get(key, len(items))}):")
                    out += [f"    {_item_text(item)}" for item in items]
            out.append("")
        if self.problems:
            out.append(f"Lines the import would reject for other reasons ({len(self.problems)}):")
            out += [f"  {_item_text(item)}" for item in self.problems]
            out.append("")
        out.append("Ready: every line matches or is meant to be new." if self.ready else
                   "Not ready: change what is listed above (in the time system or in the file), then check again.")
        return "\n".join(out) + "\n"


def _item_text(item: Item) -> str:
    where = f"line {item.line}: " if item.line else ""
    return f"{where}{item.what}" + (f" — what to do: {item.action}" if item.action else "")


#: Why the readiness report reads a file whole (every line's outcome is listed).
FOR_READINESS = "the readiness report lists every line"


def readiness(connector: Connector, parsed: ParsedFile, batches: Callable[[frozenset[RecordType]],
              Iterable[list[Record]]], *, source: str, target: str, concurrency: int = 4) -> Readiness:
    """The report for ``parsed`` (its records from ``batches``) against ``connector``'s target."""
    matches: dict[RecordType, list[tuple[Record, RemoteRecord]]] = {t: [] for t in RecordType}
    importer = Importer(connector, concurrency=concurrency, dry_run=True, keep_outcomes=True, target_name=target,
                        on_match=lambda record, remote: matches[record.record_type].append((record, remote)))
    calls_before = connector.calls.total
    result = importer.run_batches(parsed, batches)
    report = Readiness(source=source, target=target, reads=connector.calls.total - calls_before)
    words = _WORDS.get(target, _DEFAULT_WORDS)
    by_line = {outcome.record.line: outcome for outcome in result.outcomes}
    rejected_lines = {error.line for error in result.errors}
    for record_type in RecordType:
        noun, code_field = words[record_type]
        kind = KindReport(kind=str(record_type))
        kind.lines = sum(1 for o in result.outcomes if o.record.record_type is record_type)
        for _, remote in matches[record_type]:
            how = f"by {remote.matched_by}" if remote.matched_by else f"by {code_field}"
            kind.matched[how] = kind.matched.get(how, 0) + 1
        for outcome in result.outcomes:
            if outcome.record.record_type is record_type and outcome.status is LineStatus.CREATED:
                kind.would_create.append(_would_create(outcome.record, noun, code_field, target))
        matched_ids = {str(remote.id) for _, remote in matches[record_type]}
        for remote in importer.stored_records(record_type):
            if str(remote.id) in matched_ids:
                continue
            code = _code(remote, record_type)
            label = _label(remote, record_type, noun)
            if record_type is RecordType.OPERATION or remote.matched_by == "ambiguous":
                continue  # an activity no line names is no problem of its own; an ambiguous one is listed so
            if not code:
                kind.never_exported.append(Item(
                    f"{label} has no {code_field}: " + ("its hours can never be exported" if record_type is
                                                        RecordType.EMPLOYEE else "its hours cannot be exported"),
                    f"type the ERP's {'employee' if record_type is RecordType.EMPLOYEE else 'job'} code as its "
                    f"{code_field} in {target}, or ignore it if it is not the ERP's"))
            else:
                kind.not_in_file.append(Item(f"{label} ({code_field} {visible(code)}) is not in this file"))
        for error in result.errors:
            if error.line in by_line and by_line[error.line].record.record_type is record_type \
                    and "cannot be linked" in error.reason:
                kind.ambiguous.append(Item(visible(error.reason), visible(error.action), error.line))
        report.kinds.append(_capped(kind))
    ambiguous_lines = {item.line for kind in report.kinds for item in kind.ambiguous}
    for error in sorted(result.errors, key=lambda e: (e.line, e.field)):
        if error.line not in ambiguous_lines and error.line in rejected_lines:
            report.problems.append(Item(describe_error(source, error)))
    del report.problems[NAMED:]
    return report


def _capped(kind: KindReport) -> KindReport:
    for name in ("would_create", "not_in_file", "never_exported", "ambiguous"):
        items: list[Item] = getattr(kind, name)
        kind.counts[name] = len(items)
        del items[NAMED:]
    return kind


def _would_create(record: Record, noun: str, code_field: str, target: str) -> Item:
    code = " ".join(str(part) for part in record.key)
    name = record.values.get("sName") or record.values.get("sJobDescription") or record.values.get("sDescription")
    shown = f"{record.describe()}" + (f" ({visible(str(name))})" if name else "")
    if record.record_type is RecordType.OPERATION:
        return Item(f"{shown}: no {noun} of that name in its project", f"if it exists under another name in "
                    f"{target}, rename it there (or the line's description), else nothing: the import creates it",
                    record.line)
    return Item(f"{shown}: no {noun} in {target} has {code_field} {visible(code)}",
                f"if this {noun} exists in {target} already (made by hand), type {visible(code)} as its "
                f"{code_field} there first — else the import makes a second one; if it is new, nothing", record.line)


def _code(remote: RemoteRecord, record_type: RecordType) -> str:
    key = "sEmployeeCode" if record_type is RecordType.EMPLOYEE else "sJobCode"
    return str(remote.values.get(key) or "")


def _label(remote: RemoteRecord, record_type: RecordType, noun: str) -> str:
    values: dict[str, Any] = remote.values
    name = values.get("sName") or values.get("sJobDescription") or values.get("sDescription") or ""
    return f"{noun} {visible(str(remote.id))}" + (f" ({visible(str(name))})" if name else "")
