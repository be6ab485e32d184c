"""Personal data and hostile text, end to end (Azurite + the SmartAPI sandbox over a real socket).

* The CPR number is sent to the target only when SEND_CPR_NUMBER is on; otherwise the sandbox never
  receives it and the receipt says so and how to enable it.
* Values, blob names and the target's messages with control, separator and bidi characters never
  reach a report, a receipt or a log line raw; the rejected-lines file stays byte-exact.
"""

from __future__ import annotations

import json
import logging

import pytest

from shared.platform.safe_text import is_hidden
from tests.conftest import Sandbox, read_blob
from tests.test_import import drop, error_files

EMPLOYEE = "Employee;C100;Carl Cpr;;;;;;010190-1234;PROD"


def raw_hidden(text: str, allowed: str = "") -> list[str]:
    return [f"U+{ord(c):04X}" for c in text if is_hidden(c) and c not in allowed]


def test_cpr_number_is_not_sent_by_default_and_the_receipt_says_how_to_send_it(
    storage, settings, sandbox: Sandbox, monkeypatch
) -> None:
    monkeypatch.delenv("SEND_CPR_NUMBER", raising=False)  # the default, whatever the caller's environment
    data = f"{EMPLOYEE}\nEmployee;C101;No Cpr\nEmployee;C102;Second Cpr;;;;;;020290-2345".encode()
    receipt = drop(storage, settings, "cpr.csv", data)

    assert receipt["counts"] == {"created": 3, "updated": 0, "unchanged": 0, "rejected": 0}
    for code in ("C100", "C101", "C102"):
        [employee] = sandbox.find("employees", EmployeeCode=code)
        assert employee["CPRNo"] in ("", None), employee  # the sandbox stores what it receives
    assert sandbox.find("employees", EmployeeCode="C100")[0]["DepartmentCode"] == "PROD"  # the rest was sent
    [note] = [n for n in receipt["notes"] if "CPR" in n]
    assert "on 2 line(s)" in note and "SEND_CPR_NUMBER is off" in note and "set SEND_CPR_NUMBER to true" in note
    # The archived copy is the original file, byte for byte (its retention is archiveRetentionDays).
    assert read_blob(storage, settings.archive_container, f"cpr.csv/{receipt['etag']}/original/cpr.csv") == data


def test_cpr_number_is_sent_when_opted_in(storage, settings, sandbox: Sandbox, monkeypatch) -> None:
    monkeypatch.setenv("SEND_CPR_NUMBER", "true")
    receipt = drop(storage, settings, "cpr.csv", EMPLOYEE.encode())

    assert sandbox.find("employees", EmployeeCode="C100")[0]["CPRNo"] == "010190-1234"
    assert not [n for n in receipt["notes"] if "CPR" in n]


def test_a_changed_cpr_number_is_not_sent_as_an_update(storage, settings, sandbox: Sandbox, monkeypatch) -> None:
    monkeypatch.setenv("SEND_CPR_NUMBER", "true")
    drop(storage, settings, "first.csv", EMPLOYEE.encode())
    monkeypatch.setenv("SEND_CPR_NUMBER", "false")
    writes = sandbox.writes()

    receipt = drop(storage, settings, "second.csv", EMPLOYEE.replace("010190-1234", "999999-9999").encode())

    assert receipt["counts"] == {"created": 0, "updated": 0, "unchanged": 1, "rejected": 0}
    assert sandbox.writes() == writes
    assert sandbox.find("employees", EmployeeCode="C100")[0]["CPRNo"] == "010190-1234"


HOSTILE_LINES = [
    "Employee;H1;Good",
    # a bad date carrying ESC (terminal control), NEL and a forged report line after U+2028
    "Job;H2;Desc;;31-02\x1b[2J\u0085\u2028bad.csv, line 1 (Job): OK-2026",
    # a value a spreadsheet would run as a formula, on a line that is rejected (too long)
    'Employee;H3;=HYPERLINK("http://evil.example/")' + "x" * 40,
    # the target echoes the template name in its refusal: text from the target
    "Job;H4;Uses a hostile template;;;;Planned;NOSUCH\u202e",
]


def test_hostile_values_and_blob_name_reach_no_report_receipt_or_log_line_raw(
    storage, settings, sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    name = "hours\u202evsc.csv"  # reads as "hoursvsc.csv" reversed: a spoofed extension
    data = "\r\n".join(HOSTILE_LINES).encode()

    receipt = drop(storage, settings, name, data)

    assert receipt["counts"]["rejected"] == 3, (receipt["counts"], error_files(storage, settings))
    files = error_files(storage, settings)
    report = files[receipt["outputs"]["error_report"].split("/", 1)[1]].decode("utf-8-sig")
    assert raw_hidden(report, allowed="\n") == []
    assert "File:      hours\\u202evsc.csv" in report
    assert '"31-02\\x1b[2J\\x85\\u2028bad.csv, line 1 (Job): OK-2026" is 41 characters long' in report
    assert "NOSUCH\\u202e does not exist" in report  # the target's message, escaped
    assert not any(line.startswith("bad.csv, line 1 (Job): OK") for line in report.splitlines())
    # The rejected-lines file is the raw input, byte for byte, and the report says how to open it.
    rejected = files[receipt["outputs"]["rejected_lines"].split("/", 1)[1]]
    assert rejected == "\r\n".join(HOSTILE_LINES[1:]).encode()  # the last line had no line ending
    assert "raw input, byte for byte" in report and "formulas disabled" in report
    assert "Lines with a value that starts with =, +, - or @ (a spreadsheet would treat it as a formula): 3." in report
    # The receipt (JSON) shows the characters as escapes and still parses to the real name.
    receipt_text = read_blob(storage, settings.archive_container, f"{receipt['folder']}/receipt.json").decode()
    assert raw_hidden(receipt_text, allowed="\n") == []
    assert json.loads(receipt_text)["source"] == name
    # No log line from TimeBridge carries a raw hidden character.
    ours = [r for r in caplog.records if r.name.startswith(("shared", "functions"))]
    assert any("hours\\u202evsc.csv" in r.getMessage() for r in ours)
    assert [r.getMessage() for r in ours if raw_hidden(r.getMessage())] == []
