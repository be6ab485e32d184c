"""Parser and value rules on their own (no services needed)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from shared.errors import UnreadableFileError
from shared.importing.parsing import parse_file, split_lines
from shared.records.layouts import EMPLOYEE, JOB, LAYOUTS, OPERATION, RecordType


def parse(data: bytes, chunk: int = 7):
    return parse_file(lambda: (data[i : i + chunk] for i in range(0, len(data), chunk)))


def test_layouts_are_declarative_tables_with_documented_positions() -> None:
    assert [f.name for f in EMPLOYEE.fields][:3] == ["sEmployeeCode", "sName", "sAddress"]
    assert len(EMPLOYEE.fields) == 17 and len(JOB.fields) == 26 and len(OPERATION.fields) == 12
    assert JOB.field("sReference").position == 22 and JOB.field("sRemark").position == 23
    assert JOB.field("sJobGroupCode").max_length == 40 and JOB.field("sCustomerZipCode").max_length == 10
    assert OPERATION.key == ("sJobCode", "nLineNumber")
    assert set(LAYOUTS) == set(RecordType)
    for layout in LAYOUTS.values():  # position n is the n-th parameter: no gaps, no repeats
        assert [f.position for f in layout.fields] == list(range(1, len(layout.fields) + 1))


def test_lines_split_across_chunks_keep_their_numbers() -> None:
    data = b"a;1\r\nb;2\n\nc;3"
    assert list(split_lines([data[:3], data[3:6], data[6:]])) == [(1, b"a;1"), (2, b"b;2"), (3, b""), (4, b"c;3")]


def test_values_are_typed_and_codes_stay_strings() -> None:
    parsed = parse(b"Operation;007;10,5;PAINT;Maling;1.25;;;;;;;1\nJob;0815;Desc;;2026-12-01;24-12-2026")
    operation, job = parsed.records
    assert operation.key == ("007", Decimal("10.5"))
    assert operation.values["sPlannedTime"] == Decimal("1.25")
    assert operation.values["bOperationCompleted"] is True
    assert job.values["sPlannedStartDate"] == date(2026, 12, 1)
    assert job.values["sPlannedCompletionDate"] == date(2026, 12, 24)


def test_duplicate_keys_in_one_file_merge_in_file_order() -> None:
    parsed = parse(b"Employee;1;First;Street\nEmployee;1;Second")
    [record] = parsed.records
    assert record.values["sName"] == "Second" and record.values["sAddress"] == "Street"
    assert record.lines == [1, 2]


def test_record_type_is_case_insensitive_but_must_be_known() -> None:
    parsed = parse(b"employee;1;A\nEmploye;2;B")
    assert [r.key for r in parsed.records] == [("1",)]
    assert [(e.line, e.reason) for e in parsed.errors] == [(2, "is not a known record type (did you mean Employee?)")]


def test_every_bad_field_on_a_line_is_reported() -> None:
    parsed = parse(b"Job;;Desc;;99-99-2026;;Unknown;;;1.5")
    assert [(e.field, e.reason) for e in parsed.errors] == [
        ("sJobCode (position 1)", "is empty, but it identifies the record"),
        ("sPlannedStartDate (position 4)", "is not a valid date"),
        ("sStatus (position 6)", "is not an allowed value"),
        ("nPlannedNumber (position 9)", "is not a whole number"),
    ]


@pytest.mark.parametrize("text", ["1.000,5", "1,2,3", "12a", "-"])
def test_malformed_decimals_are_rejected(text: str) -> None:
    parsed = parse(f"Operation;J;{text};OP;Desc".encode())
    assert parsed.errors[0].field == "nLineNumber (position 2)" and parsed.errors[0].value == text


def test_flags_accept_only_0_and_1() -> None:
    parsed = parse(b"Job;J;D;;;;;;;;;;;;;;;;;;;;;;yes")
    assert parsed.errors[0].field == "sMaterialsRecieved (position 24)"
    assert "write 1 for yes and 0 for no" in parsed.errors[0].action


def test_rejected_job_keys_are_remembered_for_their_operations() -> None:
    parsed = parse(b"Job;J1;D;;bad-date")
    assert parsed.rejected_keys == {(RecordType.JOB, ("J1",)): 1}


def test_invalid_utf8_falls_back_to_windows_1252() -> None:
    parsed = parse("Employee;1;Søren Ærø".encode("cp1252"))
    assert parsed.encoding == "windows-1252" and parsed.records[0].values["sName"] == "Søren Ærø"


@pytest.mark.parametrize(
    ("data", "reason"),
    [(b"", "empty"), (b"\r\n \r\n", "empty"), (b"a\x00b", "binary"), (b"Employee\t1\tX", "tabs")],
)
def test_unreadable_files(data: bytes, reason: str) -> None:
    with pytest.raises(UnreadableFileError) as caught:
        parse(data)
    assert reason in caught.value.reason


def test_a_first_line_without_semicolons_rejects_that_line_only() -> None:
    parsed = parse(b"Employee,1,Comma\r\nEmployee;2;Semicolon\r\n")
    assert [record.key for record in parsed.records] == [("2",)]
    [error] = parsed.errors
    assert error.line == 1 and "no semicolons (it looks separated by commas)" in error.reason


@pytest.mark.parametrize(("line", "named"), [(b"\x1c", "U+001C"), (b" \x07\t", "U+0007"), (b"\x1b\x1b", "U+001B")])
def test_a_line_of_only_a_control_character_names_it(line: bytes, named: str) -> None:
    parsed = parse(b"Employee;1;A\r\n" + line + b"\r\nEmployee;2;B")
    assert [record.key for record in parsed.records] == [("1",), ("2",)]
    [error] = parsed.errors
    assert error.line == 2 and error.reason == f"the line holds nothing but the control character(s) {named}"
    with pytest.raises(UnreadableFileError) as caught:  # the only line: the file cannot be read, and says why
        parse(line)
    assert named in caught.value.reason


@pytest.mark.parametrize(("text", "day"), [("3-02-2026", date(2026, 2, 3)), ("3-2-2026", date(2026, 2, 3)),
                                           ("03-02-2026", date(2026, 2, 3)), ("2026-2-3", date(2026, 2, 3))])
def test_a_one_digit_day_or_month_is_accepted_as_documented(text: str, day: date) -> None:
    parsed = parse(f"Job;J1;Desc;;{text}".encode())
    assert parsed.records[0].values["sPlannedStartDate"] == day
    sheet = (Path(__file__).resolve().parent.parent / "docs" / "file-formats.md").read_text(encoding="utf-8")
    assert "a day or month of one digit is\n    accepted too (`3-2-2026`" in sheet


@pytest.mark.parametrize("chunk", [1, 2, 3, 1000])
def test_a_file_in_small_chunks_reads_as_it_does_whole(chunk: int) -> None:
    # lone CRs at a chunk's end, lines spanning chunks without any line ending, a quoted field across lines
    data = ("Employee;E1;Anne\r\nEmployee;E2;Bo\rJob;J1;Job one\nOperation;J1;1;OP;Step\r\r"
            'Job;J2;"two\rlines"\rEmployee;E3;Søren\rEmployee;E4;no line ending').encode()
    whole, pieces = parse(data, len(data)), parse(data, chunk)
    assert [(r.key, r.values, r.lines) for r in pieces.records] == [(r.key, r.values, r.lines) for r in whole.records]
    assert [r.lines for r in whole.records] == [[1], [2], [3], [4], [6], [8], [9]]
    assert (pieces.errors, pieces.lines_read, pieces.spans) == (whole.errors, 7, {6: 7})


@pytest.mark.parametrize(("data", "said"), [
    (b"PK\x03\x04\x14\x00\x06\x00" + b"\x00" * 20, "an Excel workbook (.xlsx)"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00\x00", "an Excel 97-2003 workbook (.xls)"),
    (b'[{"employee": "1001", "name": "Jens"}]\n', "looks like JSON"),
    (b'{\n  "employees": []\n}\n', "looks like JSON"),
])
def test_a_workbook_or_json_file_is_named_as_what_it_is(data: bytes, said: str) -> None:
    with pytest.raises(UnreadableFileError) as caught:
        parse(data)
    assert said in caught.value.reason


def test_a_misspelt_record_type_gets_a_suggestion() -> None:
    parsed = parse(b"Employees;1;A\nOperations;1;10;X;Y\nXYZ;1")
    assert [e.reason for e in parsed.errors] == ["is not a known record type (did you mean Employee?)",
                                                 "is not a known record type (did you mean Operation?)",
                                                 "is not a known record type"]
