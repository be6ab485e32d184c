"""The Tic-Tac client against the Tic-Tac sandbox over real sockets, and the document's samples."""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Iterator
from datetime import date, timedelta

import pytest
from azure.data.tables import TableClient, TableServiceClient
from pydantic import SecretStr

from shared.errors import (
    AllowanceExceededError,
    ApiRejectedError,
    ApiUnavailableError,
    AuthenticationFailedError,
    BudgetExhaustedError,
)
from shared.targets.budget import CallBudget, budget_id
from shared.targets.tictac.client import (
    CALL_COSTS,
    RetryPolicy,
    TicTacClient,
    days_changed_within,
    parse_activities,
    parse_entries,
    parse_projects,
    parse_users,
)
from tests.conftest import TicTacSandbox
from tests.support import tictac_document as doc
from tests.support.password_spy import PasswordSpy


def rows(tictac: TicTacSandbox, table: str, **match: object) -> list[dict]:
    """The sandbox's stored rows of ``table`` with the given field values."""
    return [row for row in tictac.state()[table] if all(row.get(k) == v for k, v in match.items())]


FAST = RetryPolicy(attempts=3, initial_wait=0.01, max_wait=0.05, max_retry_after=0.05)


@pytest.fixture
def client(tictac: TicTacSandbox) -> TicTacClient:
    with TicTacClient(tictac.base_url, SecretStr(tictac.api_code), timeout=10, retry=FAST) as made:
        yield made


# --- users ---------------------------------------------------------------------------------------
def test_a_user_is_found_by_employee_number(client: TicTacClient, tictac: TicTacSandbox) -> None:
    users = client.list_users()
    by_number = {user.employee_number: user for user in users if user.employee_number}
    assert by_number["1298"].user_name == "annatictacse"
    assert by_number["1298"].fields["emailAdress"] == "anna@tictac.se"
    assert by_number["1"].fields["department"] == "Avd 2"
    assert client.calls.counts == {"GET /v1/users": 1}
    assert tictac.calls() == {"GET /api/rest/v1/users": 1}


def test_a_new_user_is_created_and_its_password_is_never_kept(
        tictac: TicTacSandbox, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    spy = PasswordSpy()
    with TicTacClient(tictac.base_url, SecretStr(tictac.api_code), retry=FAST, transport=spy) as client:
        created = client.create_user(
            {"userName": "olanordmann", "firstName": "Ola", "lastName": "Nordmann",
             "emailAdress": "ola@example.com", "phoneNumber": "0701234567", "employeeNumber": "E-17",
             "department": "not a POST field"}, read_back=True)
        plain = client.create_user({"userName": "kari", "firstName": "Kari", "lastName": "Nordmann"})
        client_state = repr(vars(client))
    assert created.requested_user_name == "olanordmann"
    assert created.user is not None and created.user.user_name == "olanordmann"
    assert created.user.employee_number == "E-17"
    assert plain.user is None and plain.requested_user_name == "kari"
    assert [u["userName"] for u in rows(tictac, "users", employeeNumber="E-17")] == ["olanordmann"]
    # the password Tic-Tac sent is nowhere: not in a log line, not in the returned objects or the client
    assert len(spy.passwords) == 2 and all(len(p) >= 8 for p in spy.passwords)
    returned = repr(created) + repr(dataclasses.asdict(created)) + repr(plain) + client_state
    logged = "\n".join(record.getMessage() + repr(record.args) for record in caplog.records)
    assert any("E-17" in record.getMessage() for record in caplog.records)  # logged by employee code ...
    assert not any("olanordmann" in record.getMessage() for record in caplog.records
                   if record.name.startswith("shared."))  # ... never by userName (personal data)
    for password in spy.passwords:
        assert password not in returned
        assert password not in logged
    assert "userPassword" not in returned + logged


def test_an_email_user_name_is_read_back_as_tictac_stored_it(client: TicTacClient, tictac: TicTacSandbox) -> None:
    # username_with_at=derive (default): "ola.n@example.com" is stored as "olanexamplecom"
    created = client.create_user({"userName": "ola.n@example.com", "firstName": "Ola", "lastName": "N",
                                  "employeeNumber": "77"}, read_back=True)
    assert created.user is not None
    assert created.user.user_name == "olanexamplecom"
    assert created.user.fields["longUserName"] == "ola.n@example.com"
    assert client.calls.counts["GET /v1/users/{id}"] == 1 and client.calls.counts["GET /v1/users"] == 1


def test_employee_number_is_put_when_the_post_does_not_take_it(client: TicTacClient, tictac: TicTacSandbox) -> None:
    tictac.switch(employee_number="put_only")
    created = client.create_user({"userName": "sven", "firstName": "Sven", "lastName": "S",
                                  "employeeNumber": "900"}, read_back=True)
    assert created.user is not None and created.user.employee_number == "900"
    assert rows(tictac, "users", userName="sven")[0]["employeeNumber"] == "900"
    assert client.calls.counts["PUT /v1/users/{id}"] == 1


def test_a_user_update_sends_only_the_changes(client: TicTacClient, tictac: TicTacSandbox) -> None:
    tictac.switch(partial_put="replace")  # a PUT that blanks what is not sent must not lose the e-mail…
    assert client.update_user("andersalm", {"firstName": "Anders", "lastName": "Alm", "department": "Avd 9",
                                            "emailAdress": "info@zetera.se"})
    [row] = rows(tictac, "users", userName="andersalm")
    assert row["department"] == "Avd 9" and row["emailAdress"] == "info@zetera.se"
    assert row["employeeNumber"] == "1"


def test_an_unknown_user_is_none_and_an_unchanged_write_is_reported(client: TicTacClient,
                                                                    tictac: TicTacSandbox) -> None:
    assert client.get_user("nobody") is None
    tictac.switch(unchanged_write=304)
    assert client.update_user("andersalm", {"department": "Avd 2"}) is False
    assert client.update_user("andersalm", {"department": "Avd 3"}) is True


# --- projects and activities ------------------------------------------------------------------------
def test_a_project_is_created_with_its_activities_inline(client: TicTacClient, tictac: TicTacSandbox) -> None:
    project_id = client.create_project(
        {"name": "Hall 4 roof", "description": "ERP job", "projectNumber": "J-1455"},
        [{"name": "Painting"}, {"name": "Scaffolding", "isActive": False}])
    assert client.calls.counts == {"POST /v1/projects": 1}
    found = client.find_project("J-1455")
    assert found is not None and found.project_id == project_id and found.name == "Hall 4 roof"
    assert found.activities is not None
    assert {a.name: a.is_active for a in found.activities} == {"Painting": True, "Scaffolding": False}
    assert all(a.project_id == project_id and a.activity_id for a in found.activities)
    assert client.find_project("J-9999") is None


def test_project_number_case_is_checked_exactly(client: TicTacClient, tictac: TicTacSandbox) -> None:
    tictac.switch(number_case="insensitive")
    client.create_project({"name": "Lower", "projectNumber": "a360"})
    assert client.find_project("A360") is None  # Tic-Tac matched "a360"; the ERP code A360 is another job
    found = client.find_project("a360")
    assert found is not None and found.name == "Lower"


@pytest.mark.parametrize("key", ["activities", "Activities"])
def test_activities_come_with_the_project_list(client: TicTacClient, tictac: TicTacSandbox, key: str) -> None:
    tictac.switch(project_activities=key)
    projects = {p.project_id: p for p in client.list_projects()}
    aduro = projects["1137768437234"]
    assert aduro.activities is not None
    assert {a.name for a in aduro.activities} >= {"Art direction", "Implementation", "Testning"}
    assert client.calls.total == 1


def test_activities_are_read_per_project_when_the_list_holds_none(client: TicTacClient,
                                                                  tictac: TicTacSandbox) -> None:
    tictac.switch(project_activities="none")
    projects = client.list_projects()
    assert projects and all(p.activities is None for p in projects)
    filled = {p.project_id: p for p in client.fill_activities(projects, {"1137768437234"})}
    aduro = filled["1137768437234"]
    assert aduro.activities is not None and "Art direction" in {a.name for a in aduro.activities}
    assert filled["1455109526722"].activities is None  # not asked for: no call spent
    assert filled["1455109526722"].name == "ABC-analys Hedgehog"  # Swedish characters intact
    assert client.calls.counts == {"GET /v1/projects": 1, "GET /v1/activities": 1}


def test_projects_in_a_wrapper_and_an_empty_list_as_204(client: TicTacClient, tictac: TicTacSandbox) -> None:
    tictac.switch(projects_json="wrapped")
    assert len(client.list_projects()) >= 2
    tictac.reset(seeded=False)
    tictac.switch(empty_list=204)
    assert client.list_projects() == [] and client.list_users() == []


def test_inactive_projects_may_be_missing_from_lists(client: TicTacClient, tictac: TicTacSandbox) -> None:
    project_id = client.create_project({"name": "Done", "projectNumber": "J-2"})
    assert client.update_project(project_id, {"isActive": False, "name": "Done (closed)"})
    assert [p.is_active for p in client.list_projects() if p.project_id == project_id] == [False]
    tictac.switch(inactive_in_lists="omitted")
    assert project_id not in {p.project_id for p in client.list_projects()}


def test_an_activity_is_created_and_updated(client: TicTacClient, tictac: TicTacSandbox) -> None:
    activity_id = client.create_activity("3265353621", {"name": "Welding", "description": "line 10"})
    assert client.update_activity(activity_id, {"name": "Welding (TIG)", "isActive": False})
    [row] = [a for a in client.list_activities("3265353621") if a.activity_id == activity_id]
    assert row.name == "Welding (TIG)" and row.is_active is False and row.project_id == "3265353621"
    assert row.fields["description"] == "line 10"  # merge: not sent, kept
    assert client.calls.counts == {"POST /v1/activities": 1, "PUT /v1/activities/{id}": 1,
                                   "GET /v1/activities": 1}


def test_a_partial_activity_put_under_replace_blanks_what_is_not_sent(client: TicTacClient,
                                                                       tictac: TicTacSandbox) -> None:
    tictac.switch(partial_put="replace")
    activity_id = client.create_activity("3265353621", {"name": "Welding", "description": "line 10"})
    client.update_activity(activity_id, {"name": "Welding 2"})
    [row] = rows(tictac, "activities", actid=activity_id)
    assert row["name"] == "Welding 2" and row["description"] == ""  # why the mapping sends name and isActive


def test_a_duplicate_activity_name_is_refused_with_tictac_s_message(client: TicTacClient) -> None:
    with pytest.raises(ApiRejectedError) as caught:
        client.create_activity("3265353621", {"name": "administration"})
    assert caught.value.status == 400
    assert "Tic-Tac" in caught.value.message and "Administration" not in caught.value.message.split(":")[0]
    assert "already exists" in caught.value.message


# --- entries -----------------------------------------------------------------------------------------
def test_entries_are_read_with_a_date_window_and_days_changed_within(client: TicTacClient,
                                                                      tictac: TicTacSandbox) -> None:
    entries = client.read_entries(date(2020, 11, 1), date(2020, 11, 30), time_only=True)
    assert {e.row_id for e in entries} >= {"1604592475583", "1605175001865"}
    assert all(e.type == "TicTacTime" for e in entries)
    tictac.set_now("2020-11-20T12:00:00")
    tictac.edit_entry("1605175001865", hours=6.5)
    changed = client.read_entries(date(2020, 11, 1), date(2020, 11, 30), days_changed_within=1, time_only=True)
    assert [(e.row_id, e.fields["hours"]) for e in changed] == [("1605175001865", "6.5")]
    tictac.switch(days_changed_param="daysChangedWithinStr")
    again = client.read_entries(date(2020, 11, 1), date(2020, 11, 30), days_changed_within=1, time_only=True)
    assert [e.row_id for e in again] == ["1605175001865"]
    with pytest.raises(ValueError):
        client.read_entries(date(2020, 11, 1), date(2020, 11, 30), days_changed_within=91)


def test_days_changed_within_covers_the_gap_with_a_day_of_overlap() -> None:
    from datetime import datetime, timedelta
    now = datetime(2026, 11, 23, 12, 0)
    assert days_changed_within(now - timedelta(minutes=15), now) == 2
    assert days_changed_within(now - timedelta(days=3, hours=1), now) == 5
    assert days_changed_within(now - timedelta(days=95), now) is None


# --- limits, faults, authentication -----------------------------------------------------------------
def test_429_raises_budget_exhausted_with_retry_after_and_is_not_retried(client: TicTacClient,
                                                                          tictac: TicTacSandbox) -> None:
    tictac.limit(2)
    client.list_users()
    client.list_users()
    with pytest.raises(BudgetExhaustedError) as caught:
        client.list_projects()
    assert caught.value.retry_after_seconds > 3600 * 23  # the first counted call ages out in ~24 h
    assert "Tic-Tac" in str(caught.value) and "limit" in str(caught.value)
    assert isinstance(caught.value, ApiUnavailableError)
    assert client.calls.counts["GET /v1/projects"] == 1  # one attempt, no retry loop
    assert tictac.calls()["GET /api/rest/v1/projects"] == 1


def test_503_is_retried_with_backoff(client: TicTacClient, tictac: TicTacSandbox) -> None:
    tictac.fault("GET", "/api/rest/v1/users", status=503, retry_after=30, times=2)
    assert len(client.list_users()) >= 3
    assert client.calls.counts["GET /v1/users"] == 3


def test_503_on_a_create_is_retried_once_and_creates_once(client: TicTacClient, tictac: TicTacSandbox) -> None:
    tictac.fault("POST", "/api/rest/v1/projects", status=503)
    client.create_project({"name": "After a 503", "projectNumber": "J-503"})
    assert len(rows(tictac, "projects", projectNumber="J-503")) == 1
    assert client.calls.counts["POST /v1/projects"] == 2


def test_503_that_persists_is_unavailable(client: TicTacClient, tictac: TicTacSandbox) -> None:
    tictac.fault("GET", "/api/rest/v1/users", status=503, times=5)
    with pytest.raises(ApiUnavailableError) as caught:
        client.list_users()
    assert not isinstance(caught.value, BudgetExhaustedError)
    assert "Tic-Tac kept failing (HTTP 503" in str(caught.value)
    assert client.calls.counts["GET /v1/users"] == 3


def test_a_wrong_api_code_is_an_authentication_failure_without_the_code(tictac: TicTacSandbox) -> None:
    with (TicTacClient(tictac.base_url, SecretStr("wrong.code.here"), retry=FAST) as client,
          pytest.raises(AuthenticationFailedError) as caught):
        client.hello()
    assert "tictac-api-code" in str(caught.value) and "wrong.code.here" not in str(caught.value)
    assert "Tic-Tac" in str(caught.value)


def test_hello_proves_the_connection(client: TicTacClient) -> None:
    assert client.hello().startswith("Hello!")


def test_ids_never_change_the_path(client: TicTacClient, tictac: TicTacSandbox) -> None:
    assert client.get_user("../projects") is None
    assert client.get_user("andersalm") is not None
    assert not any("/v1/projects" in call for call in tictac.calls())


# --- the document's own samples ----------------------------------------------------------------------
def test_the_document_s_user_samples_parse() -> None:
    users = parse_users(doc.USERS_JSON)
    assert [(u.user_name, u.employee_number) for u in users] == [("andersalm", "1"), ("annatictacse", "1298")]
    [johnny] = parse_users(doc.USER_JOHNNYBOY_JSON)
    assert johnny.user_name == "johnnyboy" and johnny.employee_number == "" and johnny.is_active


def test_the_document_s_project_xml_parses() -> None:
    [project] = parse_projects(doc.PROJECTS_XML_FIRST, xml=True)
    assert project.project_id == "1455109526722" and project.name == "ABC-analys Hedgehog"
    assert project.fields["invoiceAdrrow1"] == "Järngatan 5"
    assert project.fields["isActive"] is True and project.fields["isOtherCurrActive"] is True
    assert project.activities == ()
    activities = parse_activities(doc.ADURO_ACTIVITIES_XML, xml=True, project_id="1137768437234")
    assert [(a.name, a.activity_id, a.is_active) for a in activities] == [
        ("Art direction", "1259853648654", True), ("Implementation", "1137768502203", True),
        ("Intervju och analys", "1165686036718", True)]
    assert all(a.project_id == "1137768437234" for a in activities)


def test_the_document_s_activity_json_parses() -> None:
    activities = parse_activities(doc.ACTIVITIES_JSON, project_id="3265353621")
    assert [(a.name, a.activity_id, a.fields["accountNumber"]) for a in activities] == [
        ("Administration", "1607954983993", "3010"), ("Development", "1607955713079", "3010")]


def test_the_document_s_entry_samples_parse() -> None:
    v2 = parse_entries(doc.ENTRIES_V2_JSON)
    assert [(e.row_id, e.type) for e in v2] == [("1604592475583", "TicTacTime"), ("1604592252254", "TicTacTime"),
                                                 ("1604491998604", "TicTacCost")]
    assert v2[2].fields["costvatincl"] == "55.0" and v2[0].fields["attested"] is True
    v2_xml = parse_entries(doc.ENTRIES_V2_XML, xml=True)
    assert [e.type for e in v2_xml] == ["TicTacTime", "TicTacTime", "TicTacMile", "TicTacSale"]
    assert v2_xml[2].fields["spec"] == "Körde bil" and v2_xml[2].fields["distance"] == "333.0"
    assert v2_xml[0].fields["attested"] is True
    v1_xml = parse_entries(doc.ENTRIES_V1_XML, xml=True)
    assert [(e.type, e.row_id) for e in v1_xml] == [("TicTacSale", "1489660871091"),
                                                     ("TicTacTime", "1483534828305"),
                                                     ("TicTacTime", "1483534736117")]
    assert "date" not in v1_xml[1].fields  # the document's row without a date (TT:628-639)


def test_hostile_xml_is_refused() -> None:
    bomb = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]><TicTacUsers>&b;</TicTacUsers>'
    with pytest.raises(ApiUnavailableError):
        parse_users(bomb, xml=True)


# --- with the shared call budget ---------------------------------------------------------------------
@pytest.fixture
def budget_table(services: dict[str, str]) -> Iterator[TableClient]:
    service = TableServiceClient.from_connection_string(services["IntegrationStorage"])
    table = service.create_table(f"budget{uuid.uuid4().hex[:12]}")
    yield table
    table.delete_table()


def test_a_plan_makes_at_most_the_calls_it_reserved(client: TicTacClient, tictac: TicTacSandbox,
                                                     budget_table: TableClient) -> None:
    budget = CallBudget(budget_table, budget_id("tictac", SecretStr(tictac.api_code)), 10)
    reservation = budget.reserve(2)
    assert reservation is not None
    with budget.spend(reservation) as allowance:
        client.before_call = allowance.take
        client.list_users()
        client.list_projects()
        with pytest.raises(AllowanceExceededError):
            client.create_project({"name": "One too many", "projectNumber": "J-X"})
    assert "POST /api/rest/v1/projects" not in tictac.calls()  # refused before it was sent
    assert budget.used() == 2 and budget.remaining() == 8


def test_a_429_blocks_the_shared_budget_until_its_retry_after(client: TicTacClient, tictac: TicTacSandbox,
                                                              budget_table: TableClient) -> None:
    tictac.limit(1)
    budget = CallBudget(budget_table, "tictac-429", 10)
    reservation = budget.reserve(3)
    assert reservation is not None
    with pytest.raises(BudgetExhaustedError) as caught, budget.spend(reservation) as allowance:
        client.before_call = allowance.take
        client.list_users()
        client.list_users()
    assert budget.reserve(1) is None and budget.remaining() == 0
    assert budget.next_free_at(1) >= caught.value.until - timedelta(seconds=1)
    assert budget.used() == 2  # both calls were made (the 429 one reached Tic-Tac)


def test_a_502_after_a_create_is_not_repeated(client: TicTacClient, tictac: TicTacSandbox) -> None:
    tictac.fault("POST", "/api/rest/v1/projects", status=502, after_apply=True)
    with pytest.raises(ApiUnavailableError) as caught:
        client.create_project({"name": "Maybe made", "projectNumber": "J-502"})
    assert "after 1 attempt" in str(caught.value) and "attempts" not in str(caught.value)
    assert len(rows(tictac, "projects", projectNumber="J-502")) == 1  # applied once, never twice
    assert client.find_project("J-502") is not None  # the caller looks before creating again


@pytest.mark.parametrize("project_number", ["read_only", "absent"])
def test_a_project_number_tictac_does_not_keep_finds_nothing(client: TicTacClient, tictac: TicTacSandbox,
                                                            project_number: str) -> None:
    tictac.switch(project_number=project_number)
    project_id = client.create_project({"name": "Numberless", "projectNumber": "J-88"})
    assert client.find_project("J-88") is None  # the cross-reference must carry the link
    [project] = [p for p in client.list_projects() if p.project_id == project_id]
    assert project.project_number == ""


def test_json_errors_and_200_creates_are_understood(client: TicTacClient, tictac: TicTacSandbox) -> None:
    tictac.switch(error_format="json", create_status=200)
    assert client.create_activity("3265353621", {"name": "Fresh"})
    with pytest.raises(ApiRejectedError) as caught:
        client.update_activity("404404", {"name": "x"})
    assert caught.value.status == 404
    assert caught.value.message == "Tic-Tac refused PUT /v1/activities/{id}: No activity with id 404404"


def test_the_documented_call_costs_hold_in_the_worst_case(client: TicTacClient, tictac: TicTacSandbox) -> None:
    tictac.switch(employee_number="put_only")  # and username_with_at=derive: the read-back takes every step
    client.create_user({"userName": "x.y@example.com", "firstName": "X", "lastName": "Y", "employeeNumber": "5"},
                       read_back=True)
    assert client.calls.total == CALL_COSTS["create_user_read_back"]
    before = client.calls.total
    client.create_project({"name": "P", "projectNumber": "J-C"}, [{"name": f"A{n}"} for n in range(30)])
    assert client.calls.total - before == CALL_COSTS["create_project"]
