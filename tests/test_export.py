"""The export slice end to end: Azurite (blobs + the export-ledger table), the SmartAPI sandbox."""

from __future__ import annotations

import csv
import io
import json
import logging
import threading
import unicodedata
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import pytest
from azure.functions.timer import TimerRequest
from azure.storage.blob import BlobServiceClient

from shared.errors import ApiUnavailableError
from shared.export import run_export
from shared.export.flagged_source import FlaggedSource
from shared.export.ledger_format import (
    JOB_LEDGER_COLUMNS,
    TIME_LEDGER_COLUMNS,
    ColumnKind,
    fold_to_cp1252,
    format_value,
    render,
)
from shared.export.ledger_table import EntryKind, ExportLedger, Intent, RunStatus
from shared.export.protocol import ORPHAN_AGE, RUNS_PREFIX, Exporter, receipt_name_for
from shared.export.spool import LedgerSpool
from shared.platform.config import ExportEncoding, Settings
from shared.targets.factory import connector_factory
from tests.conftest import Sandbox, blob_names, read_blob
from tests.functions_host import registered

BOM = b"\xef\xbb\xbf"


class CrashError(Exception):
    """Stands in for the process dying at a given step."""


# --- helpers ----------------------------------------------------------------------------------
def ledger_files(service: BlobServiceClient, settings: Settings) -> dict[str, bytes]:
    names = [n for n in blob_names(service, settings.output_container) if n.startswith("ledger_")]
    return {name: read_blob(service, settings.output_container, name) for name in names}


def parse(content: bytes, encoding: str = "utf-8-sig") -> list[list[str]]:
    text = content.decode(encoding)
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=";"))


def exported(service: BlobServiceClient, settings: Settings) -> Counter[tuple[str, int]]:
    """How often each (record type, id) appears across every output file."""
    encoding = "cp1252" if settings.export_encoding is ExportEncoding.WINDOWS_1252 else "utf-8-sig"
    return Counter((row[0], int(row[1])) for content in ledger_files(service, settings).values()
                   for row in parse(content, encoding))


def expected_entries(sandbox: Sandbox) -> set[tuple[str, int]]:
    state = sandbox.state()
    active = {e["EmployeeCode"] for e in state["employees"] if e["Active"]}
    return ({("TimeLedgerEntry", r["ID"]) for r in state["timeledger"]
             if not r["Transfered"] and r["EmployeeCode"] in active}
            | {("JobLedgerEntry", r["ID"]) for r in state["jobledger"] if not r["Transfered"]})


def marked_job_ids(sandbox: Sandbox) -> set[int]:
    return {r["ID"] for r in sandbox.state()["jobledger"] if r["Transfered"]}


def receipt_of(service: BlobServiceClient, settings: Settings, file_name: str) -> dict[str, Any]:
    return json.loads(read_blob(service, settings.export_state_container, receipt_name_for(file_name)))


def assert_exactly_once(service: BlobServiceClient, settings: Settings, expected: set[tuple[str, int]],
                        sandbox: Sandbox) -> None:
    counts = exported(service, settings)
    assert set(counts) == expected
    assert [key for key, n in counts.items() if n > 1] == []
    assert marked_job_ids(sandbox) >= {i for kind, i in expected if kind == "JobLedgerEntry"}
    ledger = ExportLedger.connect(settings)
    assert ledger.read_state().intent is None
    for kind, entry_id in expected:
        assert ledger.entry(EntryKind.TIME if kind == "TimeLedgerEntry" else EntryKind.JOB, entry_id)


def tweak(settings: Settings, **changes: Any) -> Settings:
    return settings.model_copy(update=changes)


def clear_faults(sandbox: Sandbox) -> None:
    sandbox._control("DELETE", "faults")


NEW_JOB = {
    "EmployeeCode": "1002", "Name": "Søren Ærøskøbing", "Date": "2026-11-21T00:00:00", "JobCode": "1000",
    "OperationCode": "PACK", "JobOperationLineNumber": 20, "OperationDescription": "Pakning",
    "Completed": False, "WorkTypeCode": "NORMAL", "StartTime": "2026-11-21T08:00:00",
    "EndTime": "2026-11-21T09:15:00",
    "TotalTime": 1.25, "ERPReference": "ERP-20", "DepartmentCode": "PROD", "JournalCode": "STANDARD",
    "Transfered": False,
}
NEW_TIME = {
    "EmployeeCode": "0042", "Name": "Åse Øberg", "Date": "2026-11-21T00:00:00", "WorkTypeCode": "NORMAL",
    "StartTime": "2026-11-21T08:00:00", "EndTime": "2026-11-21T16:00:00", "TotalTime": 7.5, "Type": "Normal",
    "Transfered": False, "Remark": "", "Relative": False,
}


# --- the normal run -----------------------------------------------------------------------------
def test_export_writes_every_new_entry_once_in_documented_order(storage, settings, sandbox: Sandbox) -> None:
    expected = expected_entries(sandbox)
    receipt = run_export(settings)

    assert receipt is not None and receipt.status == "exported"
    [(name, content)] = ledger_files(storage, settings).items()
    assert name.startswith("ledger_") and name.endswith(f"_{receipt.run_id}.csv")
    assert len(name) == len("ledger_20261121T1415Z_") + len(receipt.run_id) + len(".csv")
    assert content.startswith(BOM) and content.endswith(b"\r\n")
    assert b"\n" not in content.replace(b"\r\n", b"")
    rows = parse(content)
    assert {(r[0], int(r[1])) for r in rows} == expected
    assert {len(r) for r in rows if r[0] == "TimeLedgerEntry"} == {1 + len(TIME_LEDGER_COLUMNS)} == {19}
    assert {len(r) for r in rows if r[0] == "JobLedgerEntry"} == {1 + len(JOB_LEDGER_COLUMNS)} == {25}
    assert [r[0] for r in rows] == ["TimeLedgerEntry"] * 3 + ["JobLedgerEntry"] * 3

    [jens] = sandbox.find("timeledger", EmployeeCode="1001", Date="2026-11-19T00:00:00")
    [overtime] = sandbox.find("jobledger", WorkTypeCode="OVERTIME1")
    lines = content.decode("utf-8-sig").split("\r\n")
    assert (f"TimeLedgerEntry;{jens['ID']};1001;Jens Hansen;19-11-2026;06:58;17:03;NORMAL;00:30;07:00;17:00;"
            "9,5;STD;Normal;0;Overarbejde på Ærø;PROD;MALER;0") in lines
    assert (f"JobLedgerEntry;{overtime['ID']};1001;19-11-2026;Jens Hansen;1000;PAINT;10;Maling - farve 9010;"
            "FAKTURERBAR;Fakturerbart;0;OVERTIME1;15:00;17:00;2;ERP-10;;;;PROD;;;STANDARD;") in lines
    absence = next(r for r in rows if r[0] == "TimeLedgerEntry" and r[7] == "FERIE")
    assert absence[5:11] == ["", "", "FERIE", "", "", ""] and absence[11] == "7,4"

    # every job-ledger entry is marked in SmartTID; time-ledger entries never are (no endpoint)
    assert marked_job_ids(sandbox) == {i for kind, i in expected if kind == "JobLedgerEntry"}
    transferred = [r for r in sandbox.state()["timeledger"] if r["Transfered"]]
    assert transferred == sandbox.find("timeledger", Remark="already exported")
    stored = receipt_of(storage, settings, name)
    assert stored["counts"] == {"time_ledger_entries": 3, "job_ledger_entries": 3, "lines": 6}
    assert stored["ids"]["job_ledger"] == {"first": min(i for k, i in expected if k == "JobLedgerEntry"),
                                           "last": max(i for k, i in expected if k == "JobLedgerEntry")}
    assert stored["api_calls"]["by_endpoint"]["POST /markjobledgerentrytransfered"] == 1
    # the 3 active employees, and the leaver 1099 (read from the first run that sees it inactive)
    assert stored["api_calls"]["by_endpoint"]["GET /employeetimeledgerentries"] == 4
    assert stored["bytes"] == len(content) and stored["marked_transferred"] == 3
    assert "3 time ledger, 3 job ledger" in receipt.summary()
    assert_exactly_once(storage, settings, expected, sandbox)

    # nothing new: no file, no receipt
    assert run_export(settings) is None
    assert len(ledger_files(storage, settings)) == 1
    # new registrations go to the next file, and only they
    sandbox.insert("jobledger", [NEW_JOB])
    sandbox.insert("timeledger", [NEW_TIME])
    everything = expected | expected_entries(sandbox)
    second = run_export(settings)
    assert second is not None and second.counts["lines"] == 2
    assert exported(storage, settings) == Counter(everything)
    assert_exactly_once(storage, settings, everything, sandbox)
    assert [n for n in blob_names(storage, settings.export_state_container) if n.startswith(RUNS_PREFIX)] == []
    # the output container holds the ERP's files only: no lock, no staging, no receipts
    assert all(n.startswith("ledger_") for n in blob_names(storage, settings.output_container))


def test_no_file_when_nothing_new_unless_configured(storage, settings, sandbox: Sandbox) -> None:
    sandbox.reset(seeded=False)
    assert run_export(settings) is None
    assert ledger_files(storage, settings) == {}

    receipt = run_export(tweak(settings, export_write_empty_file=True))
    assert receipt is not None and receipt.status == "exported-empty"
    assert list(ledger_files(storage, settings).values()) == [BOM]
    assert receipt_of(storage, settings, receipt.file.split("/", 1)[1])["counts"]["lines"] == 0


# --- crashes at every step -------------------------------------------------------------------------
def _crash_on_second_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    original, calls = FlaggedSource._mark_batch, []

    def mark(self: FlaggedSource, connector: Any, ids: list[int]) -> None:
        calls.append(ids)
        if len(calls) == 2:
            raise CrashError("between mark batches")
        original(self, connector, ids)

    monkeypatch.setattr(FlaggedSource, "_mark_batch", mark)


def _raise(step: str):  # type: ignore[no-untyped-def]
    def crash(*args: Any, **kwargs: Any) -> None:
        raise CrashError(step)

    return crash


CRASH_POINTS = {
    "after_read": lambda mp: mp.setattr(Exporter, "_commit_intent", _raise("after read")),
    "after_intent": lambda mp: mp.setattr(Exporter, "_write_file", _raise("after intent")),
    "after_write": lambda mp: mp.setattr(Exporter, "_verify_file", _raise("after write")),
    "between_mark_batches": _crash_on_second_batch,
    "before_ledger_record": lambda mp: mp.setattr(Exporter, "_record_ledger", _raise("before ledger record")),
}
#: After the crash: (output files, job entries marked, intent status left open)
AFTER_CRASH = {
    "after_read": (0, 0, None),
    "after_intent": (0, 0, RunStatus.INTENT),
    "after_write": (1, 0, RunStatus.INTENT),
    "between_mark_batches": (1, 2, RunStatus.WRITTEN),
    "before_ledger_record": (1, 3, RunStatus.MARKED),
}


@pytest.mark.parametrize("step", list(CRASH_POINTS))
def test_crash_at_any_step_then_normal_run_exports_each_entry_exactly_once(
    storage, settings, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    settings = tweak(settings, export_mark_batch_size=2)
    expected = expected_entries(sandbox)
    with monkeypatch.context() as patch:
        CRASH_POINTS[step](patch)
        with pytest.raises(CrashError):
            run_export(settings)

    files, marked, status = AFTER_CRASH[step]
    assert len(ledger_files(storage, settings)) == files
    assert len(marked_job_ids(sandbox)) == marked
    # nothing marked that is not in a committed file
    assert {("JobLedgerEntry", i) for i in marked_job_ids(sandbox)} <= set(exported(storage, settings))
    intent = ExportLedger.connect(settings).read_state().intent
    assert (intent.status if intent else None) == status

    # meanwhile: new registrations, and a changed setting (the interrupted file must not change)
    sandbox.insert("jobledger", [NEW_JOB])
    sandbox.insert("timeledger", [NEW_TIME])
    later = tweak(settings, export_decimal_separator=".")
    everything = expected | expected_entries(sandbox)
    receipt = run_export(later)

    assert receipt is not None
    assert_exactly_once(storage, later, everything, sandbox)
    if intent is not None:
        assert receipt.recovered_runs == [intent.run_id]
        interrupted = read_blob(storage, settings.output_container, intent.file_name)
        assert {(r[0], int(r[1])) for r in parse(interrupted)} == expected
        assert b"9,5" in interrupted and b"9.5" not in interrupted  # written with the settings of its run
        assert receipt_of(storage, settings, intent.file_name)["status"] == "completed-after-interruption"
    assert b"1.25" in read_blob(storage, settings.output_container, receipt.file.split("/", 1)[1])
    assert run_export(later) is None
    assert len(ledger_files(storage, settings)) == (1 if intent is None else 2)


def test_ambiguous_failure_of_a_mark_batch_is_completed_by_the_next_run(storage, settings, sandbox) -> None:
    """A real fault: SmartTID marks the first batch but the answer is lost (500 after applying)."""
    settings = tweak(settings, export_mark_batch_size=2, http_max_attempts=1)
    expected = expected_entries(sandbox)
    sandbox.fault("POST", "/markjobledgerentrytransfered", status=500, after_apply=True)
    with pytest.raises(ApiUnavailableError):
        run_export(settings)
    assert len(marked_job_ids(sandbox)) == 2
    assert {("JobLedgerEntry", i) for i in marked_job_ids(sandbox)} <= set(exported(storage, settings))

    assert run_export(settings) is not None
    assert_exactly_once(storage, settings, expected, sandbox)


# --- API faults -------------------------------------------------------------------------------------
def test_persistent_server_error_when_marking_marks_nothing_outside_the_committed_file(
    storage, settings, sandbox: Sandbox
) -> None:
    settings = tweak(settings, http_max_attempts=2)
    expected = expected_entries(sandbox)
    sandbox.fault("POST", "/markjobledgerentrytransfered", status=500, times=10)
    with pytest.raises(ApiUnavailableError):
        run_export(settings)
    assert marked_job_ids(sandbox) == set()
    assert set(exported(storage, settings)) == expected  # the file is committed, waiting to be marked

    clear_faults(sandbox)
    receipt = run_export(settings)
    assert receipt is not None and receipt.status == "completed-after-interruption"
    assert_exactly_once(storage, settings, expected, sandbox)


def test_server_error_while_reading_writes_nothing(storage, settings, sandbox: Sandbox) -> None:
    settings = tweak(settings, http_max_attempts=2)
    sandbox.fault("GET", "/employeetimeledgerentries", status=503, times=10)
    with pytest.raises(ApiUnavailableError):
        run_export(settings)
    assert ledger_files(storage, settings) == {} and marked_job_ids(sandbox) == set()
    assert ExportLedger.connect(settings).read_state().intent is None

    clear_faults(sandbox)
    expected = expected_entries(sandbox)
    assert run_export(settings) is not None
    assert_exactly_once(storage, settings, expected, sandbox)


def test_timeouts_and_429_are_retried_within_the_run(storage, settings, sandbox: Sandbox) -> None:
    settings = tweak(settings, http_timeout_seconds=0.5)
    expected = expected_entries(sandbox)
    sandbox.fault("GET", "/getjobledgerentries", status=429, retry_after=1)
    sandbox.fault("GET", "/employeetimeledgerentries", delay=1.0)
    sandbox.fault("POST", "/markjobledgerentrytransfered", delay=1.0)  # the mark may apply after the timeout

    receipt = run_export(settings)

    assert receipt is not None
    calls = receipt.api_calls["by_endpoint"]
    assert calls["GET /getjobledgerentries"] == 2
    assert calls["GET /employeetimeledgerentries"] == 5  # 3 active + the leaver 1099, one read twice (timeout)
    assert calls["POST /markjobledgerentrytransfered"] == 2
    assert_exactly_once(storage, settings, expected, sandbox)


# --- overlapping runs ---------------------------------------------------------------------------------
def _in_thread(settings: Settings) -> tuple[threading.Thread, list[Any]]:
    result: list[Any] = []

    def run() -> None:
        try:
            result.append(run_export(settings))
        except Exception as exc:  # reported through the result
            result.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, result


def test_two_overlapping_runs_export_once(storage, settings, sandbox: Sandbox) -> None:
    expected = expected_entries(sandbox)
    sandbox.fault("GET", "/getjobledgerentries", hold=True)  # the first run holds the lock, reading
    first, first_result = _in_thread(settings)
    sandbox.wait_until_held(1)
    second = run_export(settings)  # meanwhile: the lock is taken
    sandbox.release()
    first.join()
    results = [*first_result, second]

    assert sorted(r is None for r in results) == [False, True], results
    assert len(ledger_files(storage, settings)) == 1
    assert sandbox.calls()["GET /getjobledgerentries"] == 1  # the second run did not even read
    assert_exactly_once(storage, settings, expected, sandbox)


def test_without_the_lock_the_state_etag_still_lets_only_one_run_export(
    storage, settings, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the lease were lost (a paused instance), the conditional write of the intent still fences."""

    @contextmanager
    def no_lock(blob: Any, seconds: int = 60) -> Iterator[object]:
        yield object()

    monkeypatch.setattr("shared.export.run.held_lease", no_lock)
    expected = expected_entries(sandbox)
    sandbox.fault("GET", "/getjobledgerentries", hold=True, times=2)  # both runs read at the same time
    threads = [_in_thread(settings) for _ in range(2)]
    sandbox.wait_until_held(2)
    sandbox.release()
    for thread, _ in threads:
        thread.join()
    results = [result for _, outcome in threads for result in outcome]

    assert sandbox.calls()["GET /getjobledgerentries"] == 2
    assert sorted(r is None for r in results) == [False, True], results
    assert len(ledger_files(storage, settings)) == 1
    assert_exactly_once(storage, settings, expected, sandbox)


def test_entry_in_the_ledger_but_still_untransferred_is_marked_again_not_exported(storage, settings, sandbox):
    run_export(settings)
    exported_rows = [r for r in sandbox.state()["jobledger"] if r["Transfered"]]
    build = connector_factory(settings)

    def forgetful():  # SmartTID "lost" the marks: it returns the entries again
        connector = build()
        connector.untransferred_job_ledger_entries = lambda: [
            r | {"Transfered": False} for r in exported_rows
        ]
        return connector

    before = sandbox.calls()["POST /markjobledgerentrytransfered"]
    assert run_export(settings, connector_factory=forgetful) is None
    assert sandbox.calls()["POST /markjobledgerentrytransfered"] == before + 1
    assert len(ledger_files(storage, settings)) == 1


# --- output format ------------------------------------------------------------------------------------
def test_formula_injection_and_separators_inside_text_are_neutralised(storage, settings, sandbox) -> None:
    sandbox.insert("jobledger", [NEW_JOB | {"ERPReference": "+SUM(A1:A9)", "TotalTime": -1.5,
                                            "OperationDescription": "a;b \"c\"",
                                            "ActivityDescription": "line1\nline2"}])
    sandbox.insert("timeledger", [NEW_TIME | {"Remark": "@cmd|' /C calc'!A0", "WorkCalendarCode": "-STD"}])
    receipt = run_export(settings)
    assert receipt is not None
    [content] = ledger_files(storage, settings).values()
    rows = {(r[0], r[2] if r[0] == "TimeLedgerEntry" else r[16]): r for r in parse(content)}

    assert rows[("JobLedgerEntry", "'=HYPERLINK(\"x\")")]  # the seeded ERPReference
    assert b'"\'=HYPERLINK(""x"")"' in content
    job = rows[("JobLedgerEntry", "'+SUM(A1:A9)")]
    assert job[8] == 'a;b "c"' and job[10] == "line1\nline2"
    assert job[15] == "-1,5"  # a number keeps its sign
    time_row = rows[("TimeLedgerEntry", "0042")]
    assert time_row[15] == "'@cmd|' /C calc'!A0" and time_row[12] == "'-STD"
    remark = next(r for r in parse(content) if r[0] == "TimeLedgerEntry" and r[2:8:5] == ["1002", "NORMAL"])
    assert remark[15] == "'-2 timer afspadsering"
    assert len(parse(content)) == 8  # the line break inside a quoted value did not split a record
    # the receipt lists each entry and column that got the guard (and nothing that did not)
    guarded = sorted(note for note in receipt.notes if "formula guard" in note)
    assert any("ERPReference starts with '+'" in note for note in guarded)
    assert any("Remark starts with '@'" in note for note in guarded)
    assert any("WorkCalendarCode starts with '-'" in note for note in guarded)
    assert not any("TotalTime" in note for note in guarded)  # a negative number is not altered


def test_windows_1252_output_keeps_danish_letters_and_replaces_the_rest(storage, settings, sandbox) -> None:
    settings = tweak(settings, export_encoding=ExportEncoding.WINDOWS_1252, export_decimal_separator=".")
    sandbox.insert("timeledger", [NEW_TIME | {"EmployeeCode": "1001", "Name": "Łukasz Żółć 日本"}])
    receipt = run_export(settings)

    assert receipt is not None and receipt.encoding == "cp1252"
    [content] = ledger_files(storage, settings).values()
    assert not content.startswith(BOM)
    assert "Søren Ærøskøbing".encode("cp1252") in content
    assert "Lukasz Zólc ??".encode("cp1252") in content
    assert b";9.5;" in content
    assert any("Windows-1252" in note for note in receipt.notes)
    assert receipt_of(storage, settings, receipt.file.split("/", 1)[1])["notes"] == receipt.notes


def test_utf8_output_has_a_bom_and_danish_letters(storage, settings, sandbox) -> None:
    receipt = run_export(settings)
    assert receipt is not None and receipt.encoding == "utf-8-sig"
    [content] = ledger_files(storage, settings).values()
    assert content[:3] == BOM and content[3:4] == b"T"
    text = content.decode("utf-8-sig")
    assert "Søren Ærøskøbing" in text and "Overarbejde på Ærø" in text


@pytest.mark.parametrize(
    ("kind", "raw", "text"),
    [(ColumnKind.DECIMAL, 2, "2"), (ColumnKind.DECIMAL, 9.5, "9,5"), (ColumnKind.DECIMAL, "-0.25", "-0,25"),
     (ColumnKind.DECIMAL, 100, "100"), (ColumnKind.TIME, "1900-01-01T00:30:00", "00:30"), (ColumnKind.TIME, "8:05", "08:05"),
     (ColumnKind.DATE, "2022-03-03", "03-03-2022"),
     (ColumnKind.FLAG, True, "1"), (ColumnKind.FLAG, 0, "0"), (ColumnKind.TEXT, "=1+2", "'=1+2"), (ColumnKind.TEXT, None, ""),
     (ColumnKind.INTEGER, 1.0, "1"), (ColumnKind.DATE, "soon", None)],
)
def test_value_formats(kind: ColumnKind, raw: Any, text: str | None) -> None:
    assert format_value(kind, raw, ",") == text


FOLDING_TO_A_TRIGGER = ["\uff1d1+2", "\uff0bSUM(A1)", "\uff0d5", "\uff20cmd", "\ufe66x", "\ufe62x", "\ufe63x",
                        "\ufe6bx", "\u207cx", "\u207ax", "\u208cx", "\u208ax"]


@pytest.mark.parametrize("remark", FOLDING_TO_A_TRIGGER)
def test_the_formula_guard_is_decided_after_windows_1252_folding_on_both_targets(remark: str) -> None:
    """A fullwidth, small or superscript = + - @ folds to a live one: fold first, then guard."""
    row = NEW_TIME | {"ID": 77, "Remark": remark}
    expected = "'" + unicodedata.normalize("NFKD", remark)  # e.g. '=1+2
    # Tic-Tac renders whole files (ledger_format.render), SmartTID spools lines (LedgerSpool.prepare)
    tictac = render([row], [], encoding=ExportEncoding.WINDOWS_1252, decimal_separator=",")
    smarttid = LedgerSpool(encoding=ExportEncoding.WINDOWS_1252, decimal_separator=",").prepare(EntryKind.TIME, row)
    for data, notes in ((tictac.content, tictac.notes), (smarttid.data, list(smarttid.notes))):
        fields = data.decode("cp1252").rstrip("\r\n").split(";")
        assert fields[15] == expected, fields
        assert any("Remark starts with" in note and "formula guard" in note for note in notes), notes
        assert any("1 character(s) that Windows-1252 cannot hold" in note for note in notes), notes
    # UTF-8 keeps the character as it is: nothing to guard, nothing noted
    kept = render([row], [], encoding=ExportEncoding.UTF8_BOM, decimal_separator=",")
    assert f";{remark};".encode() in kept.content and not any("guard" in note for note in kept.notes)


def test_cp1252_folding_never_raises() -> None:
    assert fold_to_cp1252("æøå ÆØÅ €") == ("æøå ÆØÅ €".encode("cp1252"), 0)
    assert fold_to_cp1252("Ł日\u0301") == (b"L??", 3)


# --- the timer function -----------------------------------------------------------------------------
def test_timer_function_is_registered_with_its_schedule_and_exports(storage, settings, sandbox) -> None:
    function = registered("export_ledger")
    trigger = function.get_trigger().get_dict_repr()
    assert trigger["type"] == "timerTrigger"
    assert trigger["schedule"] == "%EXPORT_SCHEDULE%"
    assert trigger["useMonitor"] is True and trigger["runOnStartup"] is False
    assert Settings.model_fields["export_schedule"].default == "0 */15 * * * *"

    expected = expected_entries(sandbox)
    function.get_user_function()(TimerRequest(past_due=False))
    assert set(exported(storage, settings)) == expected
    assert_exactly_once(storage, settings, expected, sandbox)


def interrupted_after_intent(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Intent:
    """A run that stopped right after recording its intent: its file staged, not written."""
    with monkeypatch.context() as patch:
        CRASH_POINTS["after_intent"](patch)
        with pytest.raises(CrashError):
            run_export(settings)
    intent = ExportLedger.connect(settings).read_state().intent
    assert intent is not None
    return intent


def test_bookkeeping_left_in_the_output_container_by_an_older_version_is_moved_and_completed(
    storage, settings, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An older version kept the lock, staged runs and receipts in the output container. A run of it
    # was interrupted after its intent: the new version finds the staging where it now belongs.
    expected = expected_entries(sandbox)
    intent = interrupted_after_intent(settings, monkeypatch)
    state = storage.get_container_client(settings.export_state_container)
    output = storage.get_container_client(settings.output_container)
    for blob in list(state.list_blobs(name_starts_with=RUNS_PREFIX)):  # as the older version left them
        output.upload_blob(f"_state/{blob.name}", state.download_blob(blob.name).readall())
        state.delete_blob(blob.name)
    output.upload_blob("receipts/ledger_old.csv.receipt.json", b'{"status": "exported"}')
    output.upload_blob("_state/export.lock", b"")

    receipt = run_export(settings)

    assert receipt is not None and receipt.run_id == intent.run_id  # the interrupted run, completed
    assert_exactly_once(storage, settings, expected, sandbox)
    assert all(n.startswith("ledger_") for n in blob_names(storage, settings.output_container))
    assert read_blob(storage, settings.export_state_container, "receipts/ledger_old.csv.receipt.json") == (
        b'{"status": "exported"}')
    assert ExportLedger.connect(settings).read_state().intent is None


# --- orphaned staging ---------------------------------------------------------------------------------
def exporter_at(settings: Settings, service: BlobServiceClient, moment: datetime) -> Exporter:
    """An exporter whose clock stands at ``moment`` (no waiting: the staging blobs' age is set by it)."""
    return Exporter(settings, service, ExportLedger.connect(settings), connector_factory(settings),
                    clock=lambda: moment, source=FlaggedSource)


def stored(service: BlobServiceClient, container: str) -> dict[str, bytes]:
    client = service.get_container_client(container)
    return {blob.name: client.download_blob(blob.name).readall() for blob in client.list_blobs()}


def test_orphaned_staging_is_removed_once_older_than_orphan_age_and_nothing_else_is(
    storage, settings, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that stopped after staging, before recording its intent, leaves staging no file refers
    to: a later run removes it once it is older than ORPHAN_AGE (it could still belong to a run that is
    going until then), and never a committed file, a receipt or the lock."""
    expected = expected_entries(sandbox)
    with monkeypatch.context() as patch:
        CRASH_POINTS["after_read"](patch)
        with pytest.raises(CrashError):
            run_export(settings)
    bookkeeping = storage.get_container_client(settings.export_state_container)
    orphans = {blob.name: blob.last_modified for blob in bookkeeping.list_blobs(name_starts_with=RUNS_PREFIX)}
    assert len(orphans) == 2 and {name.rsplit("/", 1)[1] for name in orphans} >= {"manifest.json"}
    assert ExportLedger.connect(settings).read_state().intent is None

    # younger than ORPHAN_AGE (by the storage's own time stamps): kept; the run exports the entries
    young = exporter_at(settings, storage, min(orphans.values()) + ORPHAN_AGE - timedelta(minutes=1)).run()
    assert young is not None
    assert_exactly_once(storage, settings, expected, sandbox)
    assert {blob.name for blob in bookkeeping.list_blobs(name_starts_with=RUNS_PREFIX)} == set(orphans)
    committed = {name: content for name, content in stored(storage, settings.export_state_container).items()
                 if name not in orphans}
    assert receipt_name_for(young.file.split("/", 1)[1]) in committed and "export.lock" in committed
    files = stored(storage, settings.output_container)
    assert len(files) == 1

    # older than ORPHAN_AGE — and so is everything else: only the orphans go
    everything = [*bookkeeping.list_blobs(), *storage.get_container_client(settings.output_container).list_blobs()]
    later = max(blob.last_modified for blob in everything) + ORPHAN_AGE + timedelta(minutes=1)
    assert exporter_at(settings, storage, later).run() is None  # nothing new

    assert [blob.name for blob in bookkeeping.list_blobs(name_starts_with=RUNS_PREFIX)] == []
    assert stored(storage, settings.export_state_container) == committed
    assert stored(storage, settings.output_container) == files
    assert_exactly_once(storage, settings, expected, sandbox)


def test_the_staging_of_an_interrupted_run_is_never_removed_as_an_orphan(
    storage, settings, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its intent is recorded: however old its staged file is, it is the one the next run writes."""
    expected = expected_entries(sandbox)
    intent = interrupted_after_intent(settings, monkeypatch)
    bookkeeping = storage.get_container_client(settings.export_state_container)
    staged = {blob.name: blob.last_modified for blob in bookkeeping.list_blobs(name_starts_with=RUNS_PREFIX)}
    staged_file = read_blob(storage, settings.export_state_container, f"{RUNS_PREFIX}{intent.run_id}/{intent.file_name}")

    receipt = exporter_at(settings, storage, max(staged.values()) + 10 * ORPHAN_AGE).run()

    assert receipt is not None and receipt.run_id == intent.run_id
    assert read_blob(storage, settings.output_container, intent.file_name) == staged_file
    assert_exactly_once(storage, settings, expected, sandbox)


def test_an_exported_job_entry_untransferred_again_is_marked_again_and_the_log_says_so(
    storage, settings, sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    assert run_export(settings) is not None
    entry_id = min(marked_job_ids(sandbox))
    [row] = sandbox.find("jobledger", ID=entry_id)
    sandbox.delete("jobledger", [entry_id])
    sandbox.insert("jobledger", [row | {"Transfered": False}])  # SmartTID lost the mark (or a user cleared it)
    files_before = ledger_files(storage, settings)
    caplog.set_level(logging.INFO, logger="shared.export")

    assert run_export(settings) is None  # never exported twice: no file ...
    assert ledger_files(storage, settings) == files_before
    assert entry_id in marked_job_ids(sandbox)  # ... the mark is set again ...
    assert f"still untransferred in SmartTID and were marked again: [{entry_id}]" in caplog.text  # ... and said
