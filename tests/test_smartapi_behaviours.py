"""TimeBridge against every behaviour SmartAPI's documentation allows, not only the sandbox's defaults.

Each test sets the sandbox's behaviour switches (``sandbox.smartapi.Switches``: page-size cap, UID
lifetime and the answer to an expired UID, 400 messages echoing the request headers, paging of
``/getjobledgerentries``, ``Filter`` syntax, deleted rows, outages); the ``sandbox`` fixture
resets them to the defaults for the next test.
"""

from __future__ import annotations

import json
import logging
import threading
from contextlib import closing
from datetime import timedelta
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient

from sandbox.smartapi import DEFAULT_API_KEY, DEFAULT_CUSTOMER_KEY
from shared.errors import ExportFailedError
from shared.export import run_export
from shared.export.flagged_source import FlaggedSource
from shared.export.ledger_table import ExportLedger
from shared.export.protocol import DELETED_NOTE, FULL_READ_EVERY, Exporter, utc_now
from shared.platform.config import Settings
from shared.platform.storage import blob_service
from shared.targets.smarttid.connector import UID_REJECTED_MESSAGE
from shared.wiring import connector_factory
from tests.conftest import Sandbox, blob_names, read_blob
from tests.functions_host import trigger_import
from tests.test_export import (
    NEW_JOB,
    NEW_TIME,
    assert_exactly_once,
    clear_faults,
    expected_entries,
    exported,
    ledger_files,
    marked_job_ids,
    receipt_of,
    tweak,
)

UNAVAILABLE = "SmartTID was unavailable"
#: Attempts per request in the tests that wait out every retry (keeps their backoff short).
ATTEMPTS = 3


@pytest.fixture
def few_attempts(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setenv("HTTP_MAX_ATTEMPTS", str(ATTEMPTS))
    return ATTEMPTS


# --- helpers ------------------------------------------------------------------------------------
def drop(service: BlobServiceClient, settings: Settings, name: str, data: bytes) -> dict[str, Any]:
    """Upload a file, run the import function for it, return its receipt."""
    etag = service.get_blob_client(settings.input_container, name).upload_blob(data, overwrite=True)["etag"]
    trigger_import(service, settings.input_container, name)
    return json.loads(read_blob(service, settings.archive_container, f"{name}/{etag.strip(chr(34))}/receipt.json"))


def report_of(service: BlobServiceClient, settings: Settings, receipt: dict[str, Any]) -> str:
    name = receipt["outputs"]["error_report"].split("/", 1)[1]
    return read_blob(service, settings.error_container, name).decode("utf-8-sig")


def employees_file(count: int, prefix: str = "N") -> bytes:
    return "\n".join(f"Employee;{prefix}{i:05d};Person {i}" for i in range(count)).encode()


def all_lines_accounted(receipt: dict[str, Any]) -> None:
    assert sum(receipt["counts"].values()) == receipt["lines"], receipt


# --- 1. paging caps -------------------------------------------------------------------------------
def test_import_with_a_page_cap_of_two_sees_every_stored_record(storage, settings, sandbox: Sandbox) -> None:
    sandbox.insert("employees", [{"EmployeeCode": f"C{i:03d}", "Name": f"Capped {i}"} for i in range(9)])
    sandbox.switch(max_page_size=2)
    before = len(sandbox.state()["employees"])
    data = b"Employee;C008;Capped 8\nEmployee;C007;Renamed\nEmployee;1099;Former Employee\nEmployee;C100;New"

    receipt = drop(storage, settings, "capped.csv", data)

    assert receipt["counts"] == {"created": 1, "updated": 1, "unchanged": 2, "rejected": 0}
    assert len(sandbox.state()["employees"]) == before + 1  # nothing beyond the first page created again
    assert receipt["api_calls"]["by_endpoint"]["GET /employees"] == 7  # 14 employees, 2 per page


@pytest.mark.parametrize("mode", ["paged", "all", "capped"])
def test_export_with_a_page_cap_of_two_exports_every_entry_once(storage, settings, sandbox, mode: str) -> None:
    sandbox.insert("jobledger", [NEW_JOB | {"TotalTime": 0.5 + i} for i in range(3)])
    sandbox.insert("timeledger", [NEW_TIME | {"EmployeeCode": "1001", "TotalTime": 1 + i} for i in range(4)])
    sandbox.switch(max_page_size=2, job_ledger_mode=mode)
    expected = expected_entries(sandbox)
    assert len(expected) == 13  # 3 + 3 job ledger, 3 + 4 time ledger

    first = run_export(settings)

    assert first is not None
    assert_exactly_once(storage, settings, expected, sandbox)
    files = ledger_files(storage, settings)
    # a capped answer is marked and read again in the same run: 2 entries per file
    assert len(files) == (3 if mode == "capped" else 1)
    assert run_export(settings) is None


# --- 2. session expiry ----------------------------------------------------------------------------
@pytest.mark.parametrize("status", [400, 401])
def test_export_outlives_three_uids(storage, settings, sandbox: Sandbox, status: int) -> None:
    sandbox.switch(uid_lifetime_calls=2, expired_uid_status=status)
    expected = expected_entries(sandbox)

    receipt = run_export(tweak(settings, export_mark_batch_size=1))

    assert receipt is not None
    assert_exactly_once(storage, settings, expected, sandbox)
    assert sandbox.calls()["POST /apilogin"] >= 4


@pytest.mark.parametrize("status", [400, 401])
def test_import_outlives_three_uids(storage, settings, sandbox: Sandbox, status: int) -> None:
    sandbox.switch(uid_lifetime_calls=5, expired_uid_status=status)

    receipt = drop(storage, settings, "long.csv", employees_file(40))

    assert receipt["counts"] == {"created": 40, "updated": 0, "unchanged": 0, "rejected": 0}
    assert receipt["api_calls"]["by_endpoint"]["POST /apilogin"] >= 4
    assert len(sandbox.find("employees", Name="Person 39")) == 1


def test_a_session_expiring_while_a_request_waits_is_renewed(storage, settings, sandbox: Sandbox) -> None:
    sandbox.switch(expired_uid_status=400)
    sandbox.fault("GET", "/getjobledgerentries", hold=True)  # the UID expires while the request waits
    expected = expected_entries(sandbox)

    result: list[Any] = []
    run = threading.Thread(target=lambda: result.append(run_export(settings)))
    run.start()
    sandbox.wait_until_held(1)
    sandbox.expire_sessions()
    sandbox.release()
    run.join()
    assert result and result[0] is not None
    assert_exactly_once(storage, settings, expected, sandbox)
    assert sandbox.calls()["POST /apilogin"] >= 2


def test_uid_rejected_even_after_new_logins_reports_every_line(storage, settings, sandbox: Sandbox) -> None:
    sandbox.switch(uid_lifetime_calls=0, expired_uid_status=400)  # every UID is refused at once

    receipt = drop(storage, settings, "refused.csv", b"Employee;9401;A\nJob;9402;B")

    assert receipt["counts"]["rejected"] == 2 and receipt["status"] == "rejected"
    assert blob_names(storage, settings.input_container) == []
    report = report_of(storage, settings, receipt)
    assert report.count("SmartTID refused access (HTTP 400: UID not valid) even right after a new login") == 2
    assert receipt["api_calls"]["by_endpoint"]["POST /apilogin"] == 3  # the first login and 2 more, then stop


@pytest.mark.parametrize(("message", "rejected"), [
    ("UID not valid", True), ("Invalid or expired UID", True), ("The UID is unknown", True),
    ("UID er ikke gyldig", True), ("Ugyldig UID", True), ("UID udløbet", True),
    ("Invalid value for sName: 7", False), ("Job template NOPE does not exist", False),
    ("Unknown parameter sUIDX", False),
])
def test_session_rejection_is_recognised_by_its_message(message: str, rejected: bool) -> None:
    assert (UID_REJECTED_MESSAGE.search(message) is not None) is rejected


# --- 3. no exception escapes an import --------------------------------------------------------------
@pytest.mark.parametrize("path", ["/employees", "/jobs", "/joboperations"])
def test_a_400_on_any_read_ends_with_every_line_reported(storage, settings, sandbox: Sandbox, path: str) -> None:
    sandbox.fault("GET", path, status=400, times=100)
    data = b"Employee;9501;Read fault\nJob;1000;Changed description\nOperation;1000;10;PAINT;New text"

    receipt = drop(storage, settings, "readfault.csv", data)

    all_lines_accounted(receipt)
    assert blob_names(storage, settings.input_container) == []
    report = report_of(storage, settings, receipt)
    rejected = {"/employees": 3, "/jobs": 3, "/joboperations": 1}[path]
    assert receipt["counts"]["rejected"] == rejected
    assert report.count("Sandbox fault 400") == rejected


# --- 4. a job-ledger entry deleted after it was written to a file ------------------------------------
def test_entry_deleted_in_smarttid_after_export_is_recorded_not_blocking(
    storage, settings, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    expected = expected_entries(sandbox)
    [victim] = sandbox.find("jobledger", WorkTypeCode="OVERTIME1")
    verify = Exporter._verify_file

    def verify_then_delete(self: Exporter, *args: Any) -> None:  # someone deletes it meanwhile
        verify(self, *args)
        sandbox.delete("jobledger", [victim["ID"]])

    monkeypatch.setattr(Exporter, "_verify_file", verify_then_delete)
    with caplog.at_level(logging.WARNING):
        receipt = run_export(settings)

    assert receipt is not None and receipt.deleted_in_smarttid == [victim["ID"]]
    assert receipt.marked_transferred == 2
    assert any(DELETED_NOTE in note and str(victim["ID"]) in note for note in receipt.notes)
    assert DELETED_NOTE in caplog.text
    stored = receipt_of(storage, settings, receipt.file.split("/", 1)[1])
    assert stored["deleted_in_smarttid"] == [victim["ID"]]
    assert set(exported(storage, settings)) == expected
    assert ExportLedger.connect(settings).read_state().intent is None
    assert marked_job_ids(sandbox) == {i for kind, i in expected if kind == "JobLedgerEntry"} - {victim["ID"]}

    monkeypatch.undo()
    sandbox.insert("jobledger", [NEW_JOB])
    later = run_export(settings)  # later runs are not held back
    assert later is not None and later.counts["job_ledger_entries"] == 1


def test_a_refused_mark_of_an_entry_that_still_exists_stops_the_run(storage, settings, sandbox: Sandbox) -> None:
    expected = expected_entries(sandbox)
    sandbox.fault("POST", "/markjobledgerentrytransfered", status=400, times=100)

    with pytest.raises(ExportFailedError, match="still exist in SmartTID"):
        run_export(settings)
    assert marked_job_ids(sandbox) == set()
    assert ExportLedger.connect(settings).read_state().intent is not None

    clear_faults(sandbox)
    assert run_export(settings) is not None
    assert_exactly_once(storage, settings, expected, sandbox)


# --- 5. leavers' last hours --------------------------------------------------------------------------
def leaver_entry(**changes: Any) -> dict[str, Any]:
    return NEW_TIME | {"EmployeeCode": "2001", "Name": "Leaver"} | changes


def test_leavers_last_hours_are_exported(storage, settings, sandbox: Sandbox) -> None:
    sandbox.insert("employees", [{"EmployeeCode": "2001", "Name": "Leaver", "Active": False}])
    sandbox.insert("timeledger", [leaver_entry()])
    [last_hours] = sandbox.find("timeledger", EmployeeCode="2001")

    first = run_export(settings)

    assert first is not None
    assert ("TimeLedgerEntry", last_hours["ID"]) in exported(storage, settings)
    # a late correction within the grace period is exported too
    sandbox.insert("timeledger", [leaver_entry(TotalTime=1.5)])
    assert run_export(settings) is not None
    assert {e["ID"] for e in sandbox.find("timeledger", EmployeeCode="2001")} <= {
        i for kind, i in exported(storage, settings) if kind == "TimeLedgerEntry"}


def test_leavers_are_no_longer_read_after_the_grace_period(storage, settings, sandbox: Sandbox) -> None:
    settings = tweak(settings, export_inactive_grace_days=0)
    sandbox.insert("employees", [{"EmployeeCode": "2001", "Name": "Leaver", "Active": False}])
    sandbox.insert("timeledger", [leaver_entry()])
    assert run_export(settings) is not None  # first seen inactive: read once
    sandbox.insert("timeledger", [leaver_entry(TotalTime=3)])
    before = sandbox.calls()["GET /employeetimeledgerentries"]

    run_export(settings)

    assert sandbox.calls()["GET /employeetimeledgerentries"] == before + 3  # the 3 active employees only
    assert len([k for k, _ in exported(storage, settings) if k == "TimeLedgerEntry"]) == 4


def test_employees_inactive_before_the_first_run_are_read_once_new_leavers_for_the_grace_period(
    storage, settings, sandbox: Sandbox
) -> None:
    assert run_export(settings) is not None  # the first run: reads 1099 (inactive already) once
    sandbox.insert("employees", [{"EmployeeCode": "2002", "Name": "New leaver", "Active": False}])
    before = sandbox.calls()["GET /employeetimeledgerentries"]

    run_export(settings)
    run_export(settings)

    # 3 active employees and the new leaver 2002, twice; 1099 no more
    assert sandbox.calls()["GET /employeetimeledgerentries"] == before + 2 * 4
    assert set(ExportLedger.connect(settings).inactive_employees()) == {"1099", "2002"}


# --- 6. Filter syntax ----------------------------------------------------------------------------------
@pytest.mark.parametrize("syntax", ["lenient", "strict", "ignored"])
def test_export_under_every_filter_syntax(storage, settings, sandbox: Sandbox, syntax: str) -> None:
    sandbox.switch(filter_syntax=syntax)
    expected = expected_entries(sandbox)

    receipt = run_export(settings)

    assert receipt is not None
    assert_exactly_once(storage, settings, expected, sandbox)
    reads = receipt.api_calls["by_endpoint"]["GET /employeetimeledgerentries"]
    if syntax == "strict":  # 400 to the filter: read unfiltered from then on (reads already under way repeat)
        assert 4 + 1 <= reads <= 4 + settings.write_concurrency
    else:
        assert reads == 4


def test_filter_narrows_the_read_to_untransferred_entries(settings, sandbox: Sandbox) -> None:
    sandbox.insert("timeledger", [NEW_TIME | {"EmployeeCode": "1001", "Transfered": True, "Remark": "old"}
                                  for _ in range(20)])
    build = connector_factory(settings)

    def read_1001() -> list[dict[str, Any]]:
        with closing(build()) as connector:
            return connector.time_ledger_entries("1001")

    assert [row["Transfered"] for row in read_1001()] == [False]
    sandbox.switch(filter_syntax="ignored")  # a server ignoring the filter: more bytes, same export
    assert len(read_1001()) == 22


def history(count: int) -> list[dict[str, Any]]:
    return [NEW_TIME | {"EmployeeCode": "1001", "Name": "Jens Hansen", "TotalTime": 1 + i} for i in range(count)]


def test_a_run_reads_each_time_ledger_only_down_to_what_it_exported(storage, settings, sandbox: Sandbox) -> None:
    sandbox.insert("timeledger", history(60))
    assert run_export(settings) is not None  # the first run reads everything
    mark = ExportLedger.connect(settings).time_marks()["1001"]
    assert mark == max(e["ID"] for e in sandbox.find("timeledger", EmployeeCode="1001"))
    sandbox.insert("timeledger", [NEW_TIME | {"EmployeeCode": "1001", "Remark": "new"}])
    [new] = sandbox.find("timeledger", Remark="new")

    with closing(connector_factory(settings)()) as connector:
        newest = connector.time_ledger_entries("1001", newer_than=mark)
        everything = connector.time_ledger_entries("1001")
    assert new["ID"] in {row["ID"] for row in newest}
    assert len(newest) <= 10 < len(everything) == 62  # one small page, whatever the history

    receipt = run_export(settings)
    assert receipt is not None and receipt.counts["time_ledger_entries"] == 1
    assert receipt.api_calls["by_endpoint"]["GET /employeetimeledgerentries"] == 3  # one page per active employee
    assert exported(storage, settings)[("TimeLedgerEntry", new["ID"])] == 1


@pytest.mark.parametrize("earlier", [60, 5])  # more entries than the first page, and fewer (read whole at once)
def test_once_the_ordering_is_seen_honoured_an_idle_employee_costs_one_row(storage, settings, sandbox,
                                                                          earlier: int) -> None:
    sandbox.insert("timeledger", history(earlier))
    assert run_export(settings) is not None
    mark = ExportLedger.connect(settings).time_marks()["1001"]

    with closing(connector_factory(settings)()) as connector:
        first = connector.time_ledger_entries("1001", newer_than=mark)  # ten rows, descending: the order holds
        idle = connector.time_ledger_entries("1001", newer_than=mark)
        sandbox.insert("timeledger", [NEW_TIME | {"EmployeeCode": "1001", "Remark": "new"} for _ in range(3)])
        busy = connector.time_ledger_entries("1001", newer_than=mark)

    assert len(first) == min(earlier + 1, 10)  # the order is checked on this first page
    assert [row["ID"] for row in idle] == [mark]  # nothing new: its newest entry only
    new_ids = {row["ID"] for row in sandbox.find("timeledger", Remark="new")}
    assert new_ids <= {row["ID"] for row in busy}
    assert len(busy) == 1 + min(10, earlier + 1 + 3 - 1)  # one row, then (at most) a page of ten


def test_ordering_ignored_by_smarttid_falls_back_to_full_reads(storage, settings, sandbox: Sandbox) -> None:
    sandbox.insert("timeledger", history(30))
    expected = expected_entries(sandbox)
    assert run_export(settings) is not None
    sandbox.switch(order_honoured=False, max_page_size=7)
    sandbox.insert("timeledger", [NEW_TIME | {"EmployeeCode": "1001", "Remark": "new"}])
    expected |= expected_entries(sandbox)

    receipt = run_export(settings)

    assert receipt is not None and receipt.counts["time_ledger_entries"] == 1
    assert_exactly_once(storage, settings, expected, sandbox)


def test_an_entry_breaking_the_id_order_is_exported_by_the_daily_full_read(storage, settings, sandbox) -> None:
    sandbox.insert("timeledger", history(30))
    expected = expected_entries(sandbox)
    assert run_export(settings) is not None
    sandbox.insert("timeledger", [NEW_TIME | {"ID": 3, "EmployeeCode": "1001", "Remark": "late, low id"}])
    assert run_export(settings) is None  # newest first: stops at the newest exported entry

    tomorrow = Exporter(settings, blob_service(settings), ExportLedger.connect(settings), connector_factory(settings),
                        clock=lambda: utc_now() + FULL_READ_EVERY + timedelta(minutes=1), source=FlaggedSource)
    receipt = tomorrow.run()

    assert receipt is not None and receipt.ids["time_ledger"] == {"first": 3, "last": 3}
    assert_exactly_once(storage, settings, expected | expected_entries(sandbox), sandbox)


# --- 7. honest messages ------------------------------------------------------------------------------
def test_update_applied_although_every_answer_was_lost_is_reported_updated(
    storage, settings, sandbox, few_attempts: int
) -> None:
    sandbox.fault("PUT", "/employees", status=500, after_apply=True, times=100)

    receipt = drop(storage, settings, "lost.csv", b"Employee;1001;Jens Hansen;Ny adresse 3")

    assert receipt["counts"] == {"created": 0, "updated": 1, "unchanged": 0, "rejected": 0}
    assert sandbox.find("employees", EmployeeCode="1001")[0]["Address"] == "Ny adresse 3"


def test_update_that_did_not_arrive_says_nothing_was_changed(storage, settings, sandbox, few_attempts: int) -> None:
    sandbox.fault("PUT", "/employees", status=503, times=100)

    receipt = drop(storage, settings, "notapplied.csv", b"Employee;1001;Jens Hansen;Ny adresse 4")

    assert receipt["counts"]["rejected"] == 1
    assert "nothing was changed for this line" in report_of(storage, settings, receipt)
    assert receipt["api_calls"]["by_endpoint"]["PUT /employees/{ID}"] == few_attempts


def test_update_applied_with_its_answer_lost_then_refused_with_429s_is_looked_up(
    storage, settings, sandbox, few_attempts: int
) -> None:
    """The first PUT arrives and its answer is lost; the retries meet 429s: the ambiguity of the
    first attempt decides (before, the last answer did: "nothing was changed")."""
    sandbox.fault("PUT", "/employees", after_apply=True, drop=True)
    sandbox.fault("PUT", "/employees", status=429, retry_after=0, times=100)

    receipt = drop(storage, settings, "lost429.csv", b"Employee;1001;Jens Hansen;Ny adresse 5")

    assert receipt["counts"]["updated"] == 1 and receipt["counts"]["rejected"] == 0, receipt
    assert sandbox.find("employees", EmployeeCode="1001")[0]["Address"] == "Ny adresse 5"


@pytest.mark.parametrize("status", [302, 307])
def test_a_redirect_is_never_success(storage, settings, sandbox, status: int) -> None:
    sandbox.fault("PUT", "/employees", status=status, body="", headers={"Location": "/elsewhere"}, times=100)

    receipt = drop(storage, settings, "moved.csv", b"Employee;1001;Jens Hansen;Ny adresse 6")

    assert receipt["counts"]["updated"] == 0 and receipt["counts"]["rejected"] == 1
    text = report_of(storage, settings, receipt)
    assert f"redirect (HTTP {status} to /elsewhere)" in text and "may or may not" not in text
    assert sandbox.find("employees", EmployeeCode="1001")[0]["Address"] != "Ny adresse 6"


# --- 8. one retry layer, circuit breaker ---------------------------------------------------------------
def test_503_for_everything_reports_a_thousand_lines_at_once(storage, settings, sandbox, few_attempts) -> None:
    sandbox.outage()

    receipt = drop(storage, settings, "down.csv", employees_file(1000))

    assert receipt["counts"] == {"created": 0, "updated": 0, "unchanged": 0, "rejected": 1000}
    report = report_of(storage, settings, receipt)
    assert report.count("upload the rejected lines again when SmartTID is available") == 1000
    assert sum(sandbox.calls().values()) == few_attempts  # the login's attempts, then nothing more
    assert blob_names(storage, settings.input_container) == []


def test_writes_failing_for_good_open_the_breaker(storage, settings, sandbox: Sandbox) -> None:
    sandbox.fault("POST", "/employees", status=503, times=10**6)

    receipt = drop(storage, settings, "writesdown.csv", employees_file(1000))

    assert receipt["counts"]["rejected"] == 1000
    report = report_of(storage, settings, receipt)
    assert report.count(UNAVAILABLE) >= 980
    calls = sandbox.calls()
    assert calls["POST /employees"] <= 12 + settings.write_concurrency  # not 5 per record
    assert calls["GET /employees"] <= 1 + 12 + 2 * settings.write_concurrency  # the plan read + a few lookups
    assert sandbox.find("employees", EmployeeCode="N00000") == []


def test_random_503s_end_with_every_line_applied_or_reported_once(storage, settings, sandbox, few_attempts) -> None:
    sandbox.switch(fault_rate=0.2)
    data = "\n".join(f"Job;R{i:03d};Flaky {i};;;;Planned\nOperation;R{i:03d};10;CUT;Cutting" for i in range(8))

    receipt = drop(storage, settings, "flaky.csv", data.encode())

    all_lines_accounted(receipt)
    assert receipt["lines"] == 16 and blob_names(storage, settings.input_container) == []
    state = sandbox.state()
    for i in range(8):  # nothing created twice
        assert len([job for job in state["jobs"] if job["JobCode"] == f"R{i:03d}"]) <= 1
    assert receipt["counts"]["created"] + receipt["counts"]["rejected"] == 16
    if receipt["counts"]["rejected"]:
        assert "SmartTID" in report_of(storage, settings, receipt)


def test_one_create_sends_at_most_the_configured_attempts(storage, settings, sandbox, few_attempts) -> None:
    sandbox.fault("POST", "/jobs", status=500, times=100)

    receipt = drop(storage, settings, "onejob.csv", b"Job;9601;Never arrives")

    assert receipt["counts"]["rejected"] == 1
    calls = sandbox.calls()
    assert calls["POST /jobs"] == few_attempts  # one retry layer: not attempts x attempts
    assert calls["GET /jobs"] == 1 + few_attempts  # the plan read; a look before each repeat and after the last
    assert "nothing was changed for this line" in report_of(storage, settings, receipt)


# --- 9. secrets never leave through a target's message -------------------------------------------------
def test_target_message_echoing_headers_is_redacted(storage, settings, sandbox: Sandbox, caplog) -> None:
    sandbox.switch(echo_headers_in_400=True)

    with caplog.at_level(logging.DEBUG, logger="shared"):
        receipt = drop(storage, settings, "echo.csv", b"Job;9701;Bad template;;;;Planned;NOPE")

    report = report_of(storage, settings, receipt)
    assert "Job template NOPE does not exist" in report and "[redacted]" in report
    stored = json.dumps(receipt) + report + caplog.text
    for secret in (DEFAULT_API_KEY, DEFAULT_CUSTOMER_KEY):
        assert secret not in stored
    assert "uid: [redacted]" in report.lower()
