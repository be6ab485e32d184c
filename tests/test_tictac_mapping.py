"""ERP records ↔ Tic-Tac bodies: pure functions, and a round trip through the Tic-Tac sandbox."""

from __future__ import annotations

import hashlib
from decimal import Decimal

import pytest
from pydantic import SecretStr

from shared.errors import AmbiguousMatchError
from shared.records.layouts import RecordType
from shared.targets.tictac.client import Activity, Project, RetryPolicy, TicTacClient, User
from shared.targets.tictac.mapping import (
    UNHELD_FIELDS,
    UserNameRule,
    activity_body,
    activity_changes,
    activity_names,
    activity_values,
    expand_template,
    fold_ascii,
    is_template,
    match_activity_by_name,
    match_project,
    match_user,
    near_miss_users,
    project_after_create,
    project_changes,
    project_create_body,
    project_values,
    split_name,
    unheld_fields,
    user_changes,
    user_create_body,
    user_values,
)
from tests.conftest import TicTacSandbox

ANNA = {"sEmployeeCode": "1298", "sName": "Anna Andersson", "sEmail": "ANNA@tictac.se", "sDepartmentCode": "Avd 1",
        "sCellPhone": "0701", "sAddress": "Järngatan 5", "sCPRNo": "010101-1234"}


def tictac_user(**fields: object) -> User:
    base = {"userName": "annatictacse", "firstName": "Anna", "lastName": "Andersson", "emailAdress": "anna@tictac.se",
            "employeeNumber": "1298", "department": "Avd 1", "isActive": True}
    merged = base | fields
    return User(str(merged["userName"]), merged)


@pytest.mark.parametrize(("full", "expected"), [
    ("Anna Maria Svensson", ("Anna Maria", "Svensson")),
    ("Svensson, Anna Maria", ("Anna Maria", "Svensson")),
    ("  Per   Andersson ", ("Per", "Andersson")),
    ("Madonna", ("Madonna", "Madonna")),
])
def test_names_are_split(full: str, expected: tuple[str, str]) -> None:
    assert split_name(full) == expected


def test_an_unchanged_employee_needs_no_write_even_when_tictac_split_the_name_otherwise() -> None:
    assert user_changes(ANNA, tictac_user()) == {}
    # an administrator re-split "Anna Maria / Svensson" as "Anna / Maria Svensson": same joined name
    resplit = tictac_user(firstName="Anna", lastName="Maria Svensson")
    assert user_changes({"sEmployeeCode": "1", "sName": "Anna Maria Svensson"}, resplit) == {}
    assert user_changes({"sEmployeeCode": "1", "sName": "Svensson, Anna Maria"}, resplit) == {}


def test_employee_changes_cover_only_fields_tictac_holds() -> None:
    changed = ANNA | {"sName": "Anna Berg", "sDepartmentCode": "Avd 3", "sCity": "Västerås", "sZipCode": "72211",
                      "sCellPhone": "0709", "sWorkCalendarCode": "NORM"}
    assert user_changes(changed, tictac_user()) == {"firstName": "Anna", "lastName": "Berg", "department": "Avd 3"}
    assert user_changes(ANNA | {"sEmail": "anna@new.se"}, tictac_user()) == {"emailAdress": "anna@new.se"}
    assert user_changes(ANNA, tictac_user(nationalIDNumber=""), send_national_id=True) == {
        "nationalIDNumber": "010101-1234"}
    assert user_changes(ANNA, tictac_user(nationalIDNumber="")) == {}


def test_a_new_user_body() -> None:
    body = user_create_body(ANNA, user_name="anna@tictac.se")
    assert body == {"userName": "anna@tictac.se", "firstName": "Anna", "lastName": "Andersson",
                    "employeeNumber": "1298", "emailAdress": "ANNA@tictac.se", "phoneNumber": "0701"}
    assert user_create_body(ANNA, user_name="x", send_national_id=True)["nationalIDNumber"] == "010101-1234"
    assert user_values(tictac_user()) == {"sEmployeeCode": "1298", "sName": "Anna Andersson",
                                          "sEmail": "anna@tictac.se", "sDepartmentCode": "Avd 1"}


def test_user_names_follow_the_template() -> None:
    assert UserNameRule().user_name(ANNA) == "ANNA@tictac.se"
    no_mail = {"sEmployeeCode": "Ø-17 Å", "sName": "Ole"}
    digest = hashlib.sha256("Ø-17 Å".encode()).hexdigest()[:6]
    assert UserNameRule(company_prefix="Hal").user_name(no_mail) == f"halo17ax{digest}"  # folding changed it
    assert UserNameRule().user_name(no_mail) == f"o17ax{digest}"
    assert UserNameRule().user_name({"sEmployeeCode": "e78"}) == "e78"  # nothing to fold: the code itself


def test_derived_user_names_never_collide() -> None:
    """Codes that fold to the same letters get distinct names (one was created, the others were
    rejected at every import before)."""
    rule = UserNameRule()
    codes = ["N/1", "n1", "N1", "N#1", "Ø1", "O1", "o1"]
    names = [rule.user_name({"sEmployeeCode": code}) for code in codes]
    assert len(set(names)) == len(codes), names
    assert all(name.isascii() and name.isalnum() and name == name.lower() for name in names)
    assert names[1] == "n1" and names[6] == "o1"
    # a plain code whose name a user of the company already has: the hashed form instead
    taken = rule.user_name({"sEmployeeCode": "n1"}, lambda name: name == "n1")
    assert taken.startswith("n1x") and taken not in names
    assert UserNameRule(template="{prefix}{code}", company_prefix="tb").user_name(ANNA) == "tb1298"
    assert fold_ascii("Ærø-Straße 5") == "aerostrasse5"
    assert fold_ascii("日本").startswith("x") and len(fold_ascii("日本")) == 9
    with pytest.raises(ValueError):
        UserNameRule(template="{name}")


def test_job_status_and_templates() -> None:
    job = {"sJobCode": "1455", "sJobDescription": "Hall 4", "sJobDescription2": "Roof", "sStatus": "Completed",
           "sPlannedCompletionDate": "x"}
    assert project_create_body(job) == {"projectNumber": "1455", "name": "Hall 4", "description": "Roof"}
    assert project_after_create(job) == {"projectNumber": "1455", "name": "Hall 4", "description": "Roof",
                                         "isActive": False}
    assert project_after_create(job | {"sStatus": "Started"}) == {}
    assert is_template(job | {"sStatus": "Template"})
    with pytest.raises(ValueError, match="Template"):
        project_create_body(job | {"sStatus": "Template"})
    ops = expand_template(job, [{"sJobCode": "TPL", "nLineNumber": Decimal(10), "sDescription": "Paint"}])
    assert ops == [{"sJobCode": "1455", "nLineNumber": Decimal(10), "sDescription": "Paint"}]


def test_project_changes_keep_what_tictac_owns() -> None:
    project = Project("p1", {"projid": "p1", "projectNumber": "1455", "name": "Hall 4", "description": "Roof",
                             "isActive": True, "hourRate": 990, "priceMode": "PRICELIST"})
    job = {"sJobCode": "1455", "sJobDescription": "Hall 4", "sJobDescription2": "Roof", "sStatus": "Started",
           "sCustomerCode": "C1"}
    assert project_changes(job, project) == {}
    assert project_changes(job | {"sStatus": "Canceled"}, project) == {
        "hourRate": 990, "name": "Hall 4", "description": "Roof", "isActive": False, "projectNumber": "1455"}
    assert "priceMode" not in project_changes(job | {"sJobDescription": "Hall 5"}, project)
    assert project_values(project) == {"sJobCode": "1455", "sJobDescription": "Hall 4", "sJobDescription2": "Roof"}


def test_operations_become_activities() -> None:
    ops = [{"sJobCode": "1", "nLineNumber": Decimal("10"), "sDescription": "Painting"},
           {"sJobCode": "1", "nLineNumber": Decimal("30.0"), "sDescription": "painting "},
           {"sJobCode": "1", "nLineNumber": Decimal("40"), "sDescription": "Sanding", "bOperationCompleted": True}]
    assert activity_names(ops) == ["Painting (10)", "painting (30)", "Sanding"]
    assert activity_body(ops[2]) == {"name": "Sanding", "isActive": False}
    activity = Activity("a1", "p1", {"name": "Sanding", "isActive": False, "hourRate": 900, "priceMode": 0})
    assert activity_changes(ops[2], activity) == {}
    assert activity_changes(ops[2] | {"bOperationCompleted": False}, activity) == {
        "hourRate": 900, "isActive": True, "name": "Sanding"}
    assert activity_values(activity) == {"sDescription": "Sanding", "bOperationCompleted": True}


def test_matching_is_exact_and_refuses_ambiguity() -> None:
    users = [tictac_user(), tictac_user(userName="a2", employeeNumber="A360"), tictac_user(userName="z", employeeNumber="")]
    assert match_user(users, "1298").user_name == "annatictacse"
    assert match_user(users, "a360") is None
    assert [u.user_name for u in near_miss_users(users, "a360")] == ["a2"]
    assert match_user(users, "01298") is None
    with pytest.raises(AmbiguousMatchError):
        match_user([*users, tictac_user(userName="twin")], "1298")
    projects = [Project("p1", {"projectNumber": "J1", "name": "One"}), Project("p2", {"projectNumber": "J1", "name": "Two"})]
    with pytest.raises(AmbiguousMatchError, match=r"One.*Two"):
        match_project(projects, "J1")
    activities = [Activity("a1", "p", {"name": "Painting"}), Activity("a2", "p", {"name": " painting"}),
                  Activity("a3", "p", {"name": "Sanding"})]
    assert match_activity_by_name(activities, "SANDING ").activity_id == "a3"
    assert match_activity_by_name(activities, "Welding") is None
    with pytest.raises(AmbiguousMatchError) as caught:
        match_activity_by_name(activities, "Painting")
    assert "Painting (a1)" in caught.value.message and "painting (a2)" in caught.value.message


def test_the_fields_tictac_has_no_place_for_are_named() -> None:
    assert UNHELD_FIELDS[RecordType.EMPLOYEE][:3] == ("sAddress", "sZipCode", "sCity")
    assert "sOperationCode" not in UNHELD_FIELDS[RecordType.OPERATION]  # kept in the cross-reference
    assert "sPlannedTime" in UNHELD_FIELDS[RecordType.OPERATION]
    assert unheld_fields(RecordType.EMPLOYEE, ANNA) == ["sAddress"]
    assert "sName" not in UNHELD_FIELDS[RecordType.EMPLOYEE] and "sStatus" not in UNHELD_FIELDS[RecordType.JOB]


def test_a_job_round_trips_through_tictac_without_a_second_write(tictac: TicTacSandbox) -> None:
    """Create from the ERP values, read back: the diff is empty; a change under replace-PUT keeps the rest."""
    tictac.switch(partial_put="replace")
    job = {"sJobCode": "J-77", "sJobDescription": "Hall 4", "sJobDescription2": "Roof", "sStatus": "Completed"}
    ops = [{"sJobCode": "J-77", "nLineNumber": Decimal(10), "sDescription": "Painting"},
           {"sJobCode": "J-77", "nLineNumber": Decimal(20), "sDescription": "Painting", "bOperationCompleted": True}]
    names = activity_names(ops)
    with TicTacClient(tictac.base_url, SecretStr(tictac.api_code), retry=RetryPolicy(attempts=1)) as client:
        project_id = client.create_project(project_create_body(job),
                                           [activity_body(op, name=n) for op, n in zip(ops, names, strict=True)])
        client.update_project(project_id, project_after_create(job))
        project = match_project(client.list_projects(), "J-77")
        assert project is not None and project.project_id == project_id
        assert project_changes(job, project) == {}
        assert project.activities is not None
        linked = [match_activity_by_name(project.activities, n) for n in names]
        assert all(a is not None for a in linked)
        assert [activity_changes(op, a, name=n) for op, a, n in zip(ops, linked, names, strict=True)] == [{}, {}]
        writes = client.calls.writes
        client.update_project(project_id, project_changes(job | {"sJobDescription": "Hall 4B"}, project))
        after = match_project(client.list_projects(), "J-77")
    assert writes == 2
    assert after is not None and after.name == "Hall 4B" and after.fields["description"] == "Roof"
    assert after.is_active is False and after.project_number == "J-77"


def test_an_employee_round_trips_through_tictac(tictac: TicTacSandbox) -> None:
    employee = {"sEmployeeCode": "E 9", "sName": "Åsa Öberg", "sDepartmentCode": "Avd 7", "sEmail": "asa@example.se"}
    with TicTacClient(tictac.base_url, SecretStr(tictac.api_code), retry=RetryPolicy(attempts=1)) as client:
        created = client.create_user(user_create_body(employee, user_name=UserNameRule().user_name(employee)),
                                     read_back=True)
        assert created.user is not None
        follow_up = user_changes(employee, created.user)
        assert follow_up == {"department": "Avd 7"}  # not a documented POST field
        client.update_user(created.user.user_name, follow_up)
        user = match_user(client.list_users(), "E 9")
    assert user is not None and user.user_name == "asaexamplese"
    assert user_changes(employee, user) == {}
