"""Tic-Tac on a customer's first day, against a sandbox that does not share TimeBridge's guesses.

The normal customer's Tic-Tac was set up by hand long before TimeBridge: users with employee
numbers, projects with the ERP's numbers (Danish and Norwegian names with "A/S" and "AS/"),
activities, registrations. The sandbox's ``hand_made`` company is that Tic-Tac; its switches and
faults give every answer the document leaves open or does not allow: redirects with and without a
body, empty ``200`` bodies, booleans as strings or numbers, oversized and deeply nested JSON, and
writes that are processed while their answer is lost.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from azure.storage.blob import BlobServiceClient
from pydantic import SecretStr

from shared.errors import ApiUnavailableError
from shared.export.ledger_format import (
    JOB_LEDGER_COLUMNS,
    JOB_LEDGER_RECORD,
    TIME_LEDGER_COLUMNS,
    TIME_LEDGER_RECORD,
)
from shared.export.ledger_table import ExportLedger
from shared.export.protocol import Exporter
from shared.export.receipt import ExportReceipt
from shared.export.sent_ledger import SentLedgerSource
from shared.importing.intake import Intake
from shared.importing.reports import Receipt
from shared.platform.config import Settings
from shared.platform.storage import blob_service
from shared.targets.base import Connector
from shared.targets.factory import connector_factory
from shared.targets.http import AnswerTooLargeError, error_text
from shared.targets.tictac.client import RetryPolicy, TicTacClient
from shared.targets.tictac.connector import TicTacConnector
from shared.targets.tictac.xref import CrossRefs, Entity
from shared.wiring import prepare_storage
from tests.conftest import TicTacSandbox, blob_names, read_blob

FAST = RetryPolicy(attempts=2, initial_wait=0.01, max_wait=0.05, max_retry_after=0.05)

#: The ERP's view of the hand-made company: every line matches what is in Tic-Tac already.
ERP_FILE = "\n".join([
    "Employee;1001;Mette Hansen;;;;;mette@hansen.dk;;Montage",
    "Employee;1002;Ole Nielsen;;;;;ole@hansen.dk;;Montage",
    "Employee;1003;Kari Olsen;;;;;kari@nordbyg.no",
    "Job;P-100;Hansen A/S – Tilbygning;Tilbygning, lager;;;Started",
    "Job;P-200;Nordbyg AS/Oslo – Renovering;;;;Started",
    "Operation;P-100;10;MONT;Montage;;ERP-1",
    "Operation;P-100;20;NEDR;Nedrivning;;ERP-2",
    "Operation;P-100;30;OVT;Overtid;;ERP-3",
    "Operation;P-200;10;MAL;Maling;;ERP-4",
])
HAND_MADE_ROWS = {f"720000000000{n}": n for n in range(1, 9)}


@pytest.fixture
def tt(app_env: dict[str, str], tictac: TicTacSandbox, monkeypatch: pytest.MonkeyPatch) -> Settings:
    suffix = uuid.uuid4().hex[:8]
    env = {"TARGET_SYSTEM": "tictac", "TICTAC_BASE_URL": tictac.base_url, "TICTAC_API_CODE": tictac.api_code,
           "XREF_TABLE": f"xref{suffix}", "BUDGET_TABLE": f"budget{suffix}", "TICTAC_ABSENCE_PROJECTS": "FRAVAER",
           "TICTAC_WORKTYPE_MAP": "WORKHOURS=NORMAL,OVERTIME=OVERTIME1,ABSENCE=SICK"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    tictac.reset(company="hand_made")
    return Settings()


@pytest.fixture
def tt_storage(tt: Settings, storage: BlobServiceClient) -> BlobServiceClient:
    return storage


def fast_factory(settings: Settings, tictac: TicTacSandbox, **client: Any) -> Callable[[], Connector]:
    def build() -> Connector:
        api = TicTacClient(tictac.base_url, SecretStr(tictac.api_code), retry=FAST, **client)
        return TicTacConnector(api, CrossRefs.connect(settings, settings.xref_table))
    return build


def process(storage: BlobServiceClient, settings: Settings, name: str, text: str,
            factory: Callable[[], Connector] | None = None) -> Receipt:
    storage.get_blob_client(settings.input_container, name).upload_blob(text.encode(), overwrite=True)
    receipt = Intake(settings, storage, factory or connector_factory(settings)).process(name)
    assert receipt is not None
    return receipt


def report(storage: BlobServiceClient, settings: Settings, receipt: Receipt) -> str:
    name = receipt.outputs["error_report"].split("/", 1)[1]
    return read_blob(storage, settings.error_container, name).decode("utf-8-sig")


def export(settings: Settings) -> ExportReceipt | None:
    return Exporter(settings, blob_service(settings), ExportLedger.connect(settings),
                    connector_factory(settings), source=SentLedgerSource).run()


def exported_lines(storage: BlobServiceClient, settings: Settings) -> list[dict[str, str]]:
    """Every line of every ledger file, as {column: value} (``record``: the line's record name)."""
    columns = {TIME_LEDGER_RECORD: TIME_LEDGER_COLUMNS, JOB_LEDGER_RECORD: JOB_LEDGER_COLUMNS}
    rows: list[dict[str, str]] = []
    for name in blob_names(storage, settings.output_container):
        text = read_blob(storage, settings.output_container, name).decode("utf-8-sig")
        for record in csv.reader(io.StringIO(text, newline=""), delimiter=";"):
            if record and record[0] in columns:
                names = [column.name for column in columns[record[0]]]
                rows.append({"record": record[0]} | dict(zip(names, record[1:], strict=False)))
    return rows


def links(settings: Settings, entity: Entity) -> dict[tuple[str, ...], str]:
    return {key: ref.remote_id for key, ref in CrossRefs.connect(settings, settings.xref_table).load("tictac", entity)
            .items()}


# --- 1. a company set up by hand: linked on the first import, exported the same day -------------------
@pytest.mark.parametrize("booleans", ["json", "strings", "capitalized", "numbers"])
def test_a_company_set_up_by_hand_is_linked_and_its_attested_hours_exported(
        tt_storage, tt, tictac: TicTacSandbox, booleans: str) -> None:
    tictac.switch(booleans=booleans)
    receipt = process(tt_storage, tt, "erp.csv", ERP_FILE)

    assert receipt.counts == {"created": 0, "updated": 0, "unchanged": 9, "rejected": 0, "deferred": 0}, receipt
    assert tictac.writes() == {}  # nothing made again, nothing changed: it was all there
    assert links(tt, Entity.USER) == {("1001",): "mettehansendk", ("1002",): "olenielsen", ("1003",): "kariolsen"}
    assert links(tt, Entity.PROJECT) == {("P-100",): "7000000000001", ("P-200",): "7000000000002"}
    assert links(tt, Entity.ACTIVITY) == {("P-100", "10"): "7100000000001", ("P-100", "20"): "7100000000002",
                                          ("P-100", "30"): "7100000000003", ("P-200", "10"): "7100000000004"}

    result = export(tt)
    assert result is not None
    lines = exported_lines(tt_storage, tt)
    by_row = {(line["record"], line["rowid"]) for line in result.lines}
    exported_rows = {rowid for _, rowid in by_row}
    assert exported_rows == {"7200000000001", "7200000000002", "7200000000003", "7200000000004", "7200000000005"}
    held = {row["rowid"]: row["reason"] for row in result.source["held"]}
    assert "no employee number in Tic-Tac" in held["7200000000007"]  # lars: made by hand without a number
    assert "has no project number" in held["7200000000008"]
    assert "7200000000006" not in held and "7200000000006" not in exported_rows  # not attested: waits
    jobs = [line for line in lines if line.get("JobCode")]
    assert {(line["EmployeeCode"], line["JobCode"], line["OperationCode"], line["OperationDescription"])
            for line in jobs} == {("1001", "P-100", "MONT", "Montage"), ("1002", "P-100", "NEDR", "Nedrivning"),
                                  ("1002", "P-100", "OVT", "Overtid"), ("1003", "P-200", "MAL", "Maling")}
    absence = [line for line in lines if line.get("Type") == "Absence"]
    assert [(line["EmployeeCode"], line["TotalTime"].replace(",", ".")) for line in absence] == [("1001", "7.5")]


def test_the_export_links_users_and_projects_made_by_hand_by_their_numbers(tt_storage, tt, tictac) -> None:
    """Before any import: users and projects are linked by employeeNumber / projectNumber (and the
    links recorded); only the activities wait for their Operation lines."""
    result = export(tt)
    assert result is not None  # the absence row needs no operation
    assert links(tt, Entity.USER) == {("1001",): "mettehansendk", ("1002",): "olenielsen", ("1003",): "kariolsen"}
    assert links(tt, Entity.PROJECT) == {("P-100",): "7000000000001", ("P-200",): "7000000000002",
                                         ("FRAVAER",): "7000000000003"}
    held = {row["rowid"]: row["reason"] for row in result.source["held"]}
    assert "activity Montage" in held["7200000000001"] and "import the Operation line" in held["7200000000001"]
    assert not any("user" in held.get(rowid, "") for rowid in ("7200000000001", "7200000000004"))

    process(tt_storage, tt, "erp.csv", ERP_FILE)  # the operations link by name; the held rows go out
    again = export(tt)
    assert again is not None
    assert {line["rowid"] for line in again.lines} == {"7200000000001", "7200000000002", "7200000000003",
                                                      "7200000000004"}


def test_losing_the_cross_references_and_importing_again_restores_every_link(tt_storage, tt, tictac) -> None:
    process(tt_storage, tt, "erp.csv", ERP_FILE)
    before = {entity: links(tt, entity) for entity in (Entity.USER, Entity.PROJECT, Entity.ACTIVITY)}
    CrossRefs.connect(tt, tt.xref_table).table.delete_table()
    prepare_storage(tt)  # the table is back, empty (as infra/ makes it again)
    process(tt_storage, tt, "again.csv", ERP_FILE)
    assert {entity: links(tt, entity) for entity in (Entity.USER, Entity.PROJECT, Entity.ACTIVITY)} == before
    assert all(before.values())


def test_two_users_with_one_employee_number_are_never_linked(tt_storage, tt, tictac) -> None:
    tictac.insert("users", [{"userName": "mette2", "firstName": "Mette", "lastName": "H", "employeeNumber": "1001"}])
    tictac.switch(numbers_unique=False)
    result = export(tt.model_copy(update={"export_write_empty_file": True}))
    assert result is not None
    held = {row["rowid"]: row["reason"] for row in result.source["held"]}
    assert "all have employee number 1001" in held["7200000000001"]
    assert ("1001",) not in links(tt, Entity.USER)


def test_operation_description_is_the_activitys_own_name_with_a_slash_in_the_project(tt_storage, tt, tictac) -> None:
    [projid] = tictac.insert("projects", [{"name": "Nordbyg AS/Oslo/Vest", "projectNumber": "P-300"}])
    [actid] = tictac.insert("activities", [{"projid": projid, "name": "Tag/Tagrender", "type": "WORKHOURS"}])
    tictac.insert("entries", [{"type": "TicTacTime", "userid": "kariolsen", "projid": projid, "actid": actid,
                               "date": "2026-12-01", "hours": 2, "attested": True}])
    process(tt_storage, tt, "p300.csv", "Job;P-300;Nordbyg AS/Oslo/Vest;;;;Started\nOperation;P-300;10;TAG;Tag/Tagrender")
    assert export(tt) is not None
    descriptions = {line["OperationDescription"] for line in exported_lines(tt_storage, tt)
                    if line.get("JobCode") == "P-300"}
    assert descriptions == {"Tag/Tagrender"}


# --- 2. an answer outside the document is an error, never "empty" or "applied" ----------------------
@pytest.mark.parametrize("body", ["", "<html>Moved</html>"])
def test_a_redirect_on_the_user_list_is_an_error_not_an_empty_list(tt_storage, tt, tictac, body: str) -> None:
    tictac.fault("GET", "/api/rest/v1/users", status=302, body=body, headers={"Location": "https://example.test/"},
                 times=10)
    receipt = process(tt_storage, tt, "users.csv", "Employee;1001;Mette Hansen;;;;;mette@hansen.dk;;Montage")
    assert receipt.counts["created"] == 0 and receipt.counts["rejected"] == 1
    assert tictac.writes() == {}  # no second user for an existing employee
    text = report(tt_storage, tt, receipt)
    assert "redirect (HTTP 302 to https://example.test/)" in text and "TICTAC_BASE_URL" in text


@pytest.mark.parametrize("status", [301, 307, 308])
@pytest.mark.parametrize("body", ["", "Moved"])
def test_a_redirect_on_a_project_update_is_never_counted_as_updated(tt_storage, tt, tictac, status, body) -> None:
    tictac.fault("PUT", "/api/rest/v1/projects/", status=status, body=body, headers={"Location": "/elsewhere"},
                 times=10)
    receipt = process(tt_storage, tt, "job.csv", "Job;P-200;Nordbyg AS/Oslo – Renovering;Ny beskrivelse;;;Started")
    assert receipt.counts["updated"] == 0 and receipt.counts["rejected"] == 1
    text = report(tt_storage, tt, receipt)
    assert "redirect" in text and "still holds the old values, so nothing was changed" in text
    [project] = [p for p in tictac.state()["projects"] if p["projectNumber"] == "P-200"]
    assert project["description"] == ""


def test_an_empty_200_is_unreadable_and_204_is_an_empty_list(tt, tictac: TicTacSandbox) -> None:
    client = TicTacClient(tictac.base_url, SecretStr(tictac.api_code), retry=FAST)
    tictac.fault("GET", "/api/rest/v1/users", status=200, body="")
    with pytest.raises(ApiUnavailableError, match="empty body"):
        client.list_users()
    tictac.fault("GET", "/api/rest/v1/users", status=204, body="")
    assert client.list_users() == []
    assert len(client.list_users()) == 4  # the faults are used up: the company's users


def test_an_attested_value_that_cannot_be_read_holds_the_row(tt_storage, tt, tictac) -> None:
    process(tt_storage, tt, "erp.csv", ERP_FILE)
    odd, no = tictac.insert("entries", [
        {"type": "TicTacTime", "userid": "kariolsen", "projid": "7000000000002", "actid": "7100000000004",
         "date": "2026-12-01", "hours": 5, "attested": "ja"},  # as a Tic-Tac outside the document might answer
        {"type": "TicTacTime", "userid": "kariolsen", "projid": "7000000000002", "actid": "7100000000004",
         "date": "2026-12-01", "hours": 6, "attested": "false"}])
    result = export(tt)
    assert result is not None
    held = {row["rowid"]: row["reason"] for row in result.source["held"]}
    assert "neither true nor false" in held[odd]
    assert no not in held and no not in {line["rowid"] for line in result.lines}  # "false" is false


def test_deeply_nested_json_is_an_unreadable_answer_not_an_internal_error(tt_storage, tt, tictac) -> None:
    tictac.fault("GET", "/api/rest/v1/users", status=200, nested=100_000, times=10)
    receipt = process(tt_storage, tt, "deep.csv", "Employee;1001;Mette Hansen")
    text = report(tt_storage, tt, receipt)
    assert "cannot be read" in text and "nested more than" in text
    assert "internal error" not in text


def test_an_oversized_answer_is_refused_while_it_streams_in(tt, tictac: TicTacSandbox) -> None:
    client = TicTacClient(tictac.base_url, SecretStr(tictac.api_code), retry=FAST, max_answer_bytes=64 * 1024)
    tictac.fault("GET", "/api/rest/v1/users", status=200, size=2_000_000)
    with pytest.raises(AnswerTooLargeError, match=r"larger than 65,536 bytes \(MAX_ANSWER_BYTES\)"):
        client.list_users()
    assert len(client.list_users()) == 4  # a normal answer still fits


# --- 3. a write whose answer is lost is looked up ------------------------------------------------------
WRITES: dict[str, tuple[str, str, str]] = {
    # route: (method, path prefix, file)
    "POST users": ("POST", "/api/rest/v1/users", "Employee;2001;Ny Medarbejder;;;;;ny@hansen.dk"),
    "PUT users": ("PUT", "/api/rest/v1/users/", "Employee;1001;Mette Hansen;;;;;mette@hansen.dk;;Kontor"),
    "POST projects": ("POST", "/api/rest/v1/projects", "Job;P-900;Nyt projekt;;;;Started\nOperation;P-900;10;A;Alfa"),
    "PUT projects": ("PUT", "/api/rest/v1/projects/", "Job;P-200;Nordbyg AS/Oslo – Renovering;Ny tekst;;;Started"),
    "POST activities": ("POST", "/api/rest/v1/activities", "Job;P-200;Nordbyg AS/Oslo – Renovering;;;;Started\n"
                                                            "Operation;P-200;20;NY;Ny aktivitet"),
    "PUT activities": ("PUT", "/api/rest/v1/activities/", "Job;P-200;Nordbyg AS/Oslo – Renovering;;;;Started\n"
                                                          "Operation;P-200;10;MAL;Maling;;;;;;;;1"),
}


@pytest.mark.parametrize("route", list(WRITES))
@pytest.mark.parametrize("lost", ["dropped", "empty 200"])
def test_a_write_processed_with_its_answer_lost_is_looked_up_and_reported_applied(
        tt_storage, tt, tictac, route: str, lost: str) -> None:
    method, path, text = WRITES[route]
    process(tt_storage, tt, "erp.csv", ERP_FILE)  # linked first
    if lost == "dropped":
        tictac.fault(method, path, after_apply=True, drop=True)
    else:
        tictac.fault(method, path, after_apply=True, status=200, body="")
    state_before = {table: len(rows) for table, rows in tictac.state().items()}
    receipt = process(tt_storage, tt, "write.csv", text, fast_factory(tt, tictac))

    assert receipt.counts["rejected"] == 0, report(tt_storage, tt, receipt)
    assert receipt.counts["created"] + receipt.counts["updated"] >= 1
    state = tictac.state()
    created = {table: len(rows) - state_before[table] for table, rows in state.items() if table != "entries"}
    assert all(n <= 1 for n in created.values()), created  # never twice


def test_a_create_whose_answer_was_lost_and_did_not_arrive_says_nothing_was_created(tt_storage, tt, tictac) -> None:
    tictac.fault("POST", "/api/rest/v1/projects", status=502, times=5)  # the gateway failed; Tic-Tac saw nothing
    receipt = process(tt_storage, tt, "new.csv", "Job;P-901;Nyt;;;;Started", fast_factory(tt, tictac))
    text = report(tt_storage, tt, receipt)
    assert receipt.counts["rejected"] == 1
    assert "does not exist, so nothing was created" in text
    assert "may or may not" not in text


def test_a_lost_answer_that_cannot_be_checked_is_reported_as_may_or_may_not(tt_storage, tt, tictac) -> None:
    tictac.fault("POST", "/api/rest/v1/projects", after_apply=True, drop=True)
    tictac.fault("GET", "/api/rest/v1/projects", status=500, times=20, skip=1)  # the plan's read passes; the
    # look-up after the lost answer fails
    receipt = process(tt_storage, tt, "new.csv", "Job;P-902;Nyt;;;;Started", fast_factory(tt, tictac))
    text = report(tt_storage, tt, receipt)
    assert "may or may not have been applied" in text


# --- 5. the API code never reaches a report ----------------------------------------------------------
def test_an_error_body_echoing_the_authorization_header_is_redacted(tt_storage, tt, tictac, caplog) -> None:
    tictac.fault("POST", "/api/rest/v1/projects", status=400, echo=True)
    with caplog.at_level(logging.DEBUG):
        receipt = process(tt_storage, tt, "echo.csv", "Job;P-903;Nyt;;;;Started")
    text = report(tt_storage, tt, receipt)
    assert "Bearer [redacted]" in text
    assert tictac.api_code not in text + json.dumps(receipt.to_json().decode()) + caplog.text


def test_a_secret_is_redacted_before_the_message_is_shortened() -> None:
    secret = "S3cr3t-K3y-0123456789abcdefghij"
    for at in range(470, 520, 7):
        response = httpx.Response(400, text="x" * at + secret + " and more" * 20)
        message = error_text(response, [secret])
        assert secret[:6] not in message, at
        assert len(message) <= 502


# --- 8. the deferral alert can fire ----------------------------------------------------------------
def test_a_deferral_and_its_resumption_emit_their_events(tt_storage, tt, tictac, monkeypatch, caplog) -> None:
    from shared.importing.resume import resume_deferred

    monkeypatch.setenv("TICTAC_DAILY_CALL_BUDGET", "10")
    settings = Settings()
    text = "\n".join(f"Employee;30{n:02d};Person {n};;;;;p{n}@hansen.dk" for n in range(6))
    with caplog.at_level(logging.INFO, logger="timebridge.events"):
        receipt = process(tt_storage, settings, "many.csv", text)
    assert receipt.counts["deferred"] > 0
    assert "TimeBridge's share of Tic-Tac's daily calls (TICTAC_DAILY_CALL_BUDGET = 10)" in " ".join(receipt.notes)
    deferred = [r for r in caplog.records if getattr(r, "microsoft.custom_event.name", "") == "TimeBridgeDeferral"]
    assert [(r.status, r.reason) for r in deferred] == [("deferred", "call-budget")]

    monkeypatch.setenv("TICTAC_DAILY_CALL_BUDGET", "1000")  # raised: takes effect at the next run
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="timebridge.events"):
        assert resume_deferred(Settings(), tt_storage, connector_factory(Settings())) == 1
    names = [getattr(r, "microsoft.custom_event.name", "") for r in caplog.records]
    assert "TimeBridgeImport" in names
    [done] = [r for r in caplog.records if getattr(r, "microsoft.custom_event.name", "") == "TimeBridgeDeferral"]
    assert (done.status, done.records_pending) == ("completed", 0)
    assert len([u for u in tictac.state()["users"] if u["employeeNumber"].startswith("30")]) == 6


def test_retry_after_is_read_as_seconds_or_as_an_http_date() -> None:
    from shared.targets.http import retry_after_seconds

    assert retry_after_seconds(httpx.Response(429, headers={"Retry-After": "120"})) == 120
    dated = httpx.Response(429, headers={"Retry-After": "Wed, 21 Oct 2026 07:28:30 GMT",
                                         "Date": "Wed, 21 Oct 2026 07:28:00 GMT"})
    assert retry_after_seconds(dated) == 30
    assert retry_after_seconds(httpx.Response(429, headers={"Retry-After": "soon"})) is None
    assert retry_after_seconds(httpx.Response(429)) is None


def test_an_error_text_in_json_gives_its_message() -> None:
    assert error_text(httpx.Response(400, json={"message": "No user with id x"})) == "No user with id x"
    assert error_text(httpx.Response(400, text="")) == "HTTP 400 without a message"
    assert error_text(httpx.Response(400, text="[" * 5000 + "]" * 5000)).startswith("[[[")  # never a RecursionError


# --- the matching readiness report (before the first import) ------------------------------------------
def check_readiness(settings: Settings, text: str) -> Any:
    from shared.importing.parsing import parse_file
    from shared.importing.passes import in_memory
    from shared.importing.readiness import readiness

    parsed = parse_file(lambda: [text.encode()], target="Tic-Tac")
    connector = connector_factory(settings)()
    try:
        return readiness(connector, parsed, in_memory(parsed), source="erp.csv", target="Tic-Tac")
    finally:
        connector.close()


def test_the_readiness_report_lists_matches_new_records_and_what_can_never_be_exported(tt_storage, tt, tictac) -> None:
    tictac.insert("users", [{"userName": "mette2", "firstName": "Mette", "lastName": "H", "employeeNumber": "1003"}])
    text = ERP_FILE + "\nEmployee;2001;Ny Medarbejder\nJob;P-300;Nyt projekt;;;;Started"
    report = check_readiness(tt, text)
    assert tictac.writes() == {}  # reads only
    employees, jobs, operations = report.kinds
    assert employees.matched == {"by employee number": 2}
    assert [item.line for item in employees.would_create] == [10]
    assert "no user in Tic-Tac has employee number 2001" in employees.would_create[0].what
    assert "type 2001 as its employee number there first" in employees.would_create[0].action
    assert any("lars" in item.what and "can never be exported" in item.what for item in employees.never_exported)
    assert [item.line for item in employees.ambiguous] == [3]  # 1003: kariolsen and mette2
    assert "kariolsen" in employees.ambiguous[0].what and "mette2" in employees.ambiguous[0].what
    assert jobs.matched == {"by project number": 2} and [item.line for item in jobs.would_create] == [11]
    assert any("7000000000004" in item.what and "no project number" in item.what for item in jobs.never_exported)
    assert operations.matched == {"by name": 4}
    assert not report.ready
    text_report = report.to_text()
    assert "Employee: 4 lines — matched 2 by employee number; would create 1" in text_report
    assert json.loads(report.to_json())["ready"] is False
    assert "Not ready" in text_report
    assert links(tt, Entity.USER) == {}  # a report records no link


def test_after_the_first_import_the_report_says_cross_reference(tt_storage, tt, tictac) -> None:
    process(tt_storage, tt, "erp.csv", ERP_FILE)
    report = check_readiness(tt, ERP_FILE)
    employees, jobs, operations = report.kinds
    assert employees.matched == {"by cross-reference": 3} and operations.matched == {"by cross-reference": 4}
    assert jobs.matched == {"by cross-reference": 2}


def test_a_dry_run_lists_a_new_projects_activities_as_created_with_it_and_writes_nothing(tt_storage, tt,
                                                                                        tictac) -> None:
    from shared.importing.importer import Importer, LineStatus
    from shared.importing.parsing import parse_file

    text = "Job;P-400;Nyt projekt;;;;Started\nOperation;P-400;10;CUT;Skær\nOperation;P-400;20;WELD;Svejs"
    connector = connector_factory(tt)()
    try:
        planned = Importer(connector, dry_run=True, target_name="Tic-Tac").run(
            parse_file(lambda: [text.encode()], target="Tic-Tac"))
    finally:
        connector.close()
    assert tictac.writes() == {}  # the plan only: not one write
    assert sorted((o.record.line, o.status) for o in planned.outcomes) == [
        (1, LineStatus.CREATED), (2, LineStatus.CREATED), (3, LineStatus.CREATED)]
    done = process(tt_storage, tt, "p400.csv", text)
    assert (done.counts["created"], done.counts["rejected"], done.counts["deferred"]) == (3, 0, 0)  # as planned
    assert tictac.writes() == {"POST /api/rest/v1/projects": 1}  # the project, its activities in the same call
