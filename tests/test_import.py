"""The import slice end to end: Azurite for storage, the SmartAPI sandbox over a real socket."""

from __future__ import annotations

import json

import pytest
from azure.storage.blob import BlobServiceClient

from shared.importing.intake import FileRun
from shared.platform.config import Settings
from tests.conftest import Sandbox, blob_names, read_blob
from tests.functions_host import trigger_import

DOC_LINE = "Job;1400;Test job 1400;Imported with SmartTIDIntegrationService;;;Started;;;;;;;;;;;;;;;;Referece;Remark;0;0;;0;;;"


def upload(service: BlobServiceClient, settings: Settings, name: str, data: bytes) -> str:
    client = service.get_blob_client(settings.input_container, name)
    return client.upload_blob(data, overwrite=True)["etag"].strip('"')


def drop(service: BlobServiceClient, settings: Settings, name: str, data: bytes) -> dict:
    """Upload a file, run the function for it, return its receipt."""
    etag = upload(service, settings, name, data)
    trigger_import(service, settings.input_container, name)
    return json.loads(read_blob(service, settings.archive_container, FileRun(name, etag).receipt))


def error_files(service: BlobServiceClient, settings: Settings) -> dict[str, bytes]:
    return {name: read_blob(service, settings.error_container, name) for name in blob_names(service, settings.error_container)}


def test_documentation_line_imports_as_job_1400(storage, settings, sandbox: Sandbox) -> None:
    receipt = drop(storage, settings, "jobs.csv", DOC_LINE.encode())

    [job] = sandbox.find("jobs", JobCode="1400")
    assert job["JobDescription"] == "Test job 1400"
    assert job["JobDescription2"] == "Imported with SmartTIDIntegrationService"
    assert job["Status"] == "Started"
    assert job["Reference"] == "Referece"
    assert job["Remark"] == "Remark"
    assert job["MaterialsRecieved"] is False and job["ReadyToShip"] is False
    assert receipt["counts"] == {"created": 1, "updated": 0, "unchanged": 0, "rejected": 0}
    assert receipt["status"] == "imported"
    assert any("position 27, whose meaning the file format" in note for note in receipt["notes"])
    assert blob_names(storage, settings.input_container) == []
    assert blob_names(storage, settings.error_container) == []
    assert read_blob(storage, settings.archive_container, f"jobs.csv/{receipt['etag']}/original/jobs.csv") == DOC_LINE.encode()


def test_every_layout_with_every_known_field(storage, settings, sandbox: Sandbox, monkeypatch) -> None:
    monkeypatch.setenv("SEND_CPR_NUMBER", "true")  # opt-in; the default withholds it (tests/test_personal_data.py)
    employee = "Employee;A360;Anne Jensen;Vestergade 1;8000;Aarhus C;+4512345678;aj@example.dk;010190;PROD;Production;STD;WELD;Welder;HOUR;Hourly;FUNK;Function journal"
    job = ("Job;0815;Pipe rack;Second line;01-12-2026;2026-12-24;Planned;TEMPLATE1;GROUP-A;100;10;ORD-1;C-9;"
           "Customer A/S;Havnen 2;8000;Aarhus;+4511111111;20-12-2026;;PROD;PRD-7;REF-1;A remark;1;0;15-12-2026")
    operation = "Operation;0815;30;WELD;Welding, seams;2,5;ERP-30;4,25;1;120.5;40;10;1"
    receipt = drop(storage, settings, "all.csv", "\n".join([employee, job, operation]).encode())

    assert receipt["counts"]["rejected"] == 0, receipt
    [emp] = sandbox.find("employees", EmployeeCode="A360")
    assert (emp["Name"], emp["City"], emp["EMail"], emp["CPRNo"]) == ("Anne Jensen", "Aarhus C", "aj@example.dk", "010190")
    assert (emp["DepartmentCode"], emp["WorkCalendarCode"], emp["PayrollTypeCode"], emp["JournalCode"]) == (
        "PROD", "STD", "HOUR", "FUNK")
    [created_job] = sandbox.find("jobs", JobCode="0815")
    assert created_job["PlannedStartDate"] == "2026-12-01T00:00:00"
    assert created_job["PlannedCompletionDate"] == "2026-12-24T00:00:00"
    assert created_job["ExpectedMaterialDeliveryDate"] == "2026-12-15T00:00:00"
    assert (created_job["PlannedNumber"], created_job["MaterialsRecieved"], created_job["ReadyToShip"]) == (100, True, False)
    assert created_job["JobTemplate"] == "TEMPLATE1" and created_job["JobGroupCode"] == "GROUP-A"
    [op] = sandbox.find("joboperations", JobCode="0815", LineNumber=30)
    assert (op["Description"], op["PlannedTime"], op["PlannedQuantityPerHour"], op["Length"]) == (
        "Welding, seams", 2.5, 4.25, 120.5)
    assert op["OperationCompleted"] is True


def test_codes_keep_leading_zeros_and_empty_fields_never_clear(storage, settings, sandbox: Sandbox) -> None:
    drop(storage, settings, "emp.csv", b"Employee;0042;;;;Odense")

    [emp] = sandbox.find("employees", EmployeeCode="0042")
    assert emp["Name"] == "Åse Øberg"  # empty sName did not clear the stored name
    assert emp["City"] == "Odense"
    assert sandbox.find("employees", EmployeeCode="42") == []


def test_windows_1252_file_keeps_danish_letters(storage, settings, sandbox: Sandbox) -> None:
    data = "Employee;2001;Søren Ærø Åberg;Østergade 5\r\nJob;2002;Færdigmelding på lager\r\n".encode("cp1252")
    receipt = drop(storage, settings, "legacy.csv", data)

    assert receipt["encoding"] == "windows-1252"
    assert any("Windows-1252" in note for note in receipt["notes"])
    assert sandbox.find("employees", EmployeeCode="2001")[0]["Name"] == "Søren Ærø Åberg"
    assert sandbox.find("jobs", JobCode="2002")[0]["JobDescription"] == "Færdigmelding på lager"


def test_utf8_bom_crlf_blank_lines_and_quoted_fields(storage, settings, sandbox: Sandbox) -> None:
    data = '\ufeffEmployee;2101;"Hansen; Jens";"Vej ""A"""\r\n\r\n  \r\nJob;2102;Rør\r\n'.encode()
    receipt = drop(storage, settings, "bom.csv", data)

    assert receipt["encoding"] == "utf-8"
    assert receipt["lines"] == 2
    emp = sandbox.find("employees", EmployeeCode="2101")[0]
    assert (emp["Name"], emp["Address"]) == ("Hansen; Jens", 'Vej "A"')
    assert sandbox.find("jobs", JobCode="2102")[0]["JobDescription"] == "Rør"


def test_bad_lines_are_reported_with_line_field_value_reason(storage, settings, sandbox: Sandbox) -> None:
    lines = [
        "Employee;3001;Good Person",  # 1 ok
        "Job;3002;Job with bad date;;31-02-2026",  # 2 bad date
        "Employee;3003;" + "x" * 51,  # 3 too long
        "Job;3004;Job;;;;;;;many",  # 4 wrong type (integer)
        "Jobb;3005;Typo in record type",  # 5 unknown record type
        "Operation;3002;10;PAINT;Painting",  # 6 operation for the failed job on line 2
        "Operation;9999;10;PAINT;Painting",  # 7 job neither in SmartTID nor in the file
        "Job;3006;Status;;;;Done",  # 8 not an allowed status
    ]
    receipt = drop(storage, settings, "bad.csv", "\r\n".join(lines).encode())

    assert receipt["status"] == "imported-with-errors"
    assert receipt["counts"] == {"created": 1, "updated": 0, "unchanged": 0, "rejected": 7}
    errors = error_files(storage, settings)
    report = errors[f"bad.csv/{receipt['etag']}/errors.txt"].decode("utf-8-sig")
    expected = [
        'bad.csv, line 2 (Job): field sPlannedStartDate (position 4) "31-02-2026" is not a valid date',
        'bad.csv, line 3 (Employee): field sName (position 2) "' + "x" * 51 + '" is 51 characters long; SmartTID allows at most 50',
        'bad.csv, line 4 (Job): field nPlannedNumber (position 9) "many" is not a whole number',
        'bad.csv, line 5 (Jobb): field record type (position 0) "Jobb" is not a known record type (did you mean Job?)',
        "bad.csv, line 6 (Operation): field sJobCode (position 1) \"3002\" names the operation's job, and the operation cannot be imported: its job 3002 on line 2 was rejected",
        "bad.csv, line 7 (Operation): field sJobCode (position 1) \"9999\" names the operation's job, and the operation cannot be imported: job 9999 does not exist in SmartTID",
        'bad.csv, line 8 (Job): field sStatus (position 6) "Done" is not an allowed value',
    ]
    for text in expected:
        assert text in report, text
    assert "What to do:" in report
    rejected = errors[f"bad.csv/{receipt['etag']}/bad.rejected.csv"].decode()
    assert rejected.splitlines() == lines[1:]
    assert sandbox.find("employees", EmployeeCode="3001")


def test_api_rejection_is_surfaced_on_the_line(storage, settings, sandbox: Sandbox) -> None:
    receipt = drop(storage, settings, "tpl.csv", b"Job;4001;Uses a missing template;;;;Planned;NOSUCH\nJob;4002;Fine")

    assert receipt["counts"]["created"] == 1 and receipt["counts"]["rejected"] == 1
    report = error_files(storage, settings)[f"tpl.csv/{receipt['etag']}/errors.txt"].decode("utf-8-sig")
    assert "line 1 (Job): SmartTID refused to create Job sJobCode 4001: Job template NOSUCH does not exist" in report


def test_reimport_of_the_same_file_makes_no_write_calls(storage, settings, sandbox: Sandbox) -> None:
    data = "\n".join(["Employee;5001;Ny Medarbejder", DOC_LINE, "Operation;1400;10;PAINT;Maling", "Job;1000;Målerstation Ærø"]).encode()
    first = drop(storage, settings, "daily.csv", data)
    assert first["counts"] == {"created": 3, "updated": 0, "unchanged": 1, "rejected": 0}
    writes_before = sandbox.writes()

    second = drop(storage, settings, "daily.csv", data)

    assert second["counts"] == {"created": 0, "updated": 0, "unchanged": 4, "rejected": 0}
    assert second["api_calls"]["writes"] == 0
    assert sandbox.writes() == writes_before


def test_the_stored_employees_are_let_go_once_planned_unless_the_readiness_report_lists_them(settings, sandbox) -> None:
    from shared.importing.importer import Importer
    from shared.importing.parsing import parse_file
    from shared.records.layouts import RecordType
    from shared.targets.factory import connector_factory

    text = "\n".join(["Employee;5001;Ny Medarbejder", DOC_LINE, "Operation;1400;10;PAINT;Maling"]).encode()
    held = {}
    for reported in (False, True):
        connector = connector_factory(settings)()
        try:
            importer = Importer(connector, dry_run=True, on_match=(lambda record, stored: None) if reported else None)
            importer.run(parse_file(lambda: [text]))
        finally:
            connector.close()
        held[reported] = (len(importer.stored_records(RecordType.EMPLOYEE)), len(importer.stored_records(RecordType.JOB)))
    assert held[True][0] > 0 and held[True][1] > 0  # the seeded employees and jobs, for the report
    assert held[False] == (0, held[True][1])  # the operations look up jobs only


def test_changed_fields_only_are_updated(storage, settings, sandbox: Sandbox) -> None:
    receipt = drop(storage, settings, "upd.csv", b"Employee;1001;Jens Hansen;Ny vej 7;;;;;;SALG;Salg")

    assert receipt["counts"]["updated"] == 1
    emp = sandbox.find("employees", EmployeeCode="1001")[0]
    assert (emp["Address"], emp["DepartmentCode"], emp["Name"]) == ("Ny vej 7", "SALG", "Jens Hansen")
    assert receipt["api_calls"]["by_endpoint"].get("PUT /employees/{ID}") == 1


def test_duplicate_trigger_for_the_same_etag_does_nothing_twice(storage, settings, sandbox: Sandbox) -> None:
    etag = upload(storage, settings, "dup.csv", b"Employee;6001;Once Only")
    client = storage.get_blob_client(settings.input_container, "dup.csv")
    trigger_import(storage, settings.input_container, "dup.csv")
    calls_after_first = sandbox.calls()

    # Event Grid delivers at least once: the same event again, and the file is already gone.
    trigger_import(storage, settings.input_container, "dup.csv")
    assert sandbox.calls() == calls_after_first
    assert not client.exists()
    assert blob_names(storage, settings.archive_container) == [f"dup.csv/{etag}/original/dup.csv", f"dup.csv/{etag}/receipt.json"]


def test_input_is_deleted_only_after_the_outcome_is_stored(storage, settings, sandbox, monkeypatch) -> None:
    from shared.importing.intake import Intake

    upload(storage, settings, "crash.csv", b"Employee;7001;Crash Test\nJobb;x")

    def fail(*args, **kwargs):
        raise ConnectionError("storage went away while writing the receipt")

    with monkeypatch.context() as patch, pytest.raises(ConnectionError):
        patch.setattr(Intake, "_write_receipt", fail)
        trigger_import(storage, settings.input_container, "crash.csv")
    assert blob_names(storage, settings.input_container) == ["crash.csv"]  # nothing lost

    trigger_import(storage, settings.input_container, "crash.csv")  # the host's retry
    assert blob_names(storage, settings.input_container) == []
    assert len(sandbox.find("employees", EmployeeCode="7001")) == 1
    [receipt_name] = [n for n in blob_names(storage, settings.archive_container) if n.endswith("receipt.json")]
    receipt = json.loads(read_blob(storage, settings.archive_container, receipt_name))
    assert receipt["counts"] == {"created": 0, "updated": 0, "unchanged": 1, "rejected": 1}


def test_leftover_input_after_stored_outcome_is_removed_without_reimport(storage, settings, sandbox) -> None:
    etag = upload(storage, settings, "left.csv", b"Employee;7101;Left Over")
    storage.get_blob_client(settings.archive_container, f"left.csv/{etag}/receipt.json").upload_blob(b"{}")

    trigger_import(storage, settings.input_container, "left.csv")

    assert blob_names(storage, settings.input_container) == []
    assert sandbox.find("employees", EmployeeCode="7101") == []
    assert sandbox.writes() == {}


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "the file is empty"),
        (b"\n\r\n  \n", "the file is empty"),
        (b"PK\x03\x04\x00\x00binary", "an Excel workbook (.xlsx) or another ZIP archive"),
        (b"\x01\x02\x00\x00binary", "binary data"),
        (b"Employee,8001,Comma Person\n", "looks separated by commas"),
    ],
)
def test_unreadable_file_moves_to_error_with_reason(storage, settings, sandbox, data, reason) -> None:
    receipt = drop(storage, settings, "odd.csv", data)

    assert receipt["status"] == "rejected-file"
    folder = f"odd.csv/{receipt['etag']}"
    assert blob_names(storage, settings.error_container) == [f"{folder}/original/odd.csv", f"{folder}/reason.txt"]
    assert read_blob(storage, settings.error_container, f"{folder}/original/odd.csv") == data
    assert reason in read_blob(storage, settings.error_container, f"{folder}/reason.txt").decode("utf-8-sig")
    assert blob_names(storage, settings.input_container) == []
    assert sandbox.writes() == {}


def test_file_over_the_size_limit_is_rejected(storage, settings, sandbox, monkeypatch) -> None:
    monkeypatch.setenv("MAX_FILE_BYTES", "100")
    receipt = drop(storage, settings, "big.csv", b"Employee;8101;Big\n" * 10)

    assert receipt["status"] == "rejected-file"
    assert "the limit is 100 bytes" in receipt["notes"][0]
    assert sandbox.writes() == {}


def test_missing_secret_rejects_every_line_with_a_clear_message(storage, settings, sandbox, monkeypatch) -> None:
    monkeypatch.delenv("SMARTTID_CUSTOMER_KEY")
    receipt = drop(storage, settings, "nosecret.csv", b"Employee;8201;No Secret\nJob;8202;No Secret")

    assert receipt["counts"]["rejected"] == 2
    report = error_files(storage, settings)[f"nosecret.csv/{receipt['etag']}/errors.txt"].decode("utf-8-sig")
    assert "SMARTTID_CUSTOMER_KEY" in report and "is not set" in report
    assert sandbox.calls() == {}


def test_server_errors_and_429_are_retried_and_every_line_ends_applied(storage, settings, sandbox) -> None:
    sandbox.fault("POST", "/jobs", status=500, times=2)
    sandbox.fault("GET", "/employees", status=429, retry_after=1, times=1)
    sandbox.fault("PUT", "/employees", status=503, times=1)
    data = b"Employee;1001;Jens Hansen;Retry vej 1\nJob;9001;After two 500s\nEmployee;9002;New"
    receipt = drop(storage, settings, "faults.csv", data)

    assert receipt["counts"] == {"created": 2, "updated": 1, "unchanged": 0, "rejected": 0}
    assert len(sandbox.find("jobs", JobCode="9001")) == 1
    assert sandbox.calls()["POST /jobs"] == 3


def test_ambiguous_post_failure_does_not_create_twice(storage, settings, sandbox) -> None:
    # The create is applied, then the connection drops / the answer is a 500: look before re-sending.
    sandbox.fault("POST", "/jobs", drop=True, after_apply=True, times=1)
    sandbox.fault("POST", "/joboperations", status=500, after_apply=True, times=1)
    receipt = drop(storage, settings, "amb.csv", b"Job;9101;Dropped answer\nOperation;9101;10;CUT;Cutting")

    assert receipt["counts"] == {"created": 2, "updated": 0, "unchanged": 0, "rejected": 0}
    assert len(sandbox.find("jobs", JobCode="9101")) == 1
    assert len(sandbox.find("joboperations", JobCode="9101")) == 1
    assert sandbox.calls()["POST /jobs"] == 1


def test_timeouts_end_with_every_line_applied_or_reported(storage, settings, sandbox, monkeypatch) -> None:
    # HTTP_TIMEOUT_SECONDS 1 (2 in other tests; the delays keep the same 1 s margin over it): the PUT
    # times out every time, the POST once
    monkeypatch.setenv("HTTP_TIMEOUT_SECONDS", "1")
    sandbox.fault("PUT", "/employees", delay=2, times=10)
    sandbox.fault("POST", "/employees", delay=2, after_apply=True, times=1)
    receipt = drop(storage, settings, "slow.csv", "Employee;1002;Søren;Timeout vej\nEmployee;9201;Slow create".encode())

    assert receipt["lines"] == 2
    assert receipt["counts"]["created"] == 1 and receipt["counts"]["rejected"] == 1
    assert len(sandbox.find("employees", EmployeeCode="9201")) == 1
    report = error_files(storage, settings)[f"slow.csv/{receipt['etag']}/errors.txt"].decode("utf-8-sig")
    assert "line 1 (Employee): SmartTID could not be reached (ReadTimeout) after 5 attempts" in report


def test_expired_session_logs_in_again(storage, settings, sandbox) -> None:
    drop(storage, settings, "s1.csv", b"Employee;9301;First")
    sandbox.expire_sessions()
    receipt = drop(storage, settings, "s2.csv", b"Employee;9302;Second")

    assert receipt["counts"]["created"] == 1
    assert receipt["api_calls"]["by_endpoint"]["POST /apilogin"] == 1


def test_lists_are_read_page_by_page(storage, settings, sandbox) -> None:
    sandbox.insert("employees", [{"EmployeeCode": f"P{i:04d}", "Name": f"Person {i}"} for i in range(1200)])
    receipt = drop(storage, settings, "paged.csv", b"Employee;P1199;Person 1199\nEmployee;P0000;Renamed")

    assert receipt["counts"] == {"created": 0, "updated": 1, "unchanged": 1, "rejected": 0}
    assert receipt["api_calls"]["by_endpoint"]["GET /employees"] == 3


def test_trigger_while_another_instance_holds_the_file_does_nothing(storage, settings, sandbox) -> None:
    upload(storage, settings, "busy.csv", b"Employee;7201;Busy")
    lease = storage.get_blob_client(settings.input_container, "busy.csv").acquire_lease(lease_duration=15)
    try:
        trigger_import(storage, settings.input_container, "busy.csv")  # another instance is importing it
        assert sandbox.calls() == {}
        assert blob_names(storage, settings.archive_container) == []
    finally:
        lease.release()
    # The instance that held the lease runs its import (its own lease, its own call): once.
    trigger_import(storage, settings.input_container, "busy.csv")
    assert len(sandbox.find("employees", EmployeeCode="7201")) == 1
    assert blob_names(storage, settings.input_container) == []


def test_receipt_stored_but_input_still_leased_by_its_importer(storage, settings, sandbox) -> None:
    etag = upload(storage, settings, "held.csv", b"Employee;7301;Held")
    storage.get_blob_client(settings.archive_container, f"held.csv/{etag}/receipt.json").upload_blob(b"{}")
    lease = storage.get_blob_client(settings.input_container, "held.csv").acquire_lease(lease_duration=15)
    try:
        trigger_import(storage, settings.input_container, "held.csv")  # no error: the holder deletes it
        assert blob_names(storage, settings.input_container) == ["held.csv"]
    finally:
        lease.release()
    # Had the holder stopped before deleting it, the next trigger removes the leftover, unimported.
    trigger_import(storage, settings.input_container, "held.csv")
    assert blob_names(storage, settings.input_container) == []
    assert sandbox.writes() == {} and sandbox.find("employees", EmployeeCode="7301") == []


def test_receipt_notes_read_as_sentences() -> None:
    """One Windows-1252 file has no "other lines"; one position is singular; no doubled full stop."""
    from shared.importing.intake import _notes
    from shared.importing.parsing import parse_file
    from shared.importing.reports import describe_error
    from shared.records.record import LineError

    whole = parse_file(lambda: ["Employee;1001;Søren".encode("cp1252")])
    assert _notes(whole) == ["The file is not valid UTF-8, so it was read as Windows-1252."]
    mixed = parse_file(lambda: ["Employee;1001;Søren\nEmployee;1002;Åse".encode("cp1252")[:18] + "\nEmployee;1002;Åse".encode()])
    assert any("the other lines were read as UTF-8" in note for note in _notes(mixed))
    error = LineError(3, "Employee", "sName (position 2)", "x", "is wrong.", "fix it.")
    assert describe_error("f.csv", error) == 'f.csv, line 3 (Employee): field sName (position 2) "x" is wrong. What to do: fix it.'


def test_a_first_line_without_semicolons_is_rejected_alone(storage, settings, sandbox) -> None:
    receipt = drop(storage, settings, "first.csv", b"Employee,8001,Comma Person\r\nEmployee;8002;Semicolon Person\r\n")

    assert receipt["status"] == "imported-with-errors"
    assert receipt["counts"]["created"] == 1 and receipt["counts"]["rejected"] == 1
    assert sandbox.find("employees", EmployeeCode="8002")
    report = read_blob(storage, settings.error_container, f"first.csv/{receipt['etag']}/errors.txt").decode("utf-8-sig")
    assert "first.csv, line 1: the line has no semicolons (it looks separated by commas)" in report
