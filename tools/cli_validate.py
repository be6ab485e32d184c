"""``timebridge validate FILE``: the dry run for a local file, scriptable and bounded.

* exit 0 when no line would be rejected, 1 when lines (or the whole file) would be, 3 for a setting,
  secret or credentials problem, 4 when the target or storage cannot be reached (cli_support);
* a problem that concerns the whole file (settings, secrets, credentials, the target unreachable) is
  reported once, with the number of lines it left unchecked — never once per line;
* by default the problems and a summary; ``--all-lines`` every line; at most ``--limit`` entries
  (text and JSON alike), and the JSON stays JSON on every error.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.errors import ApiRejectedError, ApiUnavailableError, AuthenticationFailedError, UnreadableFileError
from shared.platform.safe_text import visible
from shared.records.record import LineError
from shared.targets.registry import target_spec
from tools.cli_support import CONFIGURATION, INTERNAL, OK, OPERATIONAL, REJECTED, CliError

CHUNK = 256 * 1024
#: Line entries (problems, or every line with --all-lines) shown by default.
DEFAULT_LIMIT = 200

_POSITION = re.compile(r"^(?P<name>.*?) \(position (?P<position>\d+)\)$")
#: A stable code per kind of problem, from the reason's wording (first match wins).
_CODES: tuple[tuple[str, str], ...] = (
    ("is not a known record type", "unknown-record-type"),
    ("is empty", "value-missing"),
    ("allows at most", "value-too-long"),
    ("longer than", "value-too-long"),
    ("is not a valid date", "value-not-a-date"),
    ("earliest date", "value-out-of-range"),
    ("outside the range", "value-out-of-range"),
    ("is too large", "value-out-of-range"),
    ("is not a whole number", "value-not-a-number"),
    ("is not a number", "value-not-a-number"),
    ("is not 0 or 1", "value-not-a-boolean"),
    ("is not an allowed value", "value-not-allowed"),
    ("does not exist", "not-in-target"),
    ("more than one", "ambiguous-match"),
    ("field", "wrong-fields"),
)


def problem_code(error: LineError) -> str:
    reason = error.reason.lower()
    return next((code for words, code in _CODES if words in reason), "rejected")


def problem_entry(source: str, error: LineError) -> dict[str, Any]:
    from shared.importing.reports import describe_error

    match = _POSITION.match(error.field)
    return {
        "line": error.line,
        "record": str(error.record_type),
        "field": match.group("name") if match else error.field,
        "position": int(match.group("position")) if match else None,
        "value": error.value,
        "code": problem_code(error),
        "reason": error.reason,
        "what_to_do": error.action,
        "message": describe_error(source, error),
    }


@dataclass
class FileProblem:
    """A problem of the whole file or of the check itself, reported once."""

    code: str
    reason: str
    what_to_do: str
    exit_code: int
    lines_not_checked: int = 0

    def as_json(self) -> dict[str, Any]:
        return {"code": self.code, "reason": self.reason, "what_to_do": self.what_to_do,
                "lines_not_checked": self.lines_not_checked}

    def error(self) -> CliError:
        return CliError(self.reason, self.what_to_do, self.exit_code, self.code)


@dataclass
class Outcome:
    """What the command prints and returns."""

    data: dict[str, Any]
    text: str
    exit_code: int
    problem: FileProblem | None = None
    extra: list[str] = field(default_factory=list)


def _stop_problem(cause: Exception | None, stop: LineError, target: str, count: int) -> FileProblem:
    if isinstance(cause, AuthenticationFailedError):
        return FileProblem("credentials-refused", stop.reason, "fix the credentials as described, then run "
                           "timebridge validate again", CONFIGURATION, count)
    if isinstance(cause, ApiUnavailableError):
        return FileProblem("target-unavailable", stop.reason,
                           f"check that {target} is reachable (timebridge doctor), then run timebridge validate again",
                           OPERATIONAL, count)
    if isinstance(cause, ApiRejectedError):
        return FileProblem("target-refused", stop.reason, stop.action, OPERATIONAL, count)
    return FileProblem("internal", stop.reason, "run timebridge validate again with --debug and send the output to "
                       "TimeBridge support", INTERNAL, count)


def run_validate(file: Path, *, offline: bool, all_lines: bool, limit: int,
                 progress: Callable[[Callable[[], Iterator[bytes]]], Iterator[bytes]] | None = None) -> Outcome:
    from shared.importing.dry_run import ACTIONS, DryRunReport, offline_plan, plan_file
    from shared.importing.importer import Importer, ImportResult, LineStatus
    from shared.platform.clock import now_iso
    from tools.cli_support import load_settings, load_some_settings

    settings: Any = load_some_settings("target_system", "max_file_bytes") if offline else load_settings()
    target = target_spec(settings.target_system).display_name
    source = file.name
    size = file.stat().st_size

    def raw_chunks() -> Iterator[bytes]:
        with file.open("rb") as handle:
            while chunk := handle.read(CHUNK):
                yield chunk

    reads = 0

    def chunks() -> Iterator[bytes]:  # read in passes: the progress is shown for the first (the scan)
        nonlocal reads
        reads += 1
        return progress(raw_chunks) if progress and reads == 1 else raw_chunks()

    problem: FileProblem | None = None
    if size > settings.max_file_bytes:
        report = DryRunReport(source, target, now_iso())
        problem = FileProblem("file-too-large", f"{visible(source)} is {size:,} bytes; the limit is "
                              f"{settings.max_file_bytes:,} bytes (MAX_FILE_BYTES), so the import would reject it",
                              "split the file into parts below the limit", REJECTED)
        return _outcome(report, [], problem, offline=offline, all_lines=all_lines, limit=limit)

    connector = None
    if not offline:
        connector, problem = _connect(settings, source)
    kept = limit if limit > 0 else None  # the report keeps no more than it can show
    try:
        try:
            if connector is None:
                plan = offline_plan(chunks, source=source, target=target, size=size, limit=kept)
            else:
                def one_problem(importer: Importer, result: ImportResult) -> None:
                    nonlocal problem
                    stop = importer.stopped
                    if stop is not None:  # one reason for every line not finished: reported once
                        alike = [e for e in result.errors
                                 if not e.field and e.reason == stop.reason and e.action == stop.action]
                        result.errors = [e for e in result.errors if e not in alike]
                        problem = _stop_problem(importer.stop_cause, stop, target, len({e.line for e in alike}))

                plan = plan_file(chunks, connector, "", source=source, target=target,
                                 concurrency=settings.write_concurrency, send_cpr_number=settings.send_cpr_number,
                                 size=size, fold=connector.codes_case_insensitive, limit=kept,
                                 actions={**ACTIONS, LineStatus.DEFERRED: "not-checked"}, before_report=one_problem)
        except UnreadableFileError as exc:
            report = DryRunReport(source, target, now_iso())
            problem = FileProblem("file-unreadable", f"{visible(source)} cannot be imported: {exc.reason}",
                                  exc.action, REJECTED)
            return _outcome(report, [], problem, offline=offline, all_lines=all_lines, limit=limit)
        report = plan.report
        if connector is None:
            if problem is not None:  # the target could not be asked: the file's own check, and the reason once
                problem.lines_not_checked = report.counts.get("readable", 0)
            return _outcome(report, plan.result.errors, problem, offline=True, all_lines=all_lines, limit=limit)
        if report.counts.get("not-checked") and problem is None:
            problem = FileProblem(
                "budget", f"{target}'s call budget has no room now for the reads this check needs",
                "run timebridge validate again later (timebridge status shows the budget)", OPERATIONAL,
                report.counts["not-checked"])
        return _outcome(report, plan.result.errors, problem, offline=False, all_lines=all_lines, limit=limit)
    finally:
        if connector is not None:
            connector.close()


def _connect(settings: Any, source: str) -> tuple[Any, FileProblem | None]:
    from shared.importing.intake import connect
    from shared.targets.factory import connector_factory
    from tools.cli_support import configuration_error, require_storage, storage_errors

    if target_spec(settings.target_system).call_limited:  # its budget and cross-references live in table storage
        require_storage(settings)
    with storage_errors(settings):
        connector, reason = connect(connector_factory(settings), source)
    if connector is None:
        from shared.errors import ConfigurationError

        error = configuration_error(ConfigurationError(reason))
        return None, FileProblem(error.code, error.message, error.what_to_do, CONFIGURATION)
    return connector, None


def _outcome(report: Any, errors: list[LineError], problem: FileProblem | None, *, offline: bool, all_lines: bool,
             limit: int) -> Outcome:
    source = report.source
    rejected_lines = len({error.line for error in errors})
    chosen = report.lines if all_lines else [entry for entry in report.lines if entry["action"] == "reject"]
    cap = limit if limit > 0 else len(chosen)
    # the report kept only the first lines of each kind; how many there are in all is in its counts
    total = sum(report.counts.values()) if all_lines else report.counts.get("reject", 0)
    shown_lines = chosen[:cap]
    left_off = max(0, total - len(shown_lines))
    shown_problems = [problem_entry(source, error) for error in (errors[:cap] if limit > 0 else errors)]
    exit_code = problem.exit_code if problem is not None else REJECTED if rejected_lines else OK
    summary = dict(report.counts)
    summary["lines"] = sum(report.counts.values()) + (problem.lines_not_checked if problem else 0)
    if problem and problem.lines_not_checked:
        summary["not-checked"] = summary.get("not-checked", 0) + problem.lines_not_checked
    data: dict[str, Any] = {
        "file": source,
        "target": report.target,
        "checked_at": report.checked_at,
        "offline": offline,
        "result": ("not-checked" if problem and problem.exit_code != REJECTED else
                   "file-rejected" if problem else "would-reject-lines" if rejected_lines else "ok"),
        "exit_code": exit_code,
        "summary": summary,
        "reads": report.reads,
        "writes_needed": report.writes_needed,
        "notes": report.notes,
        "file_problem": problem.as_json() if problem else None,
        "problems": shown_problems,
        "problems_left_off": len(errors) - len(shown_problems),
    }
    if all_lines:
        data["lines"] = shown_lines
        data["lines_left_off"] = left_off
    report.lines = shown_lines
    report.rejected_left_off = report.others_left_off = 0  # said below, with this command's options
    text = report.to_text().decode("utf-8-sig").rstrip("\n")
    tail: list[str] = []
    if left_off:
        tail.append(f"… {left_off:,} more {'lines' if all_lines else 'rejected lines'} not shown "
                    f"(--limit {limit}; --limit 0 shows all, --json gives them to a script)")
    if problem is not None and problem.code not in ("file-unreadable", "file-too-large"):
        unchecked = f" ({problem.lines_not_checked:,} lines not checked against the target)" \
            if problem.lines_not_checked else ""
        tail.append(f"Not checked{unchecked}: {visible(problem.reason)} What to do: {visible(problem.what_to_do)}")
    elif problem is not None:
        tail.append(f"The whole file would be rejected: {visible(problem.reason)}. What to do: "
                    f"{visible(problem.what_to_do)}")
    tail.append(_result_line(data, rejected_lines))
    return Outcome(data, "\n".join([text, "", *tail]), exit_code, problem)


def _result_line(data: dict[str, Any], rejected_lines: int) -> str:
    verdict = {
        "ok": "no line would be rejected",
        "would-reject-lines": f"{rejected_lines:,} line{'s' if rejected_lines != 1 else ''} would be rejected",
        "file-rejected": "the whole file would be rejected",
        "not-checked": "the file could not be checked against the target",
    }[data["result"]]
    return f"Result: {verdict} (exit code {data['exit_code']})"
