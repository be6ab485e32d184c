"""The import into Tic-Tac Mobile end to end: Azurite for storage and the cross-references, the
Tic-Tac sandbox over a real socket, the blob-trigger function as the host calls it."""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from azure.storage.blob import BlobServiceClient
from pydantic import SecretStr

from shared.errors import UnreadableFileError
from shared.importing import passes
from shared.importing.deferral import Deferrals
from shared.importing.intake import FileRun, Intake
from shared.importing.reports import Receipt
from shared.importing.resume import resume_deferred
from shared.platform.clock import iso
from shared.platform.config import Settings
from shared.targets.base import Connector
from shared.targets.budget import CallBudget, budget_id
from shared.targets.registry import target_spec
from shared.targets.tictac.client import RetryPolicy, TicTacClient
from shared.targets.tictac.connector import TicTacConnector
from shared.targets.tictac.mapping import UserNameRule
from shared.targets.tictac.settings import TicTacSettings
from shared.targets.tictac.xref import CrossRefs, Entity
from shared.wiring import prepare_storage
from tests.conftest import TicTacSandbox, blob_names, read_blob
from tests.functions_host import trigger_import
from tests.support.password_spy import PasswordSpy

FAST = RetryPolicy(attempts=2, initial_wait=0.01, max_wait=0.05, max_retry_after=0.05)


@pytest.fixture
def tictac_env(app_env: dict[str, str], tictac: TicTacSandbox, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    suffix = uuid.uuid4().hex[:8]
    env = {"TARGET_SYSTEM": "tictac", "TICTAC_BASE_URL": tictac.base_url, "TICTAC_API_CODE": tictac.api_code,
           "XREF_TABLE": f"xref{suffix}", "BUDGET_TABLE": f"budget{suffix}"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return app_env | env


@pytest.fixture
def tt_settings(tictac_env: dict[str, str]) -> Settings:
    settings = Settings()
    prepare_storage(settings)  # its own cross-reference and budget tables (infra/ creates them in Azure)
    return settings


@pytest.fixture
def tt_storage(tt_settings: Settings, storage: BlobServiceClient) -> BlobServiceClient:
    return storage


def drop(service: BlobServiceClient, settings: Settings, name: str, text: str) -> dict:
    """Upload a file, run the import function for it, return its receipt."""
    etag = service.get_blob_client(settings.input_container, name).upload_blob(
        text.encode(), overwrite=True)["etag"].strip('"')
    trigger_import(service, settings.input_container, name)
    return json.loads(read_blob(service, settings.archive_container, FileRun(name, etag).receipt))


def errors_text(service: BlobServiceClient, settings: Settings) -> str:
    return "".join(read_blob(service, settings.error_container, name).decode("utf-8-sig")
                   for name in blob_names(service, settings.error_container) if name.endswith("errors.txt"))


def rows(tictac: TicTacSandbox, table: str, **match: object) -> list[dict]:
    return [row for row in tictac.state()[table] if all(row.get(k) == v for k, v in match.items())]


def add_project(tictac: TicTacSandbox, number: str, name: str, *activities: str) -> tuple[str, list[str]]:
    [projid] = tictac.insert("projects", [{"name": name, "projectNumber": number}])
    actids = tictac.insert("activities", [{"projid": projid, "name": a} for a in activities]) if activities else []
    return projid, actids


# --- users -------------------------------------------------------------------------------------------
def test_an_existing_user_is_found_by_employee_number(tt_storage, tt_settings, tictac: TicTacSandbox) -> None:
    line = "Employee;1298;Anna Andersson;Storgatan 1;12345;Stockholm;;ANNA@tictac.se;;Avd 1;Avdelning ett"
    receipt = drop(tt_storage, tt_settings, "anna.csv", line)

    assert receipt["counts"]["unchanged"] == 1, receipt
    assert receipt["counts"]["created"] == receipt["counts"]["updated"] == receipt["counts"]["rejected"] == 0
    assert tictac.writes() == {}  # address, city and department name have no Tic-Tac field: no write
    assert any("Tic-Tac has no place" in note and "sAddress" in note for note in receipt["notes"]), receipt["notes"]

    receipt = drop(tt_storage, tt_settings, "anna2.csv", line.replace("Avd 1", "Avd 3"))
    assert receipt["counts"]["updated"] == 1
    assert tictac.writes() == {"PUT /api/rest/v1/users/annatictacse": 1}
    [anna] = rows(tictac, "users", userName="annatictacse")
    assert anna["department"] == "Avd 3" and anna["employeeNumber"] == "1298"
    assert len(tictac.state()["users"]) == 5  # nobody created


def spied_factory(settings: Settings, tictac: TicTacSandbox, spy: PasswordSpy) -> Callable[[], Connector]:
    def build() -> Connector:
        client = TicTacClient(tictac.base_url, SecretStr(tictac.api_code), retry=FAST, transport=spy)
        return TicTacConnector(client, CrossRefs.connect(settings, settings.xref_table), user_names=UserNameRule())
    return build


def test_a_new_user_is_created_and_its_password_is_never_stored(
        tt_storage, tt_settings, tictac: TicTacSandbox, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    spy = PasswordSpy()
    text = "Employee;E-77;Svensson, Per;Gatan 2;11122;Uppsala;0701234567;per@example.se;;Avd 9\nEmployee;E-78;Åsa Öberg"
    name = "new-users.csv"
    tt_storage.get_blob_client(tt_settings.input_container, name).upload_blob(text.encode())
    receipt = Intake(tt_settings, tt_storage, spied_factory(tt_settings, tictac, spy)).process(name)

    assert receipt is not None and receipt.counts["created"] == 2, receipt
    [per] = rows(tictac, "users", employeeNumber="E-77")
    assert (per["userName"], per["longUserName"]) == ("perexamplese", "per@example.se")  # Tic-Tac derived it
    assert (per["firstName"], per["lastName"], per["department"]) == ("Per", "Svensson", "Avd 9")
    assert per["phoneNumber"] == "0701234567"
    [asa] = rows(tictac, "users", employeeNumber="E-78")
    # no e-mail: the code, made unique because folding changed it (E-78 and e78 must not share a name)
    assert asa["userName"].startswith("e78x") and (asa["firstName"], asa["lastName"]) == ("Åsa", "Öberg")
    refs = CrossRefs.connect(tt_settings, tt_settings.xref_table)
    assert refs.get("tictac", Entity.USER, ("E-77",)).remote_id == "perexamplese"  # the real userName, read back

    # the passwords Tic-Tac answered with are in no log line and no blob of any container
    assert len(spy.passwords) == 2
    logged = "\n".join(record.getMessage() + repr(record.args) for record in caplog.records)
    stored = b"".join(read_blob(tt_storage, container, blob)
                      for container in tt_settings.containers for blob in blob_names(tt_storage, container))
    xref_rows = json.dumps([dict(row) for row in refs.table.list_entities()], default=str)
    for password in spy.passwords:
        assert password not in logged
        assert password.encode() not in stored
        assert password not in xref_rows
    assert "userPassword" not in logged and b"userPassword" not in stored


# --- projects and activities -------------------------------------------------------------------------
def test_projects_and_activities_by_number_name_and_cross_reference(
        tt_storage, tt_settings, tictac: TicTacSandbox) -> None:
    projid, [art, _] = add_project(tictac, "P-100", "Old name", "Art direction", "Layout")
    text = "\n".join([
        "Job;P-100;Hedgehog analysis;Second line;;;Started",
        "Job;P-200;Finished job;;;;Completed",
        "Operation;P-100;10;PAINT;Art direction;;ERP-1;;;;;;0",
        "Operation;P-100;20;NEW;Brand new;;;;;;;;0",
        "Operation;P-200;10;X;First;;;;;;;;1",
    ])
    receipt = drop(tt_storage, tt_settings, "jobs.csv", text)

    assert receipt["counts"] == {"created": 3, "updated": 1, "unchanged": 1, "rejected": 0, "deferred": 0}, errors_text(tt_storage, tt_settings)
    [p100] = rows(tictac, "projects", projectNumber="P-100")
    assert p100["projid"] == projid and p100["name"] == "Hedgehog analysis" and p100["description"] == "Second line"
    [p200] = rows(tictac, "projects", projectNumber="P-200")
    assert p200["isActive"] is False  # Completed → isActive false
    [first] = rows(tictac, "activities", projid=p200["projid"])
    assert first["name"] == "First" and first["isActive"] is False  # bOperationCompleted=1
    assert sorted(a["name"] for a in rows(tictac, "activities", projid=projid)) == ["Art direction", "Brand new",
                                                                                   "Layout"]
    refs = CrossRefs.connect(tt_settings, tt_settings.xref_table)
    linked = refs.get("tictac", Entity.ACTIVITY, ("P-100", "10"))
    assert linked is not None and linked.remote_id == art and linked.linked_by == "name"
    assert linked.erp_values["sOperationCode"] == "PAINT" and linked.erp_values["sERPReference"] == "ERP-1"

    # the same file again: nothing to write
    before = tictac.writes()
    receipt = drop(tt_storage, tt_settings, "jobs-again.csv", text)
    assert receipt["counts"] == {"created": 0, "updated": 0, "unchanged": 5, "rejected": 0, "deferred": 0}, receipt
    assert tictac.writes() == before

    # renamed in the ERP: the activity is found through the cross-reference and renamed, not created again
    receipt = drop(tt_storage, tt_settings, "rename.csv", "Operation;P-100;10;PAINT;Art direction & layout;;;;;;;;1")
    assert receipt["counts"]["updated"] == 1, receipt
    [renamed] = rows(tictac, "activities", actid=art)
    assert renamed["name"] == "Art direction & layout" and renamed["isActive"] is False
    assert len(rows(tictac, "activities", projid=projid)) == 3


def test_an_ambiguous_activity_name_is_rejected_naming_both(tt_storage, tt_settings, tictac: TicTacSandbox) -> None:
    tictac.switch(activity_names="duplicates")
    _, [one, two] = add_project(tictac, "P-300", "Montage job", "Montage", "montage ")
    receipt = drop(tt_storage, tt_settings, "ops.csv", "Job;P-300;Montage job\nOperation;P-300;10;M;Montage")

    assert receipt["counts"]["rejected"] == 1 and receipt["counts"]["unchanged"] == 1, receipt
    report = errors_text(tt_storage, tt_settings)
    assert "line 2" in report and one in report and two in report
    assert tictac.writes() == {}


def test_bad_input_keeps_its_line_numbered_errors(tt_storage, tt_settings, tictac: TicTacSandbox) -> None:
    text = "Employee;1;Anders Alm\nJob;;no code\nOperation;NOPE;10;X;Orphan"
    receipt = drop(tt_storage, tt_settings, "bad.csv", text)

    assert receipt["counts"]["unchanged"] == 1 and receipt["counts"]["rejected"] == 2, receipt
    report = errors_text(tt_storage, tt_settings)
    assert "bad.csv, line 2 (Job)" in report
    assert "bad.csv, line 3 (Operation)" in report and "does not exist in Tic-Tac" in report
    assert "SmartTID" not in report


def test_a_missing_api_code_rejects_every_line_naming_the_secret(
        tt_storage, tt_settings, tictac: TicTacSandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TICTAC_API_CODE")
    assert target_spec(tt_settings.target_system).display_name == "Tic-Tac"
    receipt = drop(tt_storage, tt_settings, "emp.csv", "Employee;1;Anders Alm")

    assert receipt["counts"]["rejected"] == 1
    report = errors_text(tt_storage, tt_settings)
    assert "TICTAC_API_CODE" in report and "tictac-api-code" in report
    assert tictac.calls() == {}


# --- the call budget and deferral --------------------------------------------------------------------
class Clock:
    """The budget's clock, moved forward instead of waiting a day."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def iso(self) -> str:
        return iso(self.now())


def budgeted_factory(settings: Settings, tictac: TicTacSandbox, clock: Clock, limit: int) -> Callable[[], Connector]:
    def build() -> Connector:
        code = SecretStr(tictac.api_code)
        client = TicTacClient(tictac.base_url, code, retry=FAST, clock=clock.now)
        budget = CallBudget.connect(settings, budget_id("tictac", code), limit, table_name=settings.budget_table,
                                    clock=clock.now)
        return TicTacConnector(client, CrossRefs.connect(settings, settings.xref_table), budget=budget)
    return build


def process(storage: BlobServiceClient, settings: Settings, factory: Callable[[], Connector], name: str,
            text: str) -> Receipt:
    storage.get_blob_client(settings.input_container, name).upload_blob(text.encode(), overwrite=True)
    receipt = Intake(settings, storage, factory).process(name)
    assert receipt is not None
    return receipt


def test_a_file_beyond_the_budget_is_partly_deferred_and_completes_later_in_order(
        tt_storage, tt_settings, tictac: TicTacSandbox) -> None:
    clock = Clock()
    factory = budgeted_factory(tt_settings, tictac, clock, limit=10)
    projid, _ = add_project(tictac, "P-500", "Big job")
    ops = [f"Operation;P-500;{n * 10};OP{n};Step {n}" for n in range(1, 11)]
    ops[-1] = "Operation;P-500;100;OP10;Old name"
    receipt = process(tt_storage, tt_settings, factory, "big.csv", "\n".join(["Job;P-500;Big job;;;;Started", *ops]))

    # reads 2 + 8 activity POSTs = the budget of 10 (the project is unchanged); 2 lines wait
    assert receipt.counts == {"created": 8, "updated": 0, "unchanged": 1, "rejected": 0, "deferred": 2}
    assert receipt.status == "partially-applied"
    assert receipt.api_calls["total"] == 10 and sum(tictac.calls().values()) == 10
    assert receipt.deferred["lines"] == 2 and receipt.deferred["next_attempt_after"] > clock.iso()
    assert any("2 lines wait" in note for note in receipt.notes)
    kept = read_blob(tt_storage, tt_settings.archive_container, receipt.deferred["file"].split("/", 1)[1])
    assert kept.decode().splitlines() == ops[8:]
    assert blob_names(tt_storage, tt_settings.error_container) == []  # nothing for a person to fix
    [project] = rows(tictac, "projects", projectNumber="P-500")
    assert project["projid"] == projid and len(rows(tictac, "activities", projid=projid)) == 8

    # a newer file for the same target waits behind the older remainder, writing nothing
    writes = tictac.writes()
    newer = process(tt_storage, tt_settings, factory, "newer.csv", "Operation;P-500;100;OP10;New name")
    assert newer.status == "queued" and newer.counts == {"deferred": 1} and "big.csv" in newer.deferred["queued_behind"]
    assert tictac.writes() == writes

    # before the budget frees up the timer does nothing; a day later it applies both, oldest first
    assert resume_deferred(tt_settings, tt_storage, factory) == 0
    assert tictac.writes() == writes
    clock.offset = timedelta(hours=25)
    assert resume_deferred(tt_settings, tt_storage, factory) == 2
    names = sorted(a["name"] for a in rows(tictac, "activities", projid=project["projid"]))
    assert names == sorted([f"Step {n}" for n in range(1, 10)] + ["New name"])  # new ERP data last
    assert Deferrals(tt_storage, tt_settings.archive_container, "tictac").entries() == []
    resumed = [json.loads(read_blob(tt_storage, tt_settings.archive_container, name))
               for name in blob_names(tt_storage, tt_settings.archive_container) if "/resumed-" in name]
    assert sorted((r["source"], r["counts"]["created"], r["counts"]["updated"]) for r in resumed) == [
        ("big.csv", 2, 0), ("newer.csv", 0, 1)]
    assert blob_names(tt_storage, tt_settings.error_container) == []


def test_a_429_mid_import_blocks_the_budget_and_defers_the_rest(
        tt_storage, tt_settings, tictac: TicTacSandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WRITE_CONCURRENCY", "1")
    settings = Settings()
    add_project(tictac, "P-600", "Limited")
    tictac.limit(5)  # Tic-Tac's own limit, lower than TimeBridge's count (another tool uses the API code)
    clock = Clock()
    factory = budgeted_factory(settings, tictac, clock, limit=400)
    text = "\n".join(f"Operation;P-600;{n};OP{n};Step {n}" for n in range(1, 7))
    receipt = process(tt_storage, settings, factory, "ops.csv", text)

    # 2 reads + 3 POSTs; the 4th POST is answered 429: it and the rest wait
    assert receipt.counts == {"created": 3, "updated": 0, "unchanged": 0, "rejected": 0, "deferred": 3}
    assert any("call limit was reached" in note for note in receipt.notes)
    kept = read_blob(tt_storage, settings.archive_container, receipt.deferred["file"].split("/", 1)[1]).decode()
    assert kept.splitlines() == text.splitlines()[3:]
    assert blob_names(tt_storage, settings.error_container) == []
    budget = CallBudget.connect(settings, budget_id("tictac", SecretStr(tictac.api_code)), 400,
                                table_name=settings.budget_table, clock=clock.now)
    assert budget.remaining() == 0  # blocked until Tic-Tac's Retry-After, for every instance
    assert receipt.deferred["next_attempt_after"] > clock.iso()
    calls = sum(tictac.calls().values())
    assert resume_deferred(settings, tt_storage, factory) == 0  # not before Retry-After
    assert sum(tictac.calls().values()) == calls  # not even a read was made

    tictac.limit(500)
    tictac.advance(hours=25)
    clock.offset = timedelta(hours=25)
    assert resume_deferred(settings, tt_storage, factory) == 1
    [project] = rows(tictac, "projects", projectNumber="P-600")
    assert sorted(a["name"] for a in rows(tictac, "activities", projid=project["projid"])) == [
        f"Step {n}" for n in range(1, 7)]


def test_a_budget_is_used_in_rounds_not_by_the_worst_case_of_every_write(
        tt_storage, tt_settings, tictac: TicTacSandbox) -> None:
    """Ten new users need 2 calls each (POST and read-back) where 4 are reserved: what a round does
    not use is handed back at once, so a budget of 25 creates all ten (2 reads + 20), where reserving
    the worst case for each (5 before) stopped after four."""
    clock = Clock()
    factory = budgeted_factory(tt_settings, tictac, clock, limit=25)
    text = "\n".join(f"Employee;40{n:02d};Person {n}" for n in range(10))  # userName = the code: 2 calls each
    receipt = process(tt_storage, tt_settings, factory, "ten.csv", text)
    assert receipt.counts["created"] == 10 and receipt.counts["deferred"] == 0, receipt
    assert receipt.api_calls["total"] == 22
    budget = CallBudget.connect(tt_settings, budget_id("tictac", SecretStr(tictac.api_code)), 25,
                                table_name=tt_settings.budget_table, clock=clock.now)
    assert budget.used() == 22  # nothing reserved is left hanging


def test_deferred_lines_go_as_soon_as_the_budget_has_room_or_is_raised(
        tt_storage, tt_settings, tictac: TicTacSandbox) -> None:
    clock = Clock()
    projid, _ = add_project(tictac, "P-800", "Eight")
    text = "\n".join(["Job;P-800;Eight"] + [f"Operation;P-800;{n};OP{n};Step {n}" for n in range(1, 21)])
    receipt = process(tt_storage, tt_settings, budgeted_factory(tt_settings, tictac, clock, limit=12), "b.csv", text)
    # 2 reads + 10 activity POSTs fill the budget of 12; 10 lines wait
    assert receipt.counts["deferred"] == 10 and receipt.deferred["next_attempt_after"] > clock.iso()
    assert any("TimeBridge's share of Tic-Tac's daily calls" in note for note in receipt.notes), receipt.notes
    # the budget setting is raised: the next resume goes at once, not after the estimate a day later
    assert resume_deferred(tt_settings, tt_storage, budgeted_factory(tt_settings, tictac, clock, limit=400)) == 1
    assert len(rows(tictac, "activities", projid=projid)) == 20


def test_lines_rejected_when_resumed_keep_their_original_line_numbers(
        tt_storage, tt_settings, tictac: TicTacSandbox) -> None:
    clock = Clock()
    factory = budgeted_factory(tt_settings, tictac, clock, limit=10)
    projid, _ = add_project(tictac, "P-700", "Seven")
    lines = ["Job;P-700;Seven"] + [f"Operation;P-700;{n};OP{n};Step {n}" for n in range(1, 11)]
    receipt = process(tt_storage, tt_settings, factory, "seven.csv", "\n".join(lines))
    # reads 2 + 8 activity POSTs (the job is unchanged); lines 10 and 11 wait
    assert receipt.counts == {"created": 8, "updated": 0, "unchanged": 1, "rejected": 0, "deferred": 2}

    tictac.switch(activity_names="duplicates")
    tictac.insert("activities", [{"projid": projid, "name": "Step 10"}, {"projid": projid, "name": "step 10"}])
    clock.offset = timedelta(hours=25)
    assert resume_deferred(tt_settings, tt_storage, factory) == 1

    report = errors_text(tt_storage, tt_settings)
    assert "seven.csv, line 11 (Operation)" in report and "more than one Tic-Tac activity" in report
    assert "line 2 (Operation)" not in report  # numbered as in the original file, not the remainder
    assert [a["name"] for a in rows(tictac, "activities", projid=projid) if a["name"] == "Step 9"] == ["Step 9"]
    [rejected] = [name for name in blob_names(tt_storage, tt_settings.error_container) if name.endswith(".csv")]
    assert read_blob(tt_storage, tt_settings.error_container, rejected).decode() == lines[10]


def test_with_no_budget_left_nothing_is_read_and_every_line_waits(tt_storage, tt_settings, tictac: TicTacSandbox) -> None:
    clock = Clock()
    code = SecretStr(tictac.api_code)
    CallBudget.connect(tt_settings, budget_id("tictac", code), 10, table_name=tt_settings.budget_table,
                       clock=clock.now).block_until(clock.now() + timedelta(hours=1))
    receipt = process(tt_storage, tt_settings, budgeted_factory(tt_settings, tictac, clock, limit=10), "emp.csv",
                      "Employee;1;Anders Alm\nEmployee;1298;Anna Andersson")

    assert receipt.status == "deferred" and receipt.counts["deferred"] == 2
    assert tictac.calls() == {}
    assert blob_names(tt_storage, tt_settings.error_container) == []


def test_a_new_project_is_created_with_its_activities_in_one_call(tt_storage, tt_settings, tictac: TicTacSandbox) -> None:
    text = "Job;P-800;Eight;;;;Started\nOperation;P-800;10;A;Cut\nOperation;P-800;20;B;Weld;;ERP-20\nOperation;P-800;30;C;Cut"
    receipt = drop(tt_storage, tt_settings, "eight.csv", text)

    assert receipt["counts"]["created"] == 4, receipt
    assert receipt["api_calls"]["by_endpoint"] == {"GET /v1/users": 1, "GET /v1/projects": 1, "POST /v1/projects": 1}
    [project] = rows(tictac, "projects", projectNumber="P-800")
    assert sorted(a["name"] for a in rows(tictac, "activities", projid=project["projid"])) == [
        "Cut (10)", "Cut (30)", "Weld"]  # same description twice: the line number tells them apart

    # the next import links them by name (no call) and keeps the cross-references from then on
    receipt = drop(tt_storage, tt_settings, "eight-again.csv", text)
    assert receipt["counts"]["unchanged"] == 4 and receipt["api_calls"]["total"] == 2, receipt
    weld = CrossRefs.connect(tt_settings, tt_settings.xref_table).get("tictac", Entity.ACTIVITY, ("P-800", "20"))
    assert weld is not None and weld.erp_values["sERPReference"] == "ERP-20"


def test_a_number_two_users_or_projects_carry_is_rejected_naming_both(
        tt_storage, tt_settings, tictac: TicTacSandbox) -> None:
    tictac.switch(numbers_unique=False)
    tictac.insert("users", [{"userName": "anna2", "firstName": "Anna", "lastName": "Two", "employeeNumber": "1298"}])
    add_project(tictac, "P-900", "Nine A")
    add_project(tictac, "P-900", "Nine B")
    receipt = drop(tt_storage, tt_settings, "twins.csv", "Employee;1298;Anna Andersson\nJob;P-900;Nine\nEmployee;1;Anders Alm")

    assert receipt["counts"]["rejected"] == 2 and receipt["counts"]["unchanged"] == 1, errors_text(tt_storage, tt_settings)
    report = errors_text(tt_storage, tt_settings)
    assert "line 1 (Employee)" in report and "annatictacse and anna2" in report
    assert "line 2 (Job)" in report and "Nine A (" in report and "Nine B (" in report
    assert tictac.writes() == {}


def test_the_cli_status_shows_waiting_lines_and_the_call_budget(tt_storage, tt_settings, tictac: TicTacSandbox) -> None:
    from datetime import UTC, datetime

    from click.testing import CliRunner

    from tools.timebridge import cli

    budget = CallBudget.connect(tt_settings, budget_id("tictac", SecretStr(tictac.api_code)),
                                TicTacSettings().daily_call_budget, table_name=tt_settings.budget_table)
    budget.block_until(datetime.now(UTC) + timedelta(hours=1))  # Tic-Tac answered 429 a moment ago
    receipt = drop(tt_storage, tt_settings, "waits.csv", "Employee;1;Anders Alm\nEmployee;1298;Anna Andersson")
    assert receipt["counts"]["deferred"] == 2

    result = CliRunner().invoke(cli, ["status", "--json"], catch_exceptions=False)

    status = json.loads(result.output)
    assert status["target"] == "Tic-Tac"
    assert [(p["file"], p["lines_waiting"]) for p in status["pending_deferrals"]] == [("waits.csv", 2)]
    assert status["call_budget"] == {"remaining_calls": budget.remaining()}


# --- Template jobs -----------------------------------------------------------------------------------
TEMPLATE = "\n".join([
    "Job;TPL-1;Standard job;;;;Template",
    "Operation;TPL-1;10;MEAS;Measure;;;;;;;;0",
    "Operation;TPL-1;20;BUILD;Build;;;;;;;;0",
    "Operation;TPL-1;30;OLD;Archive;;;;;;;;1",
])


def test_a_job_from_a_template_of_an_earlier_file_gets_its_operations_as_activities(
        tt_storage, tt_settings, tictac: TicTacSandbox) -> None:
    receipt = drop(tt_storage, tt_settings, "template.csv", TEMPLATE)
    assert receipt["counts"]["created"] == 4 and receipt["counts"]["rejected"] == 0, receipt
    assert rows(tictac, "projects", projectNumber="TPL-1") == [] and tictac.writes() == {}  # never in Tic-Tac
    kept = CrossRefs.connect(tt_settings, tt_settings.xref_table).get("tictac", Entity.TEMPLATE, ("TPL-1",))
    assert kept is not None and [op["nLineNumber"] for op in kept.template_operations] == ["10", "20", "30"]

    text = "\n".join([
        "Job;P-T1;From the template;;;;Started;TPL-1",
        "Operation;P-T1;20;BUILD;Build it my way;;;;;;;;0",  # the file wins over the template's line 20
        "Operation;P-T1;40;EXTRA;Inspect;;;;;;;;0",
    ])
    receipt = drop(tt_storage, tt_settings, "uses-template.csv", text)

    assert receipt["counts"]["created"] == 3 and receipt["counts"]["rejected"] == 0, errors_text(tt_storage, tt_settings)
    assert tictac.writes() == {"POST /api/rest/v1/projects": 1}  # the activities ride in the project's POST
    [project] = rows(tictac, "projects", projectNumber="P-T1")
    activities = {a["name"]: a["isActive"] for a in rows(tictac, "activities", projid=project["projid"])}
    assert activities == {"Measure": True, "Build it my way": True, "Archive": False, "Inspect": True}

    # a job naming a template TimeBridge does not know is rejected, naming line, field, value and the fix
    receipt = drop(tt_storage, tt_settings, "unknown-template.csv", "Employee;1;Anders Alm\nJob;P-T2;Nope;;;;Started;TPL-X")
    assert receipt["counts"]["rejected"] == 1 and receipt["counts"]["unchanged"] == 1, receipt
    report = errors_text(tt_storage, tt_settings)
    assert "unknown-template.csv, line 2 (Job)" in report and "sJobTemplate (position 7)" in report
    assert "TPL-X" in report and "knows no Template job TPL-X" in report and "import the Template job TPL-X" in report
    assert rows(tictac, "projects", projectNumber="P-T2") == []

    # the Template job again, with one operation changed: the others are kept, line 20 is replaced
    text = "Job;TPL-1;Standard job;;;;Template\nOperation;TPL-1;20;BUILD;Build v2;;;;;;;;0\nJob;P-T4;Four;;;;Started;TPL-1"
    receipt = drop(tt_storage, tt_settings, "template-v2.csv", text)
    assert receipt["counts"]["created"] == 3 and receipt["counts"]["rejected"] == 0, receipt
    [project] = rows(tictac, "projects", projectNumber="P-T4")
    assert sorted(a["name"] for a in rows(tictac, "activities", projid=project["projid"])) == [
        "Archive", "Build v2", "Measure"]
    kept = CrossRefs.connect(tt_settings, tt_settings.xref_table).get("tictac", Entity.TEMPLATE, ("TPL-1",))
    assert kept is not None and [op["sDescription"] for op in kept.template_operations] == [
        "Measure", "Build v2", "Archive"]


def test_a_template_and_a_job_using_it_in_one_file(tt_storage, tt_settings, tictac: TicTacSandbox) -> None:
    text = "\n".join(["Job;P-T3;Same file;;;;Planned;TPL-1", TEMPLATE, "Operation;P-T3;10;MEAS;Measure twice"])
    receipt = drop(tt_storage, tt_settings, "both.csv", text)

    assert receipt["counts"]["created"] == 6 and receipt["counts"]["rejected"] == 0, errors_text(tt_storage, tt_settings)
    assert tictac.writes() == {"POST /api/rest/v1/projects": 1}
    [project] = rows(tictac, "projects", projectNumber="P-T3")
    assert sorted(a["name"] for a in rows(tictac, "activities", projid=project["projid"])) == [
        "Archive", "Build", "Measure twice"]
    assert rows(tictac, "projects", projectNumber="TPL-1") == []


def test_value_errors_and_a_rejected_file_name_tic_tac(tt_storage, tt_settings, tictac: TicTacSandbox) -> None:
    text = "\n".join([f"Job;P-L1;{'x' * 51};;;;Started", "Job;P-L2;Old;;01-01-1700", "Job;P-L3;Big;;;;;;;99999999999"])
    receipt = drop(tt_storage, tt_settings, "values.csv", text)

    assert receipt["counts"]["rejected"] == 3, receipt
    report = errors_text(tt_storage, tt_settings)
    assert "values.csv, line 1 (Job)" in report and "is 51 characters long; Tic-Tac allows at most 50" in report
    assert "values.csv, line 2 (Job)" in report and "the earliest date Tic-Tac can store" in report
    assert "values.csv, line 3 (Job)" in report and "outside the range Tic-Tac can store" in report
    assert "SmartTID" not in report
    assert tictac.writes() == {}

    tt_storage.get_blob_client(tt_settings.input_container, "empty.csv").upload_blob(b"\n\n")
    trigger_import(tt_storage, tt_settings.input_container, "empty.csv")
    [reason] = [name for name in blob_names(tt_storage, tt_settings.error_container)
                if "empty.csv" in name and name.endswith(".txt") and not name.endswith("errors.txt")]
    whole = read_blob(tt_storage, tt_settings.error_container, reason).decode("utf-8-sig")
    assert "Nothing from this file was written to Tic-Tac." in whole and "SmartTID" not in whole


# --- two imports at once -----------------------------------------------------------------------------
def test_two_imports_at_once_never_exceed_the_budget_and_complete_later_in_order(
        tt_storage, tictac: TicTacSandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICTAC_DAILY_CALL_BUDGET", "10")
    settings = Settings()
    tictac.limit(10)  # Tic-Tac itself refuses the 11th call of its day: any excess would show as a 429
    texts = {}
    for name in ("alpha", "beta"):
        add_project(tictac, f"P-{name}", name.title())
        texts[f"{name}.csv"] = "\n".join([f"Job;P-{name};{name.title()}",
                                          *(f"Operation;P-{name};{n};OP{n};{name} {n}" for n in range(1, 11))])
    # each file alone: 2 reads + 10 activity POSTs = 12 calls, more than the whole budget of 10
    for name, text in texts.items():
        tt_storage.get_blob_client(settings.input_container, name).upload_blob(text.encode())
    start = threading.Barrier(2)
    failures: list[BaseException] = []

    def run(name: str) -> None:
        try:
            start.wait()
            trigger_import(tt_storage, settings.input_container, name)
        except BaseException as exc:  # reported by the assertion below
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(name,)) for name in texts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []

    receipts = {}
    for name in texts:
        [receipt_name] = [blob for blob in blob_names(tt_storage, settings.archive_container)
                          if blob.startswith(f"{name}/") and blob.endswith("/receipt.json")]
        receipts[name] = json.loads(read_blob(tt_storage, settings.archive_container, receipt_name))
    used = tictac.limit()["used"]
    assert used <= 10 and sum(tictac.calls().values()) <= 10, tictac.calls()
    for receipt in receipts.values():  # every line applied or waiting; none lost, none rejected
        counts = receipt["counts"]
        assert counts.get("rejected", 0) == 0, receipt
        assert counts.get("created", 0) + counts.get("unchanged", 0) + counts["deferred"] == 11, receipt
        assert not any("call limit was reached" in note for note in receipt["notes"]), receipt["notes"]
    assert blob_names(tt_storage, settings.error_container) == []
    pending = Deferrals(tt_storage, settings.archive_container, "tictac").entries()
    assert sorted(entry.source for entry in pending) == sorted(texts)  # neither fitted whole
    order = [entry.source for entry in pending]  # the file that began first comes first

    clock = Clock()
    factory = budgeted_factory(settings, tictac, clock, limit=10)
    completed: list[str] = []
    for _day in range(3):  # 12 + 12 calls less what fitted today: two more days at most
        clock.offset += timedelta(hours=25)
        tictac.advance(hours=25)
        before = sum(tictac.calls().values())
        left = {entry.source for entry in Deferrals(tt_storage, settings.archive_container, "tictac").entries()}
        resume_deferred(settings, tt_storage, factory)
        assert sum(tictac.calls().values()) - before <= 10 and tictac.limit()["used"] <= 10
        now_left = {entry.source for entry in Deferrals(tt_storage, settings.archive_container, "tictac").entries()}
        completed += [source for source in order if source in left - now_left]
        if not now_left:
            break
    assert completed == order  # oldest first
    for name in texts:
        stem = name.removesuffix(".csv")
        [project] = rows(tictac, "projects", projectNumber=f"P-{stem}")
        assert sorted(a["name"] for a in rows(tictac, "activities", projid=project["projid"])) == sorted(
            f"{stem} {n}" for n in range(1, 11))
    assert blob_names(tt_storage, settings.error_container) == []


def test_resumed_lines_keep_the_cpr_rule(tt_storage, tt_settings, tictac: TicTacSandbox) -> None:
    # SEND_CPR_NUMBER is off: a CPR number in a line that waited for the budget is not sent either.
    clock = Clock()
    factory = budgeted_factory(tt_settings, tictac, clock, limit=10)
    CallBudget.connect(tt_settings, budget_id("tictac", SecretStr(tictac.api_code)), 10,
                       table_name=tt_settings.budget_table, clock=clock.now).block_until(clock.now() + timedelta(hours=1))
    receipt = process(tt_storage, tt_settings, factory, "cpr.csv",
                      "Employee;7701;Cilla Cpr;;;;;cilla@example.se;010190-1234")
    assert receipt.counts["deferred"] == 1

    clock.offset = timedelta(hours=25)
    assert resume_deferred(tt_settings, tt_storage, factory) == 1

    [user] = rows(tictac, "users", employeeNumber="7701")
    assert not user.get("nationalIDNumber")
    [resumed] = [json.loads(read_blob(tt_storage, tt_settings.archive_container, name))
                 for name in blob_names(tt_storage, tt_settings.archive_container) if "/resumed-" in name]
    assert any("CPR" in note for note in resumed["notes"])


def test_a_file_too_large_to_read_whole_is_refused_before_anything_is_written(
        tt_storage, tt_settings, tictac: TicTacSandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    # Tic-Tac files are read whole (a project is created with its activities): bounded by WHOLE_FILE_LIMIT.
    monkeypatch.setattr(passes, "WHOLE_FILE_LIMIT", 2_000)
    before = tictac.writes()
    text = "".join(f"Employee;W{n:04d};Worker {n}\n" for n in range(200))  # about 4 KB
    receipt = drop(tt_storage, tt_settings, "big.csv", text)
    assert receipt["status"] == "rejected-file"
    assert tictac.writes() == before
    reason = "".join(read_blob(tt_storage, tt_settings.error_container, name).decode("utf-8-sig")
                     for name in blob_names(tt_storage, tt_settings.error_container) if name.endswith(".txt"))
    assert "reads a file whole" in reason and "2,000 bytes" in reason and "split the file" in reason


def test_the_whole_file_limit_holds_when_the_size_is_not_known_beforehand(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passes, "WHOLE_FILE_LIMIT", 100)
    chunks = [b"Employee;E1;Anne\n" * 4] * 3  # 204 bytes, in chunks of 68: stopped at the second
    with pytest.raises(UnreadableFileError, match="136 bytes or more"):
        passes.read_for_import(lambda: iter(chunks), fold=False, target="Tic-Tac", whole=True)
    parsed, _ = passes.read_for_import(lambda: iter(chunks[:1]), fold=False, target="Tic-Tac", whole=True)
    assert [record.key for record in parsed.records] == [("E1",)]
