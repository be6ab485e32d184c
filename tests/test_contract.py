"""The contract suite: every target — both sandboxes and the in-memory reference target — held to
the same rules, through the real import (plan, diff, writes) and its connector.

A new target is done when it passes this suite: add its package under shared/targets/ and one
``Harness`` below (how to make a record by hand in it, read what it stores, and lose a write's answer;
for a target with a ledger: how hours are registered in it, how it corrects them, what it holds now).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from shared.export import run_export
from shared.importing.intake import apply_parsed
from shared.importing.parsing import parse_file
from shared.importing.reports import Receipt
from shared.platform.config import Settings
from shared.records.layouts import RecordType
from shared.targets.base import Connector
from shared.targets.factory import connector_factory
from shared.targets.registry import target_spec
from shared.targets.tictac.xref import CrossRefs, Entity
from shared.wiring import prepare_storage
from tests.conftest import Sandbox, TicTacSandbox, blob_names, read_blob
from tests.support import reference_target


@dataclass
class Harness:
    """One target under test, seen from outside its connector."""

    name: str
    settings: Settings
    #: make an employee by hand in the target (the customer's first day)
    make_employee: Callable[[str, str], None]
    #: the names of the employees the target stores with this code (read from the target itself)
    stored_names: Callable[[str], list[str]]
    #: the next create of an employee is applied and its answer lost
    lose_next_create_answer: Callable[[], None]
    #: hours registered in the target by hand (employee code, job code, operation line, hours); None:
    #: the target has no ledger (the reference target)
    post_hours: Callable[[str, str, int, float], None] | None = None
    #: a correction, made the target's own way: the hours of what ``post_hours`` registered (employee
    #: code, job code, operation line) are now these (None: no ledger)
    correct_hours: Callable[[str, str, int, float], None] | None = None
    #: the hours of each ledger record the target holds now for (employee code, job code)
    held_hours: Callable[[str, str], list[Decimal]] | None = None

    def connector(self) -> Connector:
        return connector_factory(self.settings)()

    def run(self, text: str) -> tuple[dict[str, int], int, list[str]]:
        """Import ``text``: the lines per status, the writes made, and the rejections' reasons."""
        connector = self.connector()
        try:
            spec = target_spec(self.settings.target_system)
            parsed = parse_file(lambda: [text.encode()], fold_codes=connector.codes_case_insensitive,
                                target=spec.display_name)
            receipt = Receipt(source="contract.csv", etag="0x1", status="", received_at="")
            result, _ = apply_parsed(self.settings, connector, "", parsed, receipt)
            return result.line_counts(), connector.calls.writes, [e.reason for e in result.errors]
        finally:
            connector.close()


def _env(monkeypatch: pytest.MonkeyPatch, values: dict[str, str]) -> Settings:
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return Settings()


def smarttid_harness(app_env: dict[str, str], sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Harness:
    settings = _env(monkeypatch, {"TARGET_SYSTEM": "smarttid"})

    def make(code: str, name: str) -> None:
        sandbox.insert("employees", [{"EmployeeCode": code, "Name": name, "Active": True}])

    def names(code: str) -> list[str]:
        return [row["Name"] for row in sandbox.find("employees", EmployeeCode=code)]

    def lose() -> None:
        sandbox.fault("POST", "/employees", drop=True, after_apply=True, times=1)

    def post(employee: str, job: str, line: int, hours: float) -> None:
        sandbox.insert("jobledger", [{
            "EmployeeCode": employee, "Name": "", "Date": "2026-11-19T00:00:00", "JobCode": job,
            "JobOperationLineNumber": line, "OperationCode": "OP", "WorkTypeCode": "NORMAL", "TotalTime": hours,
            "Completed": False, "Transfered": False}])

    def entries(employee: str, job: str) -> list[dict[str, Any]]:
        return sandbox.find("jobledger", EmployeeCode=employee, JobCode=job)

    def correct(employee: str, job: str, line: int, hours: float) -> None:
        # A job-ledger entry is posted data: SmartTID corrects it with new entries (posted from a journal),
        # the registration's hours so far reversed and the new hours posted, each an entry of its own.
        # TimeBridge knows an entry by its ID alone (shared/export/flagged_source.py, NewEntries.leave_out).
        so_far = sum((Decimal(str(row["TotalTime"])) for row in entries(employee, job)
                      if row["JobOperationLineNumber"] == line), Decimal(0))
        post(employee, job, line, float(-so_far))
        post(employee, job, line, hours)

    def held(employee: str, job: str) -> list[Decimal]:
        return [Decimal(str(row["TotalTime"])) for row in entries(employee, job)]

    return Harness("smarttid", settings, make, names, lose, post, correct, held)


def tictac_harness(app_env: dict[str, str], tictac: TicTacSandbox, monkeypatch: pytest.MonkeyPatch) -> Harness:
    suffix = uuid.uuid4().hex[:8]
    settings = _env(monkeypatch, {"TARGET_SYSTEM": "tictac", "TICTAC_BASE_URL": tictac.base_url,
                                  "TICTAC_API_CODE": tictac.api_code, "XREF_TABLE": f"xref{suffix}",
                                  "BUDGET_TABLE": f"budget{suffix}"})
    prepare_storage(settings)

    def make(code: str, name: str) -> None:
        first, _, last = name.partition(" ")
        tictac.insert("users", [{"userName": f"hand{uuid.uuid4().hex}", "firstName": first, "lastName": last,
                                 "employeeNumber": code}])

    def names(code: str) -> list[str]:
        return [f"{row['firstName']} {row['lastName']}".strip() for row in tictac.state()["users"]
                if row.get("employeeNumber") == code]

    def lose() -> None:
        tictac.fault("POST", "/api/rest/v1/users", drop=True, after_apply=True, times=1)

    def ids(employee: str, job: str) -> tuple[str, str]:
        state = tictac.state()
        [user] = [row["userName"] for row in state["users"] if row.get("employeeNumber") == employee]
        [project] = [row["projid"] for row in state["projects"] if row.get("projectNumber") == job]
        return user, project

    def activity_of(job: str, line: int) -> str:
        refs = CrossRefs.connect(settings, settings.xref_table).load("tictac", Entity.ACTIVITY)
        [activity] = [ref.remote_id for key, ref in refs.items() if key[0] == job and str(key[1]) == str(line)]
        return activity

    def post(employee: str, job: str, line: int, hours: float) -> None:
        user, project = ids(employee, job)
        tictac.insert("entries", [{"type": "TicTacTime", "userid": user, "projid": project,
                                   "actid": activity_of(job, line), "date": "2026-11-19", "attested": True,
                                   "hours": hours, "changed": tictac.advance()}])

    def entries(employee: str, job: str) -> list[dict[str, Any]]:
        user, project = ids(employee, job)
        return [row for row in tictac.state()["entries"]
                if row["userid"] == user and row["projid"] == project and not row.get("_deleted")]

    def correct(employee: str, job: str, line: int, hours: float) -> None:
        # Tic-Tac changes the registration itself (a user editing it in the app): same row, new hours
        [row] = [row for row in entries(employee, job) if row["actid"] == activity_of(job, line)]
        tictac.edit_entry(row["rowid"], hours=hours)

    def held(employee: str, job: str) -> list[Decimal]:
        return [Decimal(str(row["hours"])) for row in entries(employee, job) if row.get("attested") is True]

    return Harness("tictac", settings, make, names, lose, post, correct, held)


def reference_harness(app_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Harness:
    settings = _env(monkeypatch, {"TARGET_SYSTEM": reference_target.NAME})
    store = reference_target.MemoryTarget()
    monkeypatch.setattr(reference_target, "STORE", store)

    def make(code: str, name: str) -> None:
        store.add(RecordType.EMPLOYEE, {"sEmployeeCode": code, "sName": name})

    def names(code: str) -> list[str]:
        return [str(store.rows[RecordType.EMPLOYEE][i]["sName"]) for i in store.with_key(RecordType.EMPLOYEE, (code,))]

    def lose() -> None:
        store.lose_answers = 1

    return Harness("reference", settings, make, names, lose)


@pytest.fixture(params=["reference", "smarttid", "tictac"])
def target(request: pytest.FixtureRequest, app_env: dict[str, str],
           monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    if request.param == "reference":
        yield reference_harness(app_env, monkeypatch)
    elif request.param == "smarttid":
        yield smarttid_harness(app_env, request.getfixturevalue("sandbox"), monkeypatch)
    else:
        box: TicTacSandbox = request.getfixturevalue("tictac")
        box.reset(seeded=False)
        yield tictac_harness(app_env, box, monkeypatch)


def test_a_record_made_by_hand_is_matched_by_its_code_and_left_alone(target: Harness) -> None:
    target.make_employee("H-1", "Hanne Hand")
    counts, writes, errors = target.run("Employee;H-1;Hanne Hand\n")
    assert (counts["unchanged"], counts["created"], writes, errors) == (1, 0, 0, [])
    assert target.stored_names("H-1") == ["Hanne Hand"]


def test_a_changed_field_is_one_update_of_the_stored_record(target: Harness) -> None:
    target.make_employee("H-2", "Hanne Hand")
    counts, writes, errors = target.run("Employee;H-2;Hanne Handberg\n")
    assert (counts["updated"], writes, errors) == (1, 1, [])
    assert target.stored_names("H-2") == ["Hanne Handberg"]


def test_a_new_record_is_created_once_and_a_second_import_writes_nothing(target: Harness) -> None:
    counts, writes, errors = target.run("Employee;N-1;Nils Ny\n")
    assert (counts["created"], errors) == (1, [])
    assert writes >= 1
    assert target.stored_names("N-1") == ["Nils Ny"]
    counts, writes, errors = target.run("Employee;N-1;Nils Ny\n")
    assert (counts["unchanged"], counts["created"], writes, errors) == (1, 0, 0, [])


def test_a_create_whose_answer_is_lost_is_looked_up_not_made_twice(target: Harness) -> None:
    target.lose_next_create_answer()
    counts, _, errors = target.run("Employee;L-1;Lise Lost\n")
    assert (counts["created"], errors) == (1, [])
    assert target.stored_names("L-1") == ["Lise Lost"]


def test_every_record_of_a_long_list_is_read(target: Harness) -> None:
    for n in range(520):  # beyond SmartAPI's page size (500)
        target.make_employee(f"M-{n:04d}", f"Mass {n}")
    connector = target.connector()
    try:  # a call is made only within a reservation (a target without a limit grants every one)
        assert connector.reserve(connector.read_cost(RecordType.EMPLOYEE)) is True
        listed = connector.list_records(RecordType.EMPLOYEE)
    finally:
        connector.close()
    codes = {str(record.values.get("sEmployeeCode")) for record in listed}
    assert {f"M-{n:04d}" for n in range(520)} <= codes


def test_the_budget_keeps_its_word(target: Harness) -> None:
    connector = target.connector()
    try:
        remaining = connector.remaining_calls()
        if remaining is None:  # no call limit: everything fits, and nothing ever waits
            assert connector.reserve(10**6) is True
            assert connector.next_free_at(10**6) is None
        else:
            assert connector.reserve(remaining + 1) is False
            assert connector.reserve(1) is True
    finally:
        connector.close()


def exported_job_lines(harness: Harness, storage: Any) -> list[tuple[str, str, str]]:
    """(employee, job, hours) of every JobLedgerEntry line in the output container's files."""
    container = harness.settings.output_container
    lines = []
    for name in blob_names(storage, container):
        text = read_blob(storage, container, name).decode("utf-8-sig", errors="replace")
        for fields in (line.split(";") for line in text.splitlines() if line.startswith("JobLedgerEntry;")):
            lines.append((fields[2], fields[5], fields[15]))
    return lines


MASTER = "Employee;C-1;Carl Contract\nJob;CJ1;Contract job\nOperation;CJ1;10;OP;Painting\n"


def import_master(target: Harness) -> None:
    """The employee, job and operation hours are registered on, as the ERP delivers them twice."""
    counts, _, errors = target.run(MASTER)
    assert (counts["created"], errors) == (3, [])
    # the ERP's next delivery: nothing to write (Tic-Tac links the activities its project POST carried, by name)
    counts, writes, errors = target.run(MASTER)
    assert (counts["unchanged"], writes, errors) == (3, 0, [])


def test_hours_registered_in_the_target_are_exported_exactly_once(target: Harness,
                                                                 request: pytest.FixtureRequest) -> None:
    if target.post_hours is None:
        pytest.skip("the reference target keeps no ledger: the export's contract is held by the two sandboxes")
    storage = request.getfixturevalue("storage")
    import_master(target)
    target.post_hours("C-1", "CJ1", 10, 7.5)
    assert run_export(target.settings) is not None
    assert [line for line in exported_job_lines(target, storage) if line[0] == "C-1"] == [("C-1", "CJ1", "7,5")]
    assert run_export(target.settings) is None  # nothing new: nothing is written twice
    assert [line for line in exported_job_lines(target, storage) if line[0] == "C-1"] == [("C-1", "CJ1", "7,5")]


def job_ledger_lines(harness: Harness, storage: Any) -> list[tuple[str, str, str, Decimal]]:
    """(ID, employee, job, hours) of every JobLedgerEntry line ever written to the output container (the
    files in name order: two runs within one minute are not in the order they ran)."""
    container = harness.settings.output_container
    lines = []
    for name in sorted(blob_names(storage, container)):
        text = read_blob(storage, container, name).decode("utf-8-sig", errors="replace")
        for fields in (line.split(";") for line in text.splitlines() if line.startswith("JobLedgerEntry;")):
            lines.append((fields[1], fields[2], fields[5], Decimal(fields[15].replace(",", "."))))
    return lines


def assert_in_step(harness: Harness, storage: Any, employee: str, job: str) -> list[Decimal]:
    """The hours of every line ever written for ``employee``/``job`` add up to what the target holds now,
    and no line (ID) was written twice; the lines' hours."""
    assert harness.held_hours is not None
    lines = job_ledger_lines(harness, storage)
    twice = [line_id for line_id, count in Counter(line[0] for line in lines).items() if count > 1]
    assert twice == [], f"JobLedgerEntry lines written more than once: {twice}"
    hours = [line[3] for line in lines if (line[1], line[2]) == (employee, job)]
    assert sum(hours, Decimal(0)) == sum(harness.held_hours(employee, job), Decimal(0)), (hours, harness.name)
    return hours


def test_a_correction_of_exported_hours_reaches_the_ledger_once(target: Harness,
                                                                request: pytest.FixtureRequest) -> None:
    if target.post_hours is None or target.correct_hours is None:
        pytest.skip("the reference target keeps no ledger: the export's contract is held by the two sandboxes")
    storage = request.getfixturevalue("storage")
    import_master(target)
    target.post_hours("C-1", "CJ1", 10, 7.5)
    assert run_export(target.settings) is not None
    exported = job_ledger_lines(target, storage)
    assert assert_in_step(target, storage, "C-1", "CJ1") == [Decimal("7.5")]

    target.correct_hours("C-1", "CJ1", 10, 6.25)  # changed in the target after it was exported
    assert run_export(target.settings) is not None

    hours = assert_in_step(target, storage, "C-1", "CJ1")
    assert sum(hours, Decimal(0)) == Decimal("6.25")
    assert set(exported) <= set(job_ledger_lines(target, storage))  # what the ERP had is left as it was
    assert run_export(target.settings) is None  # the correction is in: a further run writes nothing
    assert assert_in_step(target, storage, "C-1", "CJ1") == hours


def test_hours_corrected_before_they_were_exported_are_exported_once_with_their_new_hours(
        target: Harness, request: pytest.FixtureRequest) -> None:
    if target.post_hours is None or target.correct_hours is None or target.held_hours is None:
        pytest.skip("the reference target keeps no ledger: the export's contract is held by the two sandboxes")
    storage = request.getfixturevalue("storage")
    import_master(target)
    target.post_hours("C-1", "CJ1", 10, 7.5)
    target.correct_hours("C-1", "CJ1", 10, 6.25)  # changed in the target before any export run

    assert run_export(target.settings) is not None

    hours = assert_in_step(target, storage, "C-1", "CJ1")
    assert sum(hours, Decimal(0)) == Decimal("6.25")
    # one line per record the target holds: nothing is reversed that was never sent
    assert sorted(hours) == sorted(target.held_hours("C-1", "CJ1"))
    assert run_export(target.settings) is None
    assert assert_in_step(target, storage, "C-1", "CJ1") == hours
