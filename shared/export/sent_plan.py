"""Entries → ledger lines for a target without a transferred flag (Tic-Tac): classify what one read
returned against the export ledger (new, changed, un-attested, zeroed, deleted, held, left out) and
build the lines with the ERP's codes.

Host-free and call-free: the source (``sent_ledger.py``) reads the target and the tables and hands
everything to :func:`plan`, as neutral entries (:class:`shared.targets.base.Entry`, made by the
target's connector); what comes back is the whole outcome of the run — the lines of the file and
every export-ledger write — so it can be staged in the manifest and recorded after the file.

Line values are keyed by the SmartTID dataset columns (``shared/export/ledger_format.py``), so the
renderer is the SmartTID export's. The ID column is filled in by the exporter from TimeBridge's own
line sequence. What comes from where (design note §2.2; Tic-Tac's field names in brackets):

* EmployeeCode — the link of the entry's user [``userid``] (a user linked to an ERP employee), else
  the user's employee number from the last user list (a user made by hand: the link is recorded);
* JobCode — the link of the project [``projid``], else its project number from the last project
  list (likewise recorded); OperationCode, JobOperationLineNumber, ERPReference — the link of the
  activity [``actid``] (the ERP values the target cannot hold);
* Name — the person's name [``username``]; Date [``date``]; TotalTime [``hours``]; Remark (time
  ledger) [``spec``]; OperationDescription — the activity's own name (the project list, else the ERP
  description kept in the link; never cut out of the project's name: "Hansen A/S – Tilbygning/Montage"
  holds a "/" of its own);
* WorkTypeCode — the rules' work types of the activity's type (from the project list); Type —
  ``Absence`` on an absence project, ``Extra`` for an OVERTIME activity, else ``Normal``;
  Transfered — 0; every other column empty.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from typing import Any

from shared.export.source_ledger import Catalogue, RowState, SourceRow
from shared.platform.safe_text import visible
from shared.targets.base import Entry, EntryRules

TIME, JOB = "time", "job"
#: At most this many row ids per type are named in a receipt's ``left_out`` (the count is exact).
LEFT_OUT_NAMED = 200


@dataclass(frozen=True)
class ErpCodes:
    """The links, read once per run: the target's id → ERP code."""

    employees: Mapping[str, str]  # user (as the target keys it: Tic-Tac's userName case-folded) → employee code
    jobs: Mapping[str, str]  # projid → job code
    operations: Mapping[str, Mapping[str, str]]  # actid → sJobCode, nLineNumber, sOperationCode, sERPReference
    catalogue: Catalogue = field(default_factory=Catalogue)
    #: why a user / project the lists know cannot be linked by its number (userName folded / projid → why)
    unlinked: Mapping[str, str] = field(default_factory=dict)

    def needs_catalogue(self, entry: Entry) -> bool:
        """Whether the lists would tell more about ``entry`` (its user's employee number, its project
        number, its activity's type or name)."""
        projid, actid, user = entry.project, entry.activity, entry.user_key
        return ((projid not in self.jobs and projid not in self.catalogue.project_numbers)
                or (user not in self.employees and user not in self.catalogue.user_numbers)
                or actid not in self.catalogue.activity_types)


@dataclass(frozen=True)
class Links:
    """The links the export made by number (users and projects made by hand), to be recorded."""

    users: dict[str, str] = field(default_factory=dict)  # employee code → userName
    projects: dict[str, str] = field(default_factory=dict)  # job code → projid


def link_by_number(employees: Mapping[str, str], jobs: Mapping[str, str],
                   operations: Mapping[str, Mapping[str, str]], catalogue: Catalogue,
                   target: str) -> tuple[ErpCodes, Links]:
    """The cross-references (``employees``, ``jobs``, ``operations``) completed from the lists: a user
    with an ``employeeNumber`` and a project with a ``projectNumber`` no cross-reference names are
    linked by it — unless another user / project carries the same number or the code is linked to
    another one already (then its rows are held, saying so)."""
    unlinked: dict[str, str] = {}
    users = _by_number(employees, catalogue.user_numbers, "user", "employee number", unlinked, target)
    projects = _by_number(jobs, catalogue.project_numbers, "project", "project number", unlinked, target)
    codes = ErpCodes({**employees, **{name: code for code, name in users.items()}},
                     {**jobs, **{projid: code for code, projid in projects.items()}}, operations, catalogue, unlinked)
    return codes, Links(users, projects)


def _by_number(linked: Mapping[str, str], numbers: Mapping[str, str], noun: str, number_word: str,
               unlinked: dict[str, str], target: str) -> dict[str, str]:
    """ERP code → the target's id for the ids ``linked`` (id → code) does not know whose number in
    ``numbers`` (id → number) is theirs alone; why the others cannot be linked goes to ``unlinked``."""
    owner = {code: remote for remote, code in linked.items()}
    holders: dict[str, list[str]] = {}
    for remote, number in numbers.items():
        if number and remote not in linked:
            holders.setdefault(number, []).append(remote)
    found: dict[str, str] = {}
    for number, remotes in holders.items():
        if len(remotes) > 1:
            names = " and ".join(sorted(visible(remote) for remote in remotes))
            for remote in remotes:
                unlinked[remote] = (f"{noun}s {names} all have {number_word} {visible(number)} in {target}: give "
                                    "each its own")
        elif number in owner:
            unlinked[remotes[0]] = (f"{noun} {visible(remotes[0])} has {number_word} {visible(number)}, which is "
                                    f"linked to {noun} {visible(owner[number])}: correct the {number_word}")
        else:
            found[number] = remotes[0]
    return found


@dataclass(frozen=True)
class Rules:
    """What shapes the lines: the target's rules, and this run's window and correction date."""

    own: EntryRules  # the target's (its settings)
    correction_date: str | None  # None: the registration's own date; else this ISO date
    window: tuple[date, date]
    #: the target's name, for messages
    target: str


@dataclass
class Line:
    record: str  # TIME | JOB
    values: dict[str, Any]
    rowid: str
    version: int
    reason: str


@dataclass
class Plan:
    lines: list[Line] = field(default_factory=list)
    rows: list[SourceRow] = field(default_factory=list)  # export-ledger rows to write
    hold: dict[str, tuple[Entry, str]] = field(default_factory=dict)
    release: set[str] = field(default_factory=set)
    missed: dict[str, int] = field(default_factory=dict)
    pending: list[str] = field(default_factory=list)
    left_out: dict[str, list[str]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    guard: str | None = None
    notes: list[str] = field(default_factory=list)

    def count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1


def _decimal_text(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text


def map_row(entry: Entry, codes: ErpCodes, rules: Rules) -> tuple[dict[str, Any] | None, str]:
    """The values of the entry's lines (``{"time": …, "job": … | None}``), or None and why it is held."""
    target = rules.target
    user, employee = entry.user, codes.employees.get(entry.user_key)
    projid, actid, project_name = entry.project, entry.activity, entry.project_name
    operation = codes.operations.get(actid)
    activity_name = codes.catalogue.activity_names.get(actid) or (operation or {}).get("sDescription", "")
    if employee is None:
        return None, codes.unlinked.get(entry.user_key) or (
            f"user {visible(user)} is not linked to an ERP employee and has no employee number in {target}: give "
            f"the user its ERP employee code as employee number in {target}, or import the Employee line")
    job = codes.jobs.get(projid)
    number = job or codes.catalogue.project_numbers.get(projid, "")
    absence = bool(number) and number in rules.own.absence_projects
    if not absence:
        if job is None:
            return None, codes.unlinked.get(projid) or (
                f"project {visible(project_name)} ({projid}) is not linked to an ERP job and has no project number "
                f"in {target}: give it the ERP's job code as project number in {target}, or import the Job line; "
                f"if it is absence, add its project number to {rules.own.absence_setting}")
        if operation is None:
            return None, (f"activity {visible(activity_name or project_name)} ({actid}) of job {visible(job)} is "
                          "not linked to an ERP operation: import the Operation line")
    activity_type = codes.catalogue.activity_types.get(actid, "").upper()
    worktype = rules.own.worktypes.get(activity_type, "")
    hours = _decimal_text(entry.hours or Decimal(0))
    kind = "Absence" if absence else ("Extra" if activity_type == "OVERTIME" else "Normal")
    time = {"EmployeeCode": employee, "Name": entry.person_name, "Date": entry.date,
            "WorkTypeCode": worktype, "TotalTime": hours, "Type": kind, "Transfered": 0,
            "Remark": entry.remark}
    job_line = None
    if not absence and operation is not None:
        job_line = {"EmployeeCode": employee, "Date": entry.date, "Name": entry.person_name,
                    "JobCode": job, "OperationCode": operation.get("sOperationCode", ""),
                    "JobOperationLineNumber": operation.get("nLineNumber", ""),
                    "OperationDescription": activity_name, "Completed": 0, "WorkTypeCode": worktype,
                    "TotalTime": hours, "ERPReference": operation.get("sERPReference", "")}
    return {TIME: time, JOB: job_line}, ""


def _in_window(day: str, rules: Rules) -> bool:
    try:
        moment = date.fromisoformat(day[:10])
    except ValueError:
        return True  # a date we cannot read is never treated as final
    return rules.window[0] <= moment <= rules.window[1]


class _Planner:
    def __init__(self, codes: ErpCodes, rules: Rules) -> None:
        self.codes, self.rules, self.plan = codes, rules, Plan()

    def lines_of(self, sent: Mapping[str, Any], rowid: str, version: int, reason: str, *,
                 negate: bool = False, correction: bool = False) -> None:
        for record in (TIME, JOB):
            values = sent.get(record)
            if not values:
                continue
            values = dict(values)
            if negate:
                values["TotalTime"] = _decimal_text(-Decimal(str(values["TotalTime"])))
            if correction and self.rules.correction_date:
                values["Date"] = self.rules.correction_date
            self.plan.lines.append(Line(record, values, rowid, version, reason))

    def reverse(self, known: SourceRow, why: str) -> SourceRow:
        self.lines_of(known.sent, known.rowid, known.version, f"{why}: reversal", negate=True, correction=True)
        return replace(known, state=RowState.REVERSED, missed=0)

    def row(self, entry: Entry, known: SourceRow | None, was_held: bool) -> None:
        plan, rules, rowid, target = self.plan, self.rules, entry.id, self.rules.target
        hours, attested = entry.hours, entry.attested
        eligible = attested is True or not rules.own.attested_only
        in_erp = known is not None and known.in_erp
        if hours is None:  # never a line with made-up hours: held and named until the target answers a number
            plan.hold[rowid] = (entry, f"hours {visible(entry.hours_text)} is not a number; correct the "
                                       f"registration in {target}")
            return
        if attested is None and rules.own.attested_only:  # never a guess whether hours were approved
            plan.hold[rowid] = (entry, f"attested {visible(entry.attested_text)} is neither true nor false, so "
                                       "whether the hours are approved cannot be told; TimeBridge exports the row "
                                       f"once {target} answers true or false")
            return
        if hours == 0:  # a target may keep a deleted row with no hours (Tic-Tac: quantity 0)
            if in_erp and known is not None:
                plan.rows.append(self.reverse(known, "zeroed"))
            else:
                plan.count("zero_hours")
            if was_held:
                plan.release.add(rowid)
            return
        if not eligible:
            if in_erp and known is not None and known.state == RowState.EXPORTED:
                plan.rows.append(replace(known, state=RowState.PENDING, missed=0))
                plan.pending.append(rowid)
            elif not in_erp:
                plan.count("not_attested")
            if was_held:
                plan.release.add(rowid)
            return
        now_print = entry.fingerprint
        if in_erp and known is not None and known.fingerprint == now_print:
            if known.state == RowState.PENDING or known.missed:
                plan.rows.append(replace(known, state=RowState.EXPORTED, missed=0))
            return
        sent, why_held = map_row(entry, self.codes, rules)
        version = (known.version + 1) if known is not None else 1
        if in_erp and known is not None:
            reversed_row = self.reverse(known, "changed")
            if sent is None:
                plan.rows.append(reversed_row)
                plan.hold[rowid] = (entry, why_held)
                return
            self.lines_of(sent, rowid, version, "changed: repost", correction=True)
        elif sent is None:
            plan.hold[rowid] = (entry, why_held)
            return
        else:
            self.lines_of(sent, rowid, version, "new")
        plan.rows.append(SourceRow(rowid, version, now_print, sent, RowState.EXPORTED, entry.date))
        if was_held:
            plan.release.add(rowid)

    def reconcile(self, present: set[str], known: Mapping[str, SourceRow], held: Mapping[str, object],
                  returned: int, touched: set[str]) -> None:
        """Deletions: a row in the ERP that two consecutive valid reconciles did not return."""
        plan, rules = self.plan, self.rules
        knew = [row for row in known.values() if row.in_erp and _in_window(row.date, rules)]
        absent = [row for row in knew if row.rowid not in present]
        if knew and returned == 0:
            plan.guard = (f"the daily reconcile read returned no rows although {len(knew)} exported rows are "
                          f"inside the window; no reversals were made — check {rules.target} and the API code; the "
                          "next daily reconcile checks again")
        elif knew and len(absent) * 100 > rules.own.max_loss_percent * len(knew):
            plan.guard = (f"the daily reconcile read did not return {len(absent)} of the {len(knew)} exported rows "
                          f"inside the window (more than {rules.own.loss_setting} = "
                          f"{rules.own.max_loss_percent} %); no reversals were made — check {rules.target} (a bulk "
                          "deletion, a changed API code or a cut-off answer); raise the setting if the deletions are "
                          "real")
        if plan.guard is not None:
            return
        for row in knew:
            if row.rowid in touched:
                continue
            if row.rowid in present:
                if row.missed:
                    plan.missed[row.rowid] = 0
            elif row.missed + 1 >= 2:
                plan.rows.append(self.reverse(row, "deleted"))
            else:
                plan.missed[row.rowid] = row.missed + 1
        plan.release |= {rowid for rowid in held if rowid not in present}


def plan(read: Sequence[Entry], known: Mapping[str, SourceRow], held: Mapping[str, tuple[Entry, str]],
         codes: ErpCodes, rules: Rules, *, reconcile: bool) -> Plan:
    """The outcome of one read (see the module docstring). ``known`` holds the ledger rows of every
    row read or held (on a reconcile: every ledger row); ``held`` the entries held so far."""
    planner = _Planner(codes, rules)
    result = planner.plan
    current: dict[str, tuple[Entry, bool]] = {rowid: (entry, True) for rowid, (entry, _) in held.items()}
    present: set[str] = set()
    for entry in read:
        if not entry.id:
            result.notes.append(f"{rules.target} returned a row without a row id; it was left out")
            continue
        present.add(entry.id)
        if not entry.is_time:
            result.left_out.setdefault(entry.kind or "(no type)", []).append(entry.id)
            continue
        current[entry.id] = (entry, entry.id in held)
    for rowid, (entry, was_held) in current.items():
        if was_held and rowid not in present and not _in_window(entry.date, rules):
            result.release.add(rowid)  # dated outside the window: final, no longer listed
            result.count("held_left_window")
            continue
        planner.row(entry, known.get(rowid), was_held)
    if reconcile:
        touched = {row.rowid for row in result.rows}
        planner.reconcile(present, known, held, len(read), touched)
    for kind, rowids in result.left_out.items():
        result.counts[f"left_out_{kind}"] = len(rowids)
        del rowids[LEFT_OUT_NAMED:]
    return result
