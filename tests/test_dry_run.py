"""The validate drop zone: a dry run with reads only, a report per line, and the same answer the
real import then gives (Azurite + the SmartAPI sandbox over a real socket)."""

from __future__ import annotations

import json

import pytest
from azure.storage.blob import BlobServiceClient

from shared.importing.intake import FileRun
from shared.platform.config import Settings
from tests.conftest import Sandbox, blob_names, read_blob
from tests.functions_host import trigger_import, trigger_validate

FILE = "\r\n".join([
    "Employee;1001;Jens Hansen;Ny vej 7",  # 1 update: address
    "Employee;D100;New Person",  # 2 create
    "Job;1000;Målerstation Ærø",  # 3 unchanged
    "Job;D200;New job;;;;Started",  # 4 create
    "Operation;D200;10;WELD;Welding",  # 5 create (its job is created first)
    "Operation;NOJOB;10;WELD;Welding",  # 6 reject: job neither stored nor in the file
    "Employee;D101;" + "x" * 51,  # 7 reject: too long
]).encode()


def validate(service: BlobServiceClient, settings: Settings, name: str, data: bytes) -> tuple[dict, str]:
    etag = service.get_blob_client(settings.validate_container, name).upload_blob(data, overwrite=True)["etag"]
    trigger_validate(service, settings.validate_container, name)
    folder = FileRun(name, etag).folder
    report = json.loads(read_blob(service, settings.validate_container, f"{folder}/report.json"))
    text = read_blob(service, settings.validate_container, f"{folder}/report.txt").decode("utf-8-sig")
    return report, text


def test_a_dry_run_writes_nothing_and_says_what_each_line_would_do(storage, settings, sandbox: Sandbox) -> None:
    report, text = validate(storage, settings, "plan.csv", FILE)

    assert sandbox.writes() == {}
    assert [(entry["line"], entry["action"]) for entry in report["lines"]] == [
        (1, "update"), (2, "create"), (3, "unchanged"), (4, "create"), (5, "create"), (6, "reject"), (7, "reject")]
    assert report["lines"][0]["changes"] == [{"field": "sAddress", "from": None, "to": "Ny vej 7"}]
    assert report["counts"] == {"update": 1, "create": 3, "unchanged": 1, "reject": 2}
    assert report["writes_needed"] == 4 and report["reads"] >= 2
    assert 'Line 1 (Employee sEmployeeCode 1001): update — sAddress: (empty) → "Ny vej 7"' in text
    assert "plan.csv, line 6 (Operation): field sJobCode (position 1)" in text
    # The file is gone from the drop zone, its reports stay; nothing was imported or archived.
    left = blob_names(storage, settings.validate_container)
    assert len(left) == 2 and all(name.endswith(("/report.json", "/report.txt")) for name in left)
    assert blob_names(storage, settings.archive_container) == [] and blob_names(storage, settings.error_container) == []


def test_the_dry_run_matches_what_the_real_import_then_does(storage, settings, sandbox: Sandbox) -> None:
    report, _ = validate(storage, settings, "same.csv", FILE)
    etag = storage.get_blob_client(settings.input_container, "same.csv").upload_blob(FILE, overwrite=True)["etag"]
    trigger_import(storage, settings.input_container, "same.csv")
    receipt = json.loads(read_blob(storage, settings.archive_container, FileRun("same.csv", etag).receipt))

    planned = report["counts"]
    done = receipt["counts"]
    assert (planned["create"], planned["update"], planned["unchanged"], planned["reject"]) == (
        done["created"], done["updated"], done["unchanged"], done["rejected"])
    assert sum(n for key, n in sandbox.writes().items()) == report["writes_needed"]


def test_reports_in_the_drop_zone_are_never_validated_again(storage, settings, sandbox: Sandbox) -> None:
    validate(storage, settings, "once.csv", b"Employee;D300;Once")
    reports = blob_names(storage, settings.validate_container)
    calls = sandbox.calls()

    for name in reports:  # Event Grid also reports our own uploads
        trigger_validate(storage, settings.validate_container, name)

    assert sorted(blob_names(storage, settings.validate_container)) == sorted(reports)
    assert sandbox.calls() == calls


def test_an_unreadable_file_gets_a_report_that_says_why(storage, settings, sandbox: Sandbox) -> None:
    report, text = validate(storage, settings, "commas.csv", b"Employee,1,Comma")

    assert "looks separated by commas" in report["file_problem"]
    assert "The whole file would be rejected" in text
    assert sandbox.calls() == {}


def test_a_file_under_match_gets_the_readiness_report_and_is_removed(storage, settings, sandbox: Sandbox) -> None:
    name = "match/erp.csv"
    etag = storage.get_blob_client(settings.validate_container, name).upload_blob(FILE, overwrite=True)["etag"]
    trigger_validate(storage, settings.validate_container, name)
    folder = FileRun(name, etag).folder
    report = json.loads(read_blob(storage, settings.validate_container, f"{folder}/readiness.json"))
    text = read_blob(storage, settings.validate_container, f"{folder}/readiness.txt").decode("utf-8-sig")
    assert sandbox.writes() == {}
    assert report["kinds"][0]["matched"] == {"by employee code": 1}
    assert [item["line"] for item in report["kinds"][0]["would_create"]] == [2]
    assert "matching readiness" in text and report["ready"] is False  # line 6 and 7 are problems
    assert name not in blob_names(storage, settings.validate_container)


def test_a_readiness_file_too_large_to_read_whole_gets_the_reason_not_a_report(
        storage, settings, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.importing import passes

    monkeypatch.setattr(passes, "WHOLE_FILE_LIMIT", 40)  # the report lists every line: the file is read whole
    name = "match/big.csv"
    etag = storage.get_blob_client(settings.validate_container, name).upload_blob(FILE, overwrite=True)["etag"]
    trigger_validate(storage, settings.validate_container, name)
    report = json.loads(read_blob(storage, settings.validate_container, f"{FileRun(name, etag).folder}/readiness.json"))
    [problem] = report["problems"]
    assert "the readiness report lists every line" in json.dumps(problem) and "40 bytes" in json.dumps(problem)
    assert sandbox.calls() == {} or all(not key.startswith(("POST", "PUT")) for key in sandbox.calls())


CPR_FILE = "\r\n".join([
    "Employee;1001;Jens Hansen;;;;;;010190-1234",  # stored employee: would the CPR number be an update?
    "Employee;D400;New Cpr;;;;;;020290-2345",  # create, with a CPR number
    "Employee;D401;Long Cpr;;;;;;" + "3" * 21,  # reject: the CPR field is too long
]).encode()


def test_the_dry_run_withholds_cpr_numbers_like_the_import(storage, settings, sandbox: Sandbox, monkeypatch) -> None:
    monkeypatch.delenv("SEND_CPR_NUMBER", raising=False)  # the default: off
    report, text = validate(storage, settings, "cpr.csv", CPR_FILE)

    assert [(entry["line"], entry["action"]) for entry in report["lines"]] == [
        (1, "unchanged"), (2, "create"), (3, "reject")]  # no CPR update predicted: the import will not make one
    assert any("SEND_CPR_NUMBER is off" in note for note in report["notes"])
    assert "field sCPRNo (position 8) (withheld) is 21 characters long" in text
    for shown in (text, json.dumps(report)):
        assert "010190-1234" not in shown and "020290-2345" not in shown and "3" * 21 not in shown


def test_no_dry_run_report_prints_a_cpr_value_even_when_it_is_sent(storage, settings, sandbox: Sandbox,
                                                                    monkeypatch) -> None:
    monkeypatch.setenv("SEND_CPR_NUMBER", "true")
    report, text = validate(storage, settings, "cpr.csv", CPR_FILE)

    assert report["lines"][0]["action"] == "update"
    assert report["lines"][0]["changes"] == [{"field": "sCPRNo", "from": None, "to": "(withheld)"}]
    assert "update — sCPRNo: (empty) → (withheld)" in text
    for shown in (text, json.dumps(report)):
        assert "010190-1234" not in shown and "3" * 21 not in shown


def test_the_json_report_escapes_hidden_characters_of_the_blob_name_like_the_text(storage, settings,
                                                                                sandbox: Sandbox) -> None:
    name = "rtl\u202egpj\u2028\u200fx\x7f.csv"
    etag = storage.get_blob_client(settings.validate_container, name).upload_blob(b"Employee;D500;Hidden")["etag"]
    trigger_validate(storage, settings.validate_container, name)
    folder = FileRun(name, etag).folder
    raw = read_blob(storage, settings.validate_container, f"{folder}/report.json").decode("utf-8")
    text = read_blob(storage, settings.validate_container, f"{folder}/report.txt").decode("utf-8-sig")

    for hidden in ("\u202e", "\u2028", "\u200f", "\x7f"):
        assert hidden not in raw and hidden not in text
    assert "\\u202e" in raw and "\\u202e" in text  # named, as an escape, in both
    assert json.loads(raw)["source"] == name  # the JSON stays exact for a program


def test_the_drop_zone_report_lists_at_most_the_cap_of_each_kind_and_counts_the_rest(storage, settings,
                                                                                    sandbox: Sandbox) -> None:
    from shared.importing.dry_run import REPORT_LIMIT

    creates = [f"Employee;K{i:05d};Capped Person {i}" for i in range(REPORT_LIMIT + 3)]
    rejects = [f"Employee;R{i:05d};" + "x" * 51 for i in range(REPORT_LIMIT + 5)]  # the name is too long
    report, text = validate(storage, settings, "capped.csv", "\r\n".join(rejects + creates).encode())

    assert report["counts"] == {"reject": REPORT_LIMIT + 5, "create": REPORT_LIMIT + 3}
    listed = [entry["action"] for entry in report["lines"]]
    assert listed.count("reject") == REPORT_LIMIT and listed.count("create") == REPORT_LIMIT
    assert report["rejected_left_off"] == 5 and report["others_left_off"] == 3 and report["limit"] == REPORT_LIMIT
    assert [entry["line"] for entry in report["lines"]][:2] == [1, 2]  # the first lines, in file order
    assert f"… and 5 more rejected lines, not listed: a report lists the first {REPORT_LIMIT:,}" in text
    assert "timebridge validate FILE --limit 0" in text
    assert "… and 3 more lines that would be created, updated or left unchanged, not listed" in text
    assert f"line {REPORT_LIMIT + 1} " not in text.lower()  # the first rejected line not listed is not described


def test_the_report_keeps_the_first_lines_whatever_order_their_outcomes_come_in() -> None:
    from shared.importing.dry_run import ReportLines
    from shared.importing.importer import ImportResult, LineStatus, Outcome
    from shared.importing.parsing import ParsedFile
    from shared.records.layouts import RecordType
    from shared.records.record import LineError, Record

    lines = ReportLines(limit=3)
    for line in range(5_000, 0, -1):  # operations' outcomes can come before their jobs': later lines first
        lines.add(Outcome(Record(RecordType.JOB, (f"J{line}",), {"sJobCode": f"J{line}"}, [line]), LineStatus.CREATED))
        assert len(lines._kept) <= 3  # memory: only the lines it can show
    errors = [LineError(line, "Job", "", "", "is wrong", "fix it") for line in (2, 7, 8, 9)]
    report = lines.report("f.csv", "SmartTID", ParsedFile(), ImportResult(errors=errors), 0)

    assert [(entry["line"], entry["action"]) for entry in report.lines] == [
        (1, "create"), (2, "reject"), (3, "create"), (7, "reject"), (8, "reject")]
    assert report.counts == {"create": 4_996, "reject": 4}  # line 2 had an outcome, then an error: rejected once
    assert (report.rejected_left_off, report.others_left_off) == (1, 4_994)


def test_a_report_with_a_cap_of_nothing_lists_nothing_and_counts_every_line() -> None:
    from shared.importing.dry_run import ReportLines
    from shared.importing.importer import ImportResult, LineStatus, Outcome
    from shared.importing.parsing import ParsedFile
    from shared.records.layouts import RecordType
    from shared.records.record import Record

    lines = ReportLines(limit=0)
    lines.add(Outcome(Record(RecordType.JOB, ("J1",), {"sJobCode": "J1"}, [1, 2]), LineStatus.UPDATED, ()))
    report = lines.report("f.csv", "SmartTID", ParsedFile(), ImportResult(), 0)

    assert report.lines == [] and report.counts == {"update": 2} and report.others_left_off == 2
    assert report.writes_needed == 1
