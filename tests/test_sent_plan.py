"""The sent-ledger export planner (``shared/export/sent_plan.py``) called directly, with Tic-Tac rows in
memory (made entries by the Tic-Tac connector's own conversion, ``shared/targets/tictac/entries.py``):
what one read gives — lines and export-ledger writes — for new, changed, un-attested, zeroed,
deleted, held and left-out rows. No storage, no sandbox: the end-to-end behaviour (the read, the
file, the ledger, crashes) is in tests/test_tictac_export.py."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from shared.export.sent_plan import (
    JOB,
    LEFT_OUT_NAMED,
    TIME,
    ErpCodes,
    Plan,
    Rules,
    link_by_number,
    map_row,
    plan,
)
from shared.export.source_ledger import Catalogue, RowState, SourceRow
from shared.targets.base import Entry, EntryRules
from shared.targets.tictac.entries import TIME_ROW, to_entry

JENS, OLE = "1000000000001", "1000000000002"  # Tic-Tac row ids (13-digit text)
WINDOW = (date(2026, 10, 1), date(2026, 12, 31))


def rules(**changes: Any) -> Rules:
    """Tic-Tac's rules for the tests; ``changes`` of the target's rules or of the run's."""
    own = EntryRules(attested_only=True, absence_projects=frozenset({"FERIE"}),
                     worktypes={"NORMAL": "STD", "OVERTIME": "OVERTIME1"}, lookback_days=400, forward_days=31,
                     max_loss_percent=50, absence_setting="TICTAC_ABSENCE_PROJECTS",
                     loss_setting="TICTAC_RECONCILE_MAX_LOSS_PERCENT")
    own = replace(own, **{name: value for name, value in changes.items() if hasattr(own, name)})
    run = {name: value for name, value in changes.items() if not hasattr(own, name)}
    return replace(Rules(own=own, correction_date=None, window=WINDOW, target="Tic-Tac"), **run)


CATALOGUE = Catalogue(project_numbers={"p1": "1000", "p9": "FERIE", "p5": ""},
                      activity_types={"a1": "normal", "a2": "OVERTIME", "a9": "ABSENCE"},
                      activity_names={"a1": "Maling", "a9": "Ferie"},
                      user_numbers={"jens": "1001"})
OPERATIONS = {
    "a1": {"sJobCode": "1000", "nLineNumber": "10", "sOperationCode": "PAINT", "sERPReference": "ERP-10",
           "sDescription": "Maling - farve 9010"},
    "a2": {"sJobCode": "1000", "nLineNumber": "20", "sOperationCode": "OT", "sERPReference": "ERP-20",
           "sDescription": "Overarbejde"},
}


def codes(**changes: Any) -> ErpCodes:
    return replace(ErpCodes(employees={"jens": "1001"}, jobs={"p1": "1000"}, operations=OPERATIONS,
                            catalogue=CATALOGUE), **changes)


def row(rowid: str = JENS, **values: Any) -> Entry:
    """A time row as ``GET /v2/entries`` returns it, as the connector hands it to the export."""
    return to_entry({"rowid": rowid, "type": TIME_ROW, "userid": "Jens", "username": "Jens Hansen", "projid": "p1",
            "projectname": "Hansen A/S – Tilbygning/Maling", "actid": "a1", "date": "2026-11-19",
            "hours": "7.5", "spec": "2. sal", "attested": True} | values)


def exported(read_row: Entry, *, version: int = 1, state: str = RowState.EXPORTED,
             missed: int = 0) -> SourceRow:
    """The export-ledger row of a row exported earlier as ``read_row``."""
    sent, why = map_row(read_row, codes(), rules())
    assert sent is not None, why
    return SourceRow(read_row.id, version, read_row.fingerprint, sent, state, read_row.date, missed)


def run(read: list[Entry], known: list[SourceRow] = (), held: dict[str, Any] | None = None, *,
        reconcile: bool = False, erp: ErpCodes | None = None, **rule_changes: Any) -> Plan:
    return plan(read, {r.rowid: r for r in known}, held or {}, erp or codes(), rules(**rule_changes),
                reconcile=reconcile)


def lines(outcome: Plan) -> list[tuple[str, str, int, str, str, str]]:
    """(record, rowid, version, reason, TotalTime, Date) of each line, in order."""
    return [(line.record, line.rowid, line.version, line.reason, line.values["TotalTime"], line.values["Date"])
            for line in outcome.lines]


# --- new rows ------------------------------------------------------------------------------------
def test_a_new_attested_row_gives_a_time_and_a_job_line_with_the_erp_codes() -> None:
    outcome = run([row()])

    [time_line, job_line] = outcome.lines
    assert (time_line.record, job_line.record) == (TIME, JOB)
    assert time_line.values == {"EmployeeCode": "1001", "Name": "Jens Hansen", "Date": "2026-11-19",
                                "WorkTypeCode": "STD", "TotalTime": "7.5", "Type": "Normal", "Transfered": 0,
                                "Remark": "2. sal"}
    assert job_line.values == {"EmployeeCode": "1001", "Date": "2026-11-19", "Name": "Jens Hansen",
                               "JobCode": "1000", "OperationCode": "PAINT", "JobOperationLineNumber": "10",
                               "OperationDescription": "Maling", "Completed": 0, "WorkTypeCode": "STD",
                               "TotalTime": "7.5", "ERPReference": "ERP-10"}
    assert {(line.rowid, line.version, line.reason) for line in outcome.lines} == {(JENS, 1, "new")}
    [ledger] = outcome.rows
    assert (ledger.rowid, ledger.version, ledger.state, ledger.date) == (JENS, 1, RowState.EXPORTED, "2026-11-19")
    assert ledger.fingerprint == row().fingerprint and ledger.sent == {TIME: time_line.values, JOB: job_line.values}
    assert outcome.hold == {} and outcome.guard is None and outcome.pending == []


def test_the_operation_description_is_the_activitys_own_name_else_the_erp_description() -> None:
    assert map_row(row(), codes(), rules())[0][JOB]["OperationDescription"] == "Maling"  # type: ignore[index]
    assert map_row(row(actid="a2"), codes(), rules())[0][JOB]["OperationDescription"] == "Overarbejde"  # type: ignore[index]


def test_an_overtime_activity_gives_type_extra_and_its_mapped_work_type() -> None:
    [time_line, job_line] = run([row(actid="a2")]).lines
    assert (time_line.values["Type"], time_line.values["WorkTypeCode"]) == ("Extra", "OVERTIME1")
    assert (job_line.values["OperationCode"], job_line.values["WorkTypeCode"]) == ("OT", "OVERTIME1")


def test_an_absence_project_gives_a_time_ledger_line_only() -> None:
    """A project whose number is in TICTAC_ABSENCE_PROJECTS needs no job or operation in the ERP."""
    outcome = run([row(projid="p9", actid="a9", projectname="Ferie", hours="7.4")])

    [time_line] = outcome.lines
    assert time_line.record == TIME
    assert (time_line.values["Type"], time_line.values["TotalTime"]) == ("Absence", "7.4")
    assert outcome.rows[0].sent == {TIME: time_line.values, JOB: None}


def test_an_unattested_new_row_is_counted_not_exported_unless_every_row_is_exported() -> None:
    outcome = run([row(attested=False)])
    assert outcome.lines == [] and outcome.rows == [] and outcome.counts == {"not_attested": 1}

    anyway = run([row(attested=False)], attested_only=False)
    assert lines(anyway) == [(TIME, JENS, 1, "new", "7.5", "2026-11-19"), (JOB, JENS, 1, "new", "7.5", "2026-11-19")]


@pytest.mark.parametrize("attested", ["true", "1", 1, True, "TRUE"])
def test_attested_is_read_as_tictac_may_send_it(attested: Any) -> None:
    assert len(run([row(attested=attested)]).lines) == 2


def test_rows_that_are_not_time_rows_are_left_out_and_counted_by_type() -> None:
    others = [row(str(2000000000000 + n), type="TicTacMileage") for n in range(LEFT_OUT_NAMED + 5)]
    outcome = run([*others, row(type=""), row(rowid="")])

    assert outcome.lines == [] and outcome.rows == []
    assert outcome.counts == {"left_out_TicTacMileage": LEFT_OUT_NAMED + 5, "left_out_(no type)": 1}
    assert len(outcome.left_out["TicTacMileage"]) == LEFT_OUT_NAMED  # the count is exact, the names capped
    assert outcome.left_out["(no type)"] == [JENS]
    assert outcome.notes == ["Tic-Tac returned a row without a row id; it was left out"]


# --- changes ---------------------------------------------------------------------------------------
def test_an_unchanged_exported_row_gives_nothing() -> None:
    outcome = run([row()], [exported(row())])
    assert outcome.lines == [] and outcome.rows == [] and outcome.hold == {}


def test_a_changed_row_gives_a_reversal_of_what_was_sent_and_a_repost() -> None:
    earlier = exported(row(), version=2)
    outcome = run([row(hours="6", spec="3. sal")], [earlier])

    assert lines(outcome) == [
        (TIME, JENS, 2, "changed: reversal", "-7.5", "2026-11-19"),
        (JOB, JENS, 2, "changed: reversal", "-7.5", "2026-11-19"),
        (TIME, JENS, 3, "changed: repost", "6", "2026-11-19"),
        (JOB, JENS, 3, "changed: repost", "6", "2026-11-19"),
    ]
    assert outcome.lines[0].values["Remark"] == "2. sal" and outcome.lines[2].values["Remark"] == "3. sal"
    [ledger] = outcome.rows
    assert (ledger.version, ledger.state, ledger.fingerprint) == (3, RowState.EXPORTED,
                                                             row(hours="6", spec="3. sal").fingerprint)
    assert ledger.sent[TIME]["TotalTime"] == "6"


def test_only_the_values_that_matter_make_a_change() -> None:
    """The same hours written differently, or a changed project name, are no correction."""
    earlier = exported(row())
    assert run([row(hours="7.50", projectname="Hansen A/S (renamed)")], [earlier]).lines == []
    assert run([row(hours=7.5)], [earlier]).lines == []
    assert len(run([row(date="2026-11-20")], [earlier]).lines) == 4


def test_correction_lines_carry_the_run_date_when_configured_and_new_lines_their_own() -> None:
    outcome = run([row(hours="6"), row(OLE, userid="jens")], [exported(row())], correction_date="2026-12-01")
    assert [(line.rowid, line.reason, line.values["Date"]) for line in outcome.lines if line.record == TIME] == [
        (JENS, "changed: reversal", "2026-12-01"), (JENS, "changed: repost", "2026-12-01"),
        (OLE, "new", "2026-11-19")]


def test_a_change_that_cannot_be_mapped_reverses_and_holds_the_row() -> None:
    outcome = run([row(projid="p7", projectname="Ny hal")], [exported(row())])

    assert [line.reason for line in outcome.lines] == ["changed: reversal"] * 2
    [ledger] = outcome.rows
    assert ledger.state == RowState.REVERSED and ledger.version == 1
    assert "project Ny hal (p7) is not linked to an ERP job" in outcome.hold[JENS][1]


def test_a_reversed_row_that_comes_back_is_exported_as_a_new_version() -> None:
    outcome = run([row()], [exported(row(), version=2, state=RowState.REVERSED)])
    assert lines(outcome)[0] == (TIME, JENS, 3, "new", "7.5", "2026-11-19")
    assert outcome.rows[0].state == RowState.EXPORTED


# --- un-attested again: pending ------------------------------------------------------------------------
def test_a_row_unattested_after_export_is_pending_and_writes_nothing() -> None:
    outcome = run([row(attested=False)], [exported(row())])
    assert outcome.lines == [] and outcome.pending == [JENS]
    [ledger] = outcome.rows
    assert ledger.state == RowState.PENDING and ledger.sent == exported(row()).sent


def test_a_pending_row_attested_again_unchanged_is_exported_again_without_a_line() -> None:
    outcome = run([row()], [exported(row(), state=RowState.PENDING)])
    assert outcome.lines == [] and [r.state for r in outcome.rows] == [RowState.EXPORTED]


def test_a_pending_row_attested_again_changed_is_corrected() -> None:
    outcome = run([row(hours="8")], [exported(row(), state=RowState.PENDING)])
    assert [(line.reason, line.values["TotalTime"]) for line in outcome.lines if line.record == TIME] == [
        ("changed: reversal", "-7.5"), ("changed: repost", "8")]


def test_a_pending_row_still_unattested_stays_pending_without_a_new_write() -> None:
    outcome = run([row(attested=False)], [exported(row(), state=RowState.PENDING)])
    assert outcome.lines == [] and outcome.rows == [] and outcome.pending == []


# --- zero hours and unreadable values -------------------------------------------------------------------
def test_a_zeroed_row_is_reversed_and_a_new_zero_row_is_only_counted() -> None:
    outcome = run([row(hours="0"), row(OLE, hours="0.00")], [exported(row())])
    assert lines(outcome) == [(TIME, JENS, 1, "zeroed: reversal", "-7.5", "2026-11-19"),
                              (JOB, JENS, 1, "zeroed: reversal", "-7.5", "2026-11-19")]
    assert [(r.rowid, r.state) for r in outcome.rows] == [(JENS, RowState.REVERSED)]
    assert outcome.counts == {"zero_hours": 1}


@pytest.mark.parametrize(("values", "words"), [
    ({"hours": "7,5"}, "hours '7,5' is not a number"),
    ({"hours": None}, "hours None is not a number"),
    ({"hours": "NaN"}, "hours 'NaN' is not a number"),
    ({"attested": "maybe"}, "attested 'maybe' is neither true nor false"),
])
def test_a_value_that_cannot_be_read_holds_the_row_never_guesses(values: dict[str, Any], words: str) -> None:
    outcome = run([row(**values)], [exported(row())])
    assert outcome.lines == [] and outcome.rows == []
    held_row, reason = outcome.hold[JENS]
    assert words in reason and held_row == row(**values)


# --- held rows ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("values", "words"), [
    ({"userid": "Ukendt"}, "user Ukendt is not linked to an ERP employee and has no employee number"),
    ({"projid": "p5", "projectname": "Uden nummer"}, "project Uden nummer (p5) is not linked to an ERP job"),
    ({"actid": "a7"}, "activity Hansen A/S – Tilbygning/Maling (a7) of job 1000 is not linked to an ERP "
                      "operation"),
])
def test_a_row_of_an_unknown_user_project_or_activity_is_held_saying_why(values: dict[str, Any],
                                                                         words: str) -> None:
    outcome = run([row(**values)])
    assert outcome.lines == [] and outcome.rows == []
    assert list(outcome.hold) == [JENS] and words in outcome.hold[JENS][1]


def test_a_held_row_that_can_be_mapped_now_is_exported_and_released() -> None:
    waiting = row(userid="ole")
    held = {JENS: (waiting, "user ole is not linked")}
    still = run([], held=held)
    assert still.lines == [] and list(still.hold) == [JENS] and still.release == set()

    now_linked = run([], held=held, erp=codes(employees={"jens": "1001", "ole": "1002"}))
    assert {line.values["EmployeeCode"] for line in now_linked.lines} == {"1002"}
    assert now_linked.release == {JENS} and now_linked.hold == {}


def test_a_held_row_read_again_is_judged_by_what_was_read() -> None:
    held = {JENS: (row(userid="ole"), "user ole is not linked")}
    outcome = run([row()], held=held)  # corrected in Tic-Tac meanwhile
    assert outcome.lines[0].values["EmployeeCode"] == "1001" and outcome.release == {JENS}


def test_a_held_row_dated_outside_the_window_is_released_as_final() -> None:
    held = {JENS: (row(userid="ole", date="2026-09-30"), "user ole is not linked"),
            OLE: (row(OLE, userid="ole", date="2026-10-01"), "user ole is not linked")}
    outcome = run([], held=held)
    assert outcome.release == {JENS} and outcome.counts == {"held_left_window": 1}
    assert list(outcome.hold) == [OLE]


def test_users_and_projects_made_by_hand_are_linked_by_their_numbers() -> None:
    catalogue = replace(CATALOGUE, project_numbers={"p1": "1000", "p3": "1003"},
                        user_numbers={"jens": "1001", "ole": "1002"})
    erp, links = link_by_number({"jens": "1001"}, {"p1": "1000"}, OPERATIONS, catalogue, target="Tic-Tac")
    assert (links.users, links.projects) == ({"1002": "ole"}, {"1003": "p3"})
    assert erp.employees["ole"] == "1002" and erp.jobs["p3"] == "1003"


def test_a_number_held_twice_or_taken_already_links_nothing_and_the_rows_say_why() -> None:
    catalogue = replace(CATALOGUE, user_numbers={"jens": "1001", "ole": "1002", "per": "1002", "kim": "1001"})
    erp, links = link_by_number({"jens": "1001"}, {"p1": "1000"}, OPERATIONS, catalogue, target="Tic-Tac")
    assert links.users == {}
    outcome = run([row(userid="Per"), row(OLE, userid="kim")], erp=erp)
    assert outcome.lines == []
    assert outcome.hold[JENS][1] == "users ole and per all have employee number 1002 in Tic-Tac: give each its own"
    assert outcome.hold[OLE][1] == ("user kim has employee number 1001, which is linked to user jens: correct the "
                                    "employee number")


# --- the daily reconcile: deletions --------------------------------------------------------------------
def test_a_row_missing_from_one_reconcile_is_counted_and_from_two_reversed() -> None:
    present = exported(row(OLE, userid="jens"))
    first = run([row(OLE, userid="jens")], [exported(row()), present], reconcile=True)
    assert first.lines == [] and first.rows == [] and first.missed == {JENS: 1}

    second = run([row(OLE, userid="jens")], [exported(row(), missed=1), present], reconcile=True)
    assert lines(second) == [(TIME, JENS, 1, "deleted: reversal", "-7.5", "2026-11-19"),
                             (JOB, JENS, 1, "deleted: reversal", "-7.5", "2026-11-19")]
    assert [(r.rowid, r.state, r.missed) for r in second.rows] == [(JENS, RowState.REVERSED, 0)]


def test_a_missing_row_outside_a_reconcile_is_not_a_deletion() -> None:
    outcome = run([row(OLE)], [exported(row(), missed=1), exported(row(OLE))], reconcile=False)
    assert outcome.lines == [] and outcome.rows == [] and outcome.missed == {}


def test_a_row_present_again_resets_its_count_of_missed_reconciles() -> None:
    outcome = run([row(), row(OLE)], [exported(row(), missed=1), exported(row(OLE))], reconcile=True)
    assert outcome.lines == [] and outcome.missed == {}
    assert [(r.rowid, r.state, r.missed) for r in outcome.rows] == [(JENS, RowState.EXPORTED, 0)]
    # a pending row (still un-attested) is not rewritten: only its counter is reset
    pending = run([row(attested=False), row(OLE)], [exported(row(), state=RowState.PENDING, missed=1),
                                                   exported(row(OLE))], reconcile=True)
    assert pending.lines == [] and pending.rows == [] and pending.missed == {JENS: 0}


def test_a_pending_row_that_disappears_is_reversed_and_a_reversed_one_is_left_alone() -> None:
    known = [exported(row(), state=RowState.PENDING, missed=1),
             exported(row(OLE), state=RowState.REVERSED, missed=1),
             exported(row("1000000000003"))]
    outcome = run([row("1000000000003")], known, reconcile=True, max_loss_percent=100)
    assert {line.rowid for line in outcome.lines} == {JENS}
    assert [(r.rowid, r.state) for r in outcome.rows] == [(JENS, RowState.REVERSED)]


def test_rows_dated_outside_the_window_are_final_and_never_reversed() -> None:
    old = exported(row(date="2026-09-30"), missed=1)
    outcome = run([row(OLE)], [old, exported(row(OLE))], reconcile=True)
    assert outcome.lines == [] and outcome.missed == {} and outcome.guard is None


@pytest.mark.parametrize("read", [[], [row("1000000000009", type="TicTacMileage")]])
def test_a_reconcile_that_returns_nothing_reverses_nothing(read: list[dict[str, Any]]) -> None:
    outcome = run(read, [exported(row(), missed=1)], reconcile=True)
    if read:  # a row was returned (of another type), so this is a loss of 1 of 1
        assert "did not return 1 of the 1 exported rows" in (outcome.guard or "")
    else:
        assert "returned no rows although 1 exported rows are inside the window" in (outcome.guard or "")
    assert outcome.lines == [] and outcome.rows == [] and outcome.missed == {}


def test_a_reconcile_that_loses_more_than_the_limit_reverses_nothing() -> None:
    known = [exported(row(str(1000000000100 + n))) for n in range(10)]
    read = [row(str(1000000000100 + n)) for n in range(4)]  # 6 of 10 missing: over 50 %
    outcome = run(read, [replace(k, missed=1) for k in known], reconcile=True)
    assert "did not return 6 of the 10 exported rows" in (outcome.guard or "")
    assert outcome.lines == [] and outcome.missed == {}

    within = run(read, [replace(k, missed=1) for k in known], reconcile=True, max_loss_percent=60)
    assert within.guard is None and len(within.lines) == 12  # 6 rows reversed, a time and a job line each


def test_a_reconcile_releases_held_rows_tictac_no_longer_returns() -> None:
    held = {JENS: (row(userid="ole"), "user ole is not linked"), OLE: (row(OLE, userid="ole"), "user ole …")}
    outcome = run([row(OLE, userid="ole")], held=held, reconcile=True)
    assert outcome.release == {JENS} and OLE in outcome.hold  # the release is applied after the holds
    assert run([row(OLE, userid="ole")], held=held, reconcile=False).release == set()


# --- the line values themselves -------------------------------------------------------------------------
@pytest.mark.parametrize(("hours", "shown", "reversed_shown"), [
    ("7.5", "7.5", "-7.5"), ("8.000", "8", "-8"), ("0.25", "0.25", "-0.25"), ("1E+1", "10", "-10"),
])
def test_hours_are_written_as_plain_decimals(hours: str, shown: str, reversed_shown: str) -> None:
    [time_line, _] = run([row(hours=hours)]).lines
    assert time_line.values["TotalTime"] == shown
    undone = run([row(hours="1")], [exported(row(hours=hours))]).lines[0]
    assert undone.values["TotalTime"] == reversed_shown
    assert Decimal(undone.values["TotalTime"]) == -Decimal(hours)
