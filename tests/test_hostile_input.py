"""Hostile or careless input: every non-blank line ends applied or reported, nothing is changed
silently, the original bytes are always kept, and nothing escapes the function.

The parser-level cases need no services; the end-to-end ones run the real function against Azurite
and the SmartAPI sandbox.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from azure.storage.blob import BlobServiceClient

from shared.errors import UnreadableFileError
from shared.importing.intake import output_folder
from shared.importing.parsing import FIELD_LIMIT, parse_file
from shared.platform.config import Settings
from tests.conftest import Sandbox, blob_names, read_blob
from tests.functions_host import trigger_import


def parse(data: bytes, chunk: int = 5, **options):
    return parse_file(lambda: (data[i : i + chunk] for i in range(0, len(data), chunk)), **options)


def errors_by_line(parsed) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for error in parsed.errors:
        found.setdefault(error.line, []).append(f"{error.field}|{error.value}|{error.reason}")
    return found


def drop(service: BlobServiceClient, settings: Settings, name: str, data: bytes) -> dict:
    """Upload, run the function for the name the blob got (storage turns ``\\`` into ``/``), return the receipt."""
    etag = service.get_blob_client(settings.input_container, name).upload_blob(data, overwrite=True)["etag"]
    [stored] = blob_names(service, settings.input_container)
    trigger_import(service, settings.input_container, stored)
    folder = f"{output_folder(stored)}/{etag.strip(chr(34))}"
    return json.loads(read_blob(service, settings.archive_container, f"{folder}/receipt.json"))


def line(record: str, **positions: str) -> str:
    """A file line with values at the given positions (``p9="12"``), empty elsewhere."""
    last = max(int(key[1:]) for key in positions)
    fields = [record] + [positions.get(f"p{i}", "") for i in range(1, last + 1)]
    return ";".join(fields)


def report_of(service: BlobServiceClient, settings: Settings, receipt: dict) -> str:
    name = receipt["outputs"]["error_report"].split("/", 1)[1]
    return read_blob(service, settings.error_container, name).decode("utf-8-sig")


def rejected_of(service: BlobServiceClient, settings: Settings, receipt: dict) -> bytes:
    return read_blob(service, settings.error_container, receipt["outputs"]["rejected_lines"].split("/", 1)[1])


# --- 1. real CSV over a decoded stream ---------------------------------------------------------------
def test_a_quoted_line_break_stays_in_its_field_and_the_record_keeps_its_first_line_number() -> None:
    parsed = parse(b'Employee;E1;A\r\nJob;J1;"Two-line\r\nremark";;;;Started\r\nEmployee;E2;B\r\n')

    job = next(r for r in parsed.records if r.key == ("J1",))
    assert job.values["sJobDescription"] == "Two-line\r\nremark"
    assert job.values["sStatus"] == "Started"
    assert job.lines == [2] and parsed.span(2) == range(2, 4)
    assert [r.line for r in parsed.records] == [1, 2, 4]
    assert parsed.errors == [] and parsed.lines_read == 3


@pytest.mark.parametrize("ending", [b"\r", b"\n", b"\r\n"])
def test_every_line_ending_and_a_lone_cr_inside_a_file(ending: bytes) -> None:
    data = ending.join([b"Employee;E1;A", b"Employee;E2;B", b"Employee;E3;C"]) + ending + b"Employee;E4;D\rJob;J1;X"
    parsed = parse(data, chunk=1)  # a CR and its LF in different chunks

    assert [r.key[0] for r in parsed.records] == ["E1", "E2", "E3", "E4", "J1"]
    assert [r.line for r in parsed.records] == [1, 2, 3, 4, 5]


def test_a_field_longer_than_the_csv_modules_default_limit_is_read() -> None:
    remark = "r" * 200_000
    parsed = parse(f"Job;J1;Desc;;;;;;;;;;;;;;;;;;;;;{remark}\nJob;J2;Next".encode(), chunk=65_536)

    assert [r.values.get("sRemark", "") for r in parsed.records] == [remark, ""]
    assert parsed.errors == []


def test_a_field_beyond_our_limit_is_one_clear_error_and_the_next_line_is_read() -> None:
    parsed = parse(b"Job;J1;" + b"x" * (FIELD_LIMIT + 1) + b"\nJob;J2;Next", chunk=1 << 20)

    assert [r.key for r in parsed.records] == [("J2",)]
    [error] = parsed.errors
    assert error.line == 1 and f"longer than {FIELD_LIMIT:,} characters" in error.reason


def test_an_unterminated_quote_at_the_end_is_one_error_for_the_lines_it_swallowed() -> None:
    parsed = parse(b'Employee;E1;A\nJob;J1;"never closed\nmore text\n\nlast line\n')

    assert [r.key for r in parsed.records] == [("E1",)]
    [error] = parsed.errors
    assert (error.line, error.record_type) == (2, "Job")
    assert "closing quote" in error.reason and "lines 2 to 5" in error.reason
    assert parsed.span(2) == range(2, 6)


def test_a_quote_that_swallows_a_following_record_is_rejected_not_merged() -> None:
    parsed = parse(b'Job;J1;"12 pipe;x\nEmployee;E1;Name "Nick";y\nEmployee;E2;Z')

    assert [r.key for r in parsed.records] == [("E2",)]
    assert parsed.errors[0].line == 1 and "quote" in parsed.errors[0].reason


def test_a_stray_quote_inside_a_quoted_field_is_an_error_not_a_silent_merge() -> None:
    parsed = parse(b'Employee;E1;"Jens "J" Hansen"\nEmployee;E2;"Vej ""A"""')

    assert [r.values["sName"] for r in parsed.records] == ['Vej "A"']
    assert [e.line for e in parsed.errors] == [1] and '""' in parsed.errors[0].reason


# --- 2. encoding per line --------------------------------------------------------------------------
def test_one_windows_1252_line_does_not_turn_the_utf8_lines_into_mojibake() -> None:
    data = "Employee;E1;Søren Ærø\n".encode() + "Employee;E2;Åse Øberg\n".encode("cp1252") + "Job;J1;Rør\n".encode()
    parsed = parse(data)

    assert [r.values["sName" if r.record_type == "Employee" else "sJobDescription"] for r in parsed.records] == [
        "Søren Ærø", "Åse Øberg", "Rør"]
    assert parsed.encoding == "mixed" and parsed.fallback_lines == [2]


@pytest.mark.parametrize("byte", [0x81, 0x8D, 0x8F, 0x90, 0x9D])
def test_bytes_undefined_in_windows_1252_reject_the_line_with_byte_and_column(byte: int) -> None:
    parsed = parse(b"Employee;E1;Fine\nEmployee;E2;Bad" + bytes([byte]) + b"Name\nEmployee;E3;Fine")

    assert [r.key for r in parsed.records] == [("E1",), ("E3",)]
    [error] = parsed.errors
    assert error.line == 2 and f"byte 0x{byte:02X} at column 16" in error.reason


@pytest.mark.parametrize("char", ["\x1c", "\x1b", "\x07", "\x7f", "\u0085"])
def test_control_characters_are_rejected_with_their_position_never_stripped(char: str) -> None:
    parsed = parse(f"Employee;E1;Anne{char};Street\nEmployee;E2;Fine".encode())

    assert [r.key for r in parsed.records] == [("E2",)]
    [error] = parsed.errors
    assert error.field == "sName (position 2)"
    assert f"U+{ord(char):04X} at character 5 of the field" in error.reason


def test_tab_stays_allowed_inside_a_value() -> None:
    assert parse(b"Employee;E1;A\tB").records[0].values["sName"] == "A\tB"


# --- 3. values within the target's types -----------------------------------------------------------
@pytest.mark.parametrize(
    ("line", "field", "reason"),
    [
        (line("Job", p1="J1", p2="D", p9="1" * 4301), "nPlannedNumber (position 9)", "outside the range SmartTID"),
        (line("Job", p1="J1", p2="D", p9="99999999999"), "nPlannedNumber (position 9)", "outside the range SmartTID"),
        (line("Job", p1="J1", p2="D", p10="2147483648"), "nNumberPerContainer (position 10)", "outside the range"),
        (line("Job", p1="J1", p2="D", p9="١٢٣"), "nPlannedNumber (position 9)", "is not a whole number"),
        (line("Operation", p1="J1", p2="10", p3="OP", p4="D", p9="9" * 400), "nLength (position 9)", "is too large"),
        (line("Operation", p1="J1", p2="10", p3="OP", p4="D", p9="1,12345"), "nLength (position 9)",
         "5 digits after the decimal separator"),
        (line("Operation", p1="J1", p2="١٠", p3="OP", p4="D"), "nLineNumber (position 2)", "is not a number"),
        (line("Employee", p1="E1", p2="Name", p4="😀" * 20), "sZipCode (position 4)",
         "is 40 characters long as SmartTID counts them"),
        (line("Job", p1="😀" * 11, p2="D"), "sJobCode (position 1)", "is 22 characters long"),
        (line("Job", p1="J1", p2="D", p4="01-01-0001"), "sPlannedStartDate (position 4)", "before 1753"),
        (line("Job", p1="J1", p2="D", p5="٠١-٠١-٢٠٢٦"), "sPlannedCompletionDate (position 5)", "is not a valid date"),
    ],
)
def test_values_outside_the_sql_types_are_rejected_clearly(line: str, field: str, reason: str) -> None:
    parsed = parse(line.encode())

    assert parsed.records == []
    assert any(e.field == field and reason in e.reason for e in parsed.errors), parsed.errors


def test_values_at_the_edges_of_the_sql_types_are_accepted() -> None:
    lines = [
        line("Job", p1="J1", p2="D", p4="01-01-1753", p5="31-12-9999", p9="2147483647", p10="-2147483648"),
        line("Operation", p1="J1", p2="10,5", p3="OP", p4="D", p9="99999999999999.9999"),
        line("Employee", p1="E1", p2="😀" * 25),
    ]
    parsed = parse("\n".join(lines).encode())
    job, operation, employee = parsed.records

    assert parsed.errors == []
    assert (job.values["sPlannedStartDate"].year, job.values["sPlannedCompletionDate"].year) == (1753, 9999)
    assert (job.values["nPlannedNumber"], job.values["nNumberPerContainer"]) == (2147483647, -2147483648)
    assert operation.values["nLength"] == Decimal("99999999999999.9999")
    assert employee.values["sName"] == "😀" * 25


# --- 4. codes compare as the target compares them ----------------------------------------------------
def test_keys_differing_only_in_case_are_one_record_when_the_target_ignores_case() -> None:
    data = b"Employee;a360;First;Street\nEmployee;A360;;;;Aarhus"
    exact, folded = parse(data), parse(data, fold_codes=True)

    assert len(exact.records) == 2
    [record] = folded.records
    assert record.key == ("a360",) and record.lines == [1, 2]
    assert (record.values["sName"], record.values["sCity"]) == ("First", "Aarhus")


def test_codes_match_without_regard_to_case_and_keep_the_stored_spelling(storage, settings, sandbox: Sandbox) -> None:
    sandbox.insert("employees", [{"EmployeeCode": "A360", "Name": "Anne Jensen"}])
    sandbox.insert("jobs", [{"JobCode": "CaseJ", "JobDescription": "Case job", "Status": "Started"}])
    data = b"Employee;a360;Anne Jensen;New Street 1\nOperation;casej;10;WELD;Welding\nJob;casej;Case job"
    receipt = drop(storage, settings, "case.csv", data)

    assert receipt["counts"] == {"created": 1, "updated": 1, "unchanged": 1, "rejected": 0}
    [employee] = sandbox.find("employees", Name="Anne Jensen")
    assert (employee["EmployeeCode"], employee["Address"]) == ("A360", "New Street 1")
    assert [job["JobCode"] for job in sandbox.state()["jobs"] if job["JobCode"].lower() == "casej"] == ["CaseJ"]
    [operation] = sandbox.find("joboperations", LineNumber=10, OperationCode="WELD")
    assert operation["JobCode"] == "CaseJ"
    assert any("a360 is stored as A360" in note for note in receipt["notes"])

    again = drop(storage, settings, "case.csv", data)
    assert again["counts"] == {"created": 0, "updated": 0, "unchanged": 3, "rejected": 0}
    assert again["api_calls"]["writes"] == 0


# --- end to end: nothing lost, nothing changed silently, the rejected lines byte-exact ----------------
def test_a_hostile_file_ends_with_every_line_applied_or_reported(storage, settings, sandbox: Sandbox) -> None:
    lines = [
        'Job;H100;"Two-line\r\nrør";;;;Started\r\n'.encode(),  # 1-2 one record (UTF-8), imported
        b"Employee;H101;Bad\x81Byte\r",  # 3 undefined byte (lone CR ending)
        "Employee;H102;Søren\n".encode("cp1252"),  # 4 Windows-1252, imported
        b"Operation;H100;10;OP;D;;;;;" + b"9" * 400 + b"\r\n",  # 5 a 400-digit decimal
        b"Employee;H103;Ctrl\x1c\n",  # 6 control character
        b'Job;H104;"never closed\r\n',  # 7-8 swallowed to the end
        b"Employee;H105;Swallowed\r\n",
    ]
    data = b"".join(lines)
    receipt = drop(storage, settings, "hostile.csv", data)

    assert receipt["lines"] == 6
    assert receipt["counts"] == {"created": 2, "updated": 0, "unchanged": 0, "rejected": 4}
    assert receipt["encoding"] == "mixed" and receipt["windows_1252_lines"] == "4"
    assert sandbox.find("jobs", JobCode="H100")[0]["JobDescription"] == "Two-line\r\nrør"
    assert sandbox.find("employees", EmployeeCode="H102")[0]["Name"] == "Søren"
    assert not sandbox.find("employees", EmployeeCode="H105")
    assert rejected_of(storage, settings, receipt) == lines[1] + lines[3] + lines[4] + lines[5] + lines[6]
    report = report_of(storage, settings, receipt)
    for where in ("line 3 (Employee)", "line 5 (Operation)", "line 6 (Employee)", "line 7 (Job)"):
        assert where in report
    assert read_blob(storage, settings.archive_container, receipt["outputs"]["archived_copy"].split("/", 1)[1]) == data
    assert blob_names(storage, settings.input_container) == []


def test_our_own_export_format_with_quoted_line_breaks_reads_back(storage, settings, sandbox: Sandbox) -> None:
    from shared.export.ledger_format import text_field

    description = 'Pipe "A"; stage 2\nsecond line'
    line = f"Job;H200;{text_field(description)};;;;Planned\r\n"
    receipt = drop(storage, settings, "roundtrip.csv", line.encode())

    assert receipt["counts"]["created"] == 1
    assert sandbox.find("jobs", JobCode="H200")[0]["JobDescription"] == description


# --- 5. blob names that cannot collide with outputs ---------------------------------------------------
HOSTILE_NAMES = [
    "receipt.json", "errors.txt", "reason.txt", "jobs.rejected.csv", "original", "original/x.csv",
    "a/b/c.csv", "a//b.csv", "/leading.csv", "trailing/", "up..csv", "a/.../b.csv", ".hidden.csv", "...",
    "dots...", "name.", "name .", "x" * 1024, "y/" * 300 + "z.csv", ("seg" * 100 + "/") * 3 + "f.csv",
    "%2F.csv", "a%2Fb.csv", "back\\slash.csv", "\\\\server\\share.csv", "rtl\u202egpj.csv", "bidi\u200f.csv",
    "emoji😀.csv", "😀", "space name.csv", " lead.csv", "tab\tname.csv", "new\nline.csv", "q?uery.csv",
    "hash#.csv", "amp&.csv", "quote'\".csv", "zero\u200bwidth.csv", "ÆØÅ æøå.csv",
    "nfd-å.csv", "CON", "nul.csv", "a~b.csv", "file~0123456789ab",
]


def test_hostile_names_keep_their_bytes_and_never_touch_an_outcome(storage, settings, sandbox: Sandbox) -> None:
    data = b"Employee;N100;Name Test\r\nJobb;bad line\r\n"
    folders = set()
    for name in HOSTILE_NAMES:
        receipt = drop(storage, settings, name, data)

        assert receipt["source"] == name.replace("\\", "/")
        assert receipt["counts"]["rejected"] == 1 and receipt["counts"]["created"] + receipt["counts"]["unchanged"] == 1
        archived = receipt["outputs"]["archived_copy"].split("/", 1)[1]
        assert read_blob(storage, settings.archive_container, archived) == data, name
        assert rejected_of(storage, settings, receipt) == b"Jobb;bad line\r\n"
        folders.add(receipt["folder"])
        for output in (receipt["folder"], *receipt["outputs"].values()):
            assert len(output) <= 1024 and output.count("/") < 254
            assert not any(part.endswith((".", " ")) or part in ("", "..") for part in output.split("/")), output
    assert len(folders) == len(HOSTILE_NAMES)  # no two inputs share a folder
    assert blob_names(storage, settings.input_container) == []


def test_an_input_named_like_an_outcome_file_is_not_mistaken_for_one(storage, settings, sandbox) -> None:
    receipt = drop(storage, settings, "receipt.json", b"Employee;N200;Receipt Named")
    folder = receipt["folder"]

    assert sorted(blob_names(storage, settings.archive_container)) == [
        f"{folder}/original/receipt.json", f"{folder}/receipt.json"]
    assert json.loads(read_blob(storage, settings.archive_container, f"{folder}/receipt.json"))["source"] == "receipt.json"


def test_plain_names_keep_their_folder_and_odd_ones_are_shortened_with_a_hash() -> None:
    assert output_folder("2026/11/jobs.csv") == "2026/11/jobs.csv"
    assert output_folder("ÆØÅ æøå.csv") == "ÆØÅ æøå.csv"
    odd = output_folder("a/../b.csv")
    assert odd.startswith("a_.._b.csv~") and odd != output_folder("a/../b.csv ")
    assert len(output_folder("x" * 1024)) <= 100


# --- 6. nothing escapes ------------------------------------------------------------------------------
def test_an_unexpected_error_while_planning_reports_every_line(storage, settings, sandbox, monkeypatch) -> None:
    from shared.importing.importer import Importer

    def broken(self, records, remote):
        raise RuntimeError("a bug in planning")

    monkeypatch.setattr(Importer, "_plan", broken)  # a fault the sandbox cannot provoke
    receipt = drop(storage, settings, "bug.csv", b"Employee;B100;One\nJob;B101;Two")

    assert receipt["counts"] == {"created": 0, "updated": 0, "unchanged": 0, "rejected": 2}
    assert "internal error (RuntimeError)" in report_of(storage, settings, receipt)
    assert blob_names(storage, settings.input_container) == []


def test_an_unexpected_error_while_reading_stores_the_file_with_a_reason(storage, settings, sandbox,
                                                                         monkeypatch) -> None:
    import shared.importing.passes

    def broken(*args, **kwargs):
        raise MemoryError("a fault while parsing")

    monkeypatch.setattr(shared.importing.passes, "scan_file", broken)  # the first read of the file
    data = b"Employee;B200;Kept"
    receipt = drop(storage, settings, "broken.csv", data)

    assert receipt["status"] == "rejected-file"
    assert read_blob(storage, settings.error_container, receipt["outputs"]["moved_to"].split("/", 1)[1]) == data
    assert "internal error (MemoryError)" in receipt["notes"][-1]
    assert blob_names(storage, settings.input_container) == [] and sandbox.writes() == {}


def test_binary_data_stays_a_whole_file_rejection() -> None:
    with pytest.raises(UnreadableFileError):
        parse(b"Employee;E1;A\x00B")
