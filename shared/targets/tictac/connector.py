"""Tic-Tac Mobile as an import target: the :class:`~shared.targets.base.Connector` the importer uses.

Built from the pieces that know Tic-Tac (``client.py``, the transport and every GUESS about the
API), the ERP ↔ Tic-Tac mapping (``mapping.py``) and the cross-references (``xref.py``):

* **One snapshot per import**: ``GET /v1/users`` and ``GET /v1/projects`` (with their activities),
  read on the first ``list_records`` and kept for the run; activities are read per project only
  when Tic-Tac left them out of the project list (a GUESS, ``fill_activities``).
* **Matching**: users by the cross-reference, else ``employeeNumber`` = sEmployeeCode; projects by
  the cross-reference, else ``projectNumber`` = sJobCode; activities by the cross-reference
  ((sJobCode, nLineNumber) → actid), else — the first time — by name inside the project
  (:meth:`link`: exactly one candidate, otherwise the line is rejected naming them).
* **Diff** only over the fields Tic-Tac holds and can be read back (:meth:`held_fields`), compared
  as Tic-Tac sees them (:meth:`differs`: the joined name, e-mail without case, status as isActive).
* **Writes** return the new remote id; the password in the answer of ``POST /v1/users`` is dropped
  inside :class:`~shared.targets.tictac.client.TicTacClient` and never reaches this module. A write whose
  answer was lost or unreadable (``maybe_applied``) is looked up before it is reported
  (:meth:`_looked_up`, one or two calls added to the plan's reservation): found → done; certainly
  absent → "nothing was changed"; otherwise "may or may not have been applied".
* **Links** learned in a run — every match (by employeeNumber / projectNumber, by name, by the
  cross-reference: :meth:`matched`), created objects, Template jobs with their operations — are
  written to the cross-reference table by :meth:`finish` (not in a dry run). Losing the table and
  importing again restores every link.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar

from shared.errors import (
    AllowanceExceededError,
    AmbiguousMatchError,
    ApiRejectedError,
    ApiUnavailableError,
    AuthenticationFailedError,
    CallLimitReachedError,
)
from shared.platform.config import read_settings
from shared.records.layouts import RecordType
from shared.records.record import LineError, Record
from shared.records.values import Value, same_value
from shared.targets.base import ConnectorDefaults, Entry, EntryRules, RemoteRecord
from shared.targets.budget import Allowance, CallBudget
from shared.targets.http import CallCounter
from shared.targets.tictac.client import (
    CALL_COSTS,
    Activity,
    Project,
    TicTacClient,
    User,
    boolean,
    days_changed_within,
)
from shared.targets.tictac.entries import to_entry
from shared.targets.tictac.mapping import (
    HELD_FIELDS,
    UNHELD_FIELDS,
    UserNameRule,
    activity_body,
    activity_changes,
    activity_name,
    activity_names,
    activity_values,
    expand_template,
    is_template,
    match_activity_by_name,
    project_after_create,
    project_changes,
    project_create_body,
    project_is_active,
    project_values,
    same_person_name,
    user_changes,
    user_create_body,
    user_values,
)
from shared.targets.tictac.settings import TicTacSettings
from shared.targets.tictac.xref import (
    CrossRef,
    CrossRefs,
    Entity,
    LinkedBy,
    erp_key,
    job_values,
    key_text,
    operation_values,
)

log = logging.getLogger(__name__)

TARGET = "tictac"  # the cross-reference partition prefix
_Found = TypeVar("_Found")

#: Fields the diff compares (held *and* readable): the phone number is sent on create but Tic-Tac
#: does not return it (TT:111-134), so it cannot be compared; sJobTemplate only matters on create.
_DIFFED: dict[RecordType, frozenset[str]] = {
    RecordType.EMPLOYEE: frozenset({"sEmployeeCode", "sName", "sEmail", "sDepartmentCode"}),
    RecordType.JOB: frozenset({"sJobCode", "sJobDescription", "sJobDescription2", "sStatus"}),
    RecordType.OPERATION: frozenset({"sJobCode", "nLineNumber", "sDescription", "bOperationCompleted"}),
}

#: The most calls one write takes (the plan reserves these before writing, and hands back what a
#: write did not use as soon as its round of writes is done); :meth:`TicTacConnector.write_cost`
#: leaves out the calls the record's values show it cannot need.
WRITE_COSTS: dict[tuple[RecordType, bool], int] = {
    (RecordType.EMPLOYEE, True): CALL_COSTS["create_user_read_back"] + CALL_COSTS["update_user"],  # + department
    (RecordType.EMPLOYEE, False): CALL_COSTS["update_user"],
    (RecordType.JOB, True): CALL_COSTS["create_project"] + CALL_COSTS["update_project"],  # + deactivation
    (RecordType.JOB, False): CALL_COSTS["update_project"],
    (RecordType.OPERATION, True): CALL_COSTS["create_activity"],
    (RecordType.OPERATION, False): CALL_COSTS["update_activity"],
}
#: Calls a look-up after a write with a lost answer takes at most (reserved when it is needed).
LOOK_UP_COSTS: dict[RecordType, int] = {RecordType.EMPLOYEE: 3, RecordType.JOB: 1, RecordType.OPERATION: 1}
_ENTITY_OF = {RecordType.EMPLOYEE: Entity.USER, RecordType.JOB: Entity.PROJECT, RecordType.OPERATION: Entity.ACTIVITY}


def _line_value(text: str) -> Value:
    """A line number from the cross-reference as the file's parser gives it (an int)."""
    try:
        return int(text)
    except ValueError:
        return Decimal(text)


class TicTacConnector(ConnectorDefaults):
    """Tic-Tac users / projects / activities in the importer's vocabulary (see the module docstring)."""

    codes_case_insensitive = False
    inline_children = True  # a project POST carries its activities (TT:365)

    def __init__(self, client: TicTacClient, xrefs: CrossRefs | None, *, user_names: UserNameRule | None = None,
                 send_national_id: bool = False, budget: CallBudget | None = None,
                 settings: TicTacSettings | None = None) -> None:
        self.client = client
        #: Tic-Tac's own settings (the export's rules); None: read from the app settings when needed
        self.settings = settings
        #: the shared rolling 24-hour budget; with one, no call is made outside a reservation
        self.budget = budget
        self._allowance: Allowance | None = None
        if budget is not None:
            client.before_call = _no_reservation
        self.xrefs = xrefs
        self.calls: CallCounter = client.calls
        self.user_names = user_names or UserNameRule()
        self.send_national_id = send_national_id
        self._loaded = False
        self._users: dict[str, User] = {}
        self._projects: dict[str, Project] = {}
        self._activities: dict[str, Activity] = {}
        self._refs: dict[Entity, dict[tuple[str, ...], CrossRef]] = {}
        self._project_of_job: dict[str, str] = {}  # job code → projid (xref first, then projectNumber)
        self._templates: dict[str, CrossRef] = {}
        self._pending: dict[tuple[Entity, tuple[str, ...]], CrossRef] = {}
        #: codes more than one user / project carries: such a line is rejected naming them, never linked
        self._ambiguous: dict[tuple[RecordType, str], list[str]] = {}

    # --- the snapshot -----------------------------------------------------------------------------
    def _load(self) -> None:
        if self._loaded:
            return
        for entity in (Entity.USER, Entity.PROJECT, Entity.ACTIVITY, Entity.TEMPLATE):
            self._refs[entity] = self.xrefs.load(TARGET, entity) if self.xrefs else {}
        self._templates = {key[0]: ref for key, ref in self._refs[Entity.TEMPLATE].items()}
        self._users = {user.user_name: user for user in self.client.list_users()}
        self._projects = {project.project_id: project for project in self.client.list_projects()}
        by_number: dict[str, list[str]] = {}
        for project in self._projects.values():
            if project.project_number:
                by_number.setdefault(project.project_number, []).append(project.project_id)
        self._project_of_job = {number: ids[0] for number, ids in by_number.items() if len(ids) == 1}
        for number, ids in by_number.items():
            if len(ids) > 1:
                self._ambiguous[(RecordType.JOB, number)] = [f"{self._projects[i].name} ({i})" for i in ids]
        for key, ref in self._refs[Entity.PROJECT].items():
            if ref.remote_id in self._projects:
                self._project_of_job[key[0]] = ref.remote_id
        self._loaded = True

    def read_cost(self, record_type: RecordType, *, job_code: str | None = None) -> int:
        if not self._loaded:
            return CALL_COSTS["list_users"] + CALL_COSTS["list_projects"] + (record_type is RecordType.OPERATION)
        if record_type is RecordType.OPERATION:
            projid = self._project_of_job.get(job_code or "")
            return int(projid is not None and self._projects[projid].activities is None)
        return 0

    # --- the call budget --------------------------------------------------------------------------
    def remaining_calls(self) -> int | None:
        return None if self.budget is None else self.budget.remaining()

    def reserve(self, calls: int) -> bool:
        if self.budget is None:
            return True
        self.settle()
        reservation = self.budget.reserve(calls)
        if reservation is None:
            return False
        self._allowance = Allowance(reservation)
        self.client.before_call = self._allowance.take
        return True

    def settle(self) -> None:
        if self.budget is not None and self._allowance is not None:
            self.client.before_call = _no_reservation
            allowance, self._allowance = self._allowance, None
            self.budget.release(allowance)

    def _top_up(self, calls: int) -> bool:
        """``calls`` more for the current plan (a look-up the plan could not foresee); False when the
        shared budget has no room for them now."""
        if self.budget is None:
            return True
        allowance = self._allowance
        reservation = self.budget.reserve(calls) if allowance is not None else None
        if allowance is None or reservation is None:
            return False
        allowance.add(reservation)
        return True

    def block_until(self, moment: datetime) -> None:
        if self.budget is not None:
            self.budget.block_until(moment)

    def next_free_at(self, calls: int) -> datetime | None:
        if self.budget is None:
            return None
        return self.budget.next_free_at(max(1, min(calls, self.budget.limit)))

    def list_records(self, record_type: RecordType, *, job_code: str | None = None) -> list[RemoteRecord]:
        self._load()
        if record_type is RecordType.EMPLOYEE:
            return self._user_records()
        if record_type is RecordType.JOB:
            return self._project_records()
        return self._activity_records(job_code or "")

    def each_record(self, record_type: RecordType) -> Iterator[RemoteRecord]:
        return iter(self.list_records(record_type))  # read whole in any case (users, projects, links)

    def _user_records(self) -> list[RemoteRecord]:
        linked = {ref.remote_id.casefold(): key[0] for key, ref in self._refs[Entity.USER].items()}
        records: list[RemoteRecord] = []
        holders: dict[str, list[str]] = {}
        for user in self._users.values():
            values = user_values(user)
            values.pop("sEmployeeCode", None)
            code = linked.get(user.user_name.casefold()) or user.employee_number
            if code:
                values["sEmployeeCode"] = code
                holders.setdefault(code, []).append(user.user_name)
            by = "cross-reference" if user.user_name.casefold() in linked else ""
            records.append(RemoteRecord(user.user_name, values, matched_by=by))
        for code, names in holders.items():
            if len(names) > 1:
                self._ambiguous[(RecordType.EMPLOYEE, code)] = names
        listed = []
        for record in records:  # no code, or one several users carry: listed without a key
            code = str(record.values.get("sEmployeeCode") or "")
            if len(holders.get(code, ())) != 1:
                record.values.pop("sEmployeeCode", None)
                record = replace(record, matched_by="ambiguous") if code else record
            listed.append(record)
        return listed

    def _project_records(self) -> list[RemoteRecord]:
        code_of = {projid: code for code, projid in self._project_of_job.items()}
        linked = {ref.remote_id for ref in self._refs[Entity.PROJECT].values()}
        statuses = {key[0]: ref.erp_values.get("sStatus", "") for key, ref in self._refs[Entity.PROJECT].items()}
        records = []
        for project in self._projects.values():
            code = code_of.get(project.project_id)
            if not code:  # no number, or one several projects carry: listed without a key
                unkeyed = project_values(project)
                unkeyed.pop("sJobCode", None)
                records.append(RemoteRecord(project.project_id, unkeyed,
                                            matched_by="ambiguous" if project.project_number else ""))
                continue
            values = project_values(project) | {"sJobCode": code}
            kept = statuses.get(code, "")
            if project.active is None:  # isActive cannot be read: differs from any status the file gives
                values["sStatus"] = ""
            else:
                values["sStatus"] = kept if project_is_active({"sStatus": kept}) is project.active else (
                    "Started" if project.active else "Completed")
            records.append(RemoteRecord(project.project_id, values,
                                        matched_by="cross-reference" if project.project_id in linked else ""))
        return records

    def _activity_records(self, job_code: str) -> list[RemoteRecord]:
        projid = self._project_of_job.get(job_code)
        if projid is None:
            return []
        project = self._projects[projid]
        if project.activities is None:
            [project] = self.client.fill_activities([project])
            self._projects[projid] = project
        linked = {ref.remote_id: key for key, ref in self._refs[Entity.ACTIVITY].items() if key[0] == job_code}
        records = []
        for activity in project.activities or ():
            activity = replace(activity, project_id=projid)
            self._activities[activity.activity_id] = activity
            values = activity_values(activity)
            key = linked.get(activity.activity_id)
            if key is not None:
                values |= {"sJobCode": job_code, "nLineNumber": _line_value(key[1])}
            records.append(RemoteRecord(activity.activity_id, values,
                                        matched_by="cross-reference" if key is not None else ""))
        return records

    # --- matching and diff ------------------------------------------------------------------------
    def held_fields(self, record_type: RecordType) -> frozenset[str] | None:
        fields = _DIFFED[record_type]
        if record_type is RecordType.EMPLOYEE and self.send_national_id:
            fields = fields | {"sCPRNo"}
        return fields

    def unheld_fields(self, record_type: RecordType) -> tuple[str, ...]:
        return UNHELD_FIELDS[record_type]

    def differs(self, record_type: RecordType, name: str, wanted: Value, stored: Value | None) -> bool:
        if name == "sName":
            first, _, last = str(stored or "").rpartition(" ")
            return not same_person_name(str(wanted), first or last, last)
        if name == "sEmail":
            return str(wanted).strip().casefold() != str(stored or "").strip().casefold()
        if name == "sStatus":
            return project_is_active({"sStatus": wanted}) not in (None, project_is_active({"sStatus": stored or ""}))
        if name == "sDescription" and isinstance(stored, str):  # "Cut (30)": told apart by its line number
            return not same_value(wanted, stored) and not re.fullmatch(re.escape(str(wanted)) + r" \(\d+\)", stored)
        return not same_value(wanted, stored)

    def link(self, record: Record, candidates: Sequence[RemoteRecord]) -> RemoteRecord | None:
        """An operation's first link: the one activity of its project with the same name. A user or
        project whose number several carry is never linked (nor created again): AmbiguousMatchError."""
        if record.record_type is not RecordType.OPERATION:
            code = str(record.key[0])
            names = self._ambiguous.get((record.record_type, code))
            if names:
                what = "users with employee number" if record.record_type is RecordType.EMPLOYEE else \
                    "projects with project number"
                raise AmbiguousMatchError(f"Tic-Tac has {len(names)} {what} {code}: {' and '.join(names)}", names)
            return None
        activities = [self._activities[str(c.id)] for c in candidates if str(c.id) in self._activities]
        name = activity_name(record.values)
        found = match_activity_by_name(activities, name)  # AmbiguousMatchError: rejected
        if found is None:  # created beside another of the same description: "Cut (30)"
            found = match_activity_by_name(activities, f"{name} ({key_text(record.values['nLineNumber'])})")
        if found is None:
            return None
        self._remember(Entity.ACTIVITY, record, found.activity_id, LinkedBy.NAME)
        linked = next(c for c in candidates if str(c.id) == found.activity_id)
        key = {name: record.values[name] for name in ("sJobCode", "nLineNumber")}
        return RemoteRecord(linked.id, linked.values | key, matched_by="name")

    def write_cost(self, record_type: RecordType, *, create: bool, values: Mapping[str, Value] | None = None) -> int:
        """The most calls the write takes: without ``values`` the most any such write takes; with them,
        a new user without a department needs no PUT after its POST and a new project that stays
        active no deactivation."""
        cost = WRITE_COSTS[(record_type, create)]
        if create and values is not None:
            if record_type is RecordType.EMPLOYEE and not values.get("sDepartmentCode"):
                cost -= CALL_COSTS["update_user"]
            if record_type is RecordType.JOB and project_is_active(values) is not False:
                cost -= CALL_COSTS["update_project"]
        return cost

    def matched(self, record: Record, remote: RemoteRecord) -> None:
        """``record`` matched ``remote`` (by employeeNumber / projectNumber, by the cross-reference or by
        name): the link is recorded at :meth:`finish` unless the table holds it already."""
        entity = _ENTITY_OF[record.record_type]
        linked_by = LinkedBy.NAME if entity is Entity.ACTIVITY else LinkedBy.NATIVE
        if entity is Entity.ACTIVITY and (entity, erp_key(record.record_type, record.values)) in self._pending:
            return  # linked by name in this run (link): already pending
        self._remember(entity, record.values, str(remote.id), linked_by, only_if_new=True)

    def refuse_create(self, record: Record, planned: Sequence[Record]) -> LineError | None:
        """A new job whose sJobTemplate names no Template job TimeBridge knows (from an earlier file
        or this one) is rejected: its project would miss the template's activities."""
        code = str(record.values.get("sJobTemplate") or "")
        if record.record_type is not RecordType.JOB or not code or is_template(record.values):
            return None
        self._load()
        if code in self._templates or any(
                other.record_type is RecordType.JOB and is_template(other.values) and str(other.key[0]) == code
                for other in planned):
            return None
        return LineError(
            record.line, record.record_type, "sJobTemplate (position 7)", code,
            f"job {record.key[0]} does not exist in Tic-Tac yet and is to be created from template {code}, but "
            f"TimeBridge knows no Template job {code} (Template jobs are not created in Tic-Tac; their operations "
            "are kept to become the activities of the jobs created from them)",
            f"import the Template job {code} (a Job line with sStatus Template, and its Operation lines) in an "
            "earlier file or in the same file, or correct sJobTemplate, then upload the rejected lines again")

    def write_first(self, record: Record) -> bool:
        return record.record_type is RecordType.JOB and is_template(record.values)

    # --- writes -----------------------------------------------------------------------------------
    def create(self, record_type: RecordType, values: dict[str, Value]) -> str | None:
        self._load()
        if record_type is RecordType.EMPLOYEE:
            return self._create_user(values)
        if record_type is RecordType.JOB:
            return self._create_project(values)
        return self._create_activity(values)

    def _create_user(self, values: dict[str, Value]) -> str:
        taken = {name.casefold() for name in self._users}
        body = user_create_body(values, user_name=self.user_names.user_name(values, lambda n: n.casefold() in taken),
                                send_national_id=self.send_national_id)
        try:
            created = self.client.create_user(body, read_back=True)
            user = created.user
        except ApiUnavailableError as exc:
            user = self._looked_up(exc, RecordType.EMPLOYEE, lambda: self.client.find_created_user(body),
                                   f"the new user for employee {values['sEmployeeCode']}")
        assert user is not None  # read_back=True
        name = user.user_name
        self._users[name] = user
        self._remember(Entity.USER, values, name, LinkedBy.CREATED)  # linked even if the PUT below fails
        after = user_changes(values, user, send_national_id=self.send_national_id)
        if after:  # department is not a POST field
            self._write_checked(RecordType.EMPLOYEE, lambda: self.client.update_user(name, after),
                                lambda: self._user_fields(name), after, user.fields)
            self._users[name] = User(name, {**user.fields, **after})
        return name

    def create_with_children(self, record_type: RecordType, values: dict[str, Value],
                             children: list[dict[str, Value]]) -> str | None:
        """A new project with its activities in the one POST. Tic-Tac answers only the project id:
        the activities are linked by name (and their cross-references written) by the next import,
        which reads them with the projects anyway."""
        self._load()
        if record_type is not RecordType.JOB or is_template(values):
            projid = self.create(record_type, values)
            for child in children:
                self.create(RecordType.OPERATION, child)
            return projid
        return self._create_project(values, children)

    def _create_project(self, values: dict[str, Value], children: Sequence[dict[str, Value]] = ()) -> str | None:
        code = str(values["sJobCode"])
        if is_template(values):  # never created in Tic-Tac; kept to expand sJobTemplate
            known = self._templates.get(code)  # its operations stay; the file's replace theirs by line number
            self._templates[code] = CrossRef(TARGET, Entity.TEMPLATE, erp_key(RecordType.JOB, values), "",
                                             LinkedBy.NATIVE, job_values(values),
                                             known.template_operations if known else ())
            return None
        children = [*children, *self._from_template(values, children)]
        names = activity_names(children)
        activities = [activity_body(child, name=name) for child, name in zip(children, names, strict=True)]
        try:
            projid = self.client.create_project(project_create_body(values), activities)
        except ApiUnavailableError as exc:
            projid = self._looked_up(exc, RecordType.JOB, lambda: self._project_id_of(code), f"the new project {code}")
        deactivate = project_after_create(values)
        if deactivate:
            self._write_checked(RecordType.JOB, lambda: self.client.update_project(projid, deactivate),
                                lambda: self._project_fields(projid), deactivate, {"isActive": True})
        fields = project_create_body(values) | {"projid": projid, "isActive": project_is_active(values) is not False}
        # activities sent inline have no ids yet: read them should another operation of the job need them
        self._projects[projid] = Project(projid, fields, None if activities else ())
        self._project_of_job[code] = projid
        self._remember(Entity.PROJECT, values, projid, LinkedBy.CREATED)
        return projid

    def _from_template(self, values: dict[str, Value], children: Sequence[dict[str, Value]]) -> list[dict[str, Value]]:
        """The operations of the job's sJobTemplate, as this job's, except the line numbers the file
        gives itself (the file wins)."""
        code = str(values.get("sJobTemplate") or "")
        if not code:
            return []
        template = self._templates.get(code)
        if template is None:  # refuse_create rejects such a line while planning
            raise ApiRejectedError(f"TimeBridge knows no Template job {code} to create job {values['sJobCode']} from")
        given = {key_text(child["nLineNumber"]) for child in children}
        operations: list[dict[str, Value]] = []
        for kept in template.template_operations:
            if kept.get("nLineNumber") in given:
                continue
            operation: dict[str, Value] = dict(kept)
            operation["nLineNumber"] = _line_value(kept["nLineNumber"])
            if "bOperationCompleted" in kept:
                operation["bOperationCompleted"] = kept["bOperationCompleted"] == "1"
            operations.append(operation)
        return expand_template(values, operations)

    def _create_activity(self, values: dict[str, Value]) -> str | None:
        code = str(values["sJobCode"])
        if code in self._templates and code not in self._project_of_job:
            template = self._templates[code]
            operation = {name: key_text(value) for name, value in values.items()}
            kept = [op for op in template.template_operations if op.get("nLineNumber") != operation["nLineNumber"]]
            operations = sorted([*kept, operation], key=lambda op: _line_value(op["nLineNumber"]))
            self._templates[code] = replace(template, template_operations=tuple(operations))
            return None
        projid = self._project_of_job.get(code)
        if projid is None:
            raise ApiRejectedError(f"Tic-Tac has no project for job {code}")
        body = activity_body(values)
        try:
            actid = self.client.create_activity(projid, body)
        except ApiUnavailableError as exc:
            actid = self._looked_up(exc, RecordType.OPERATION, lambda: self._activity_id_named(projid, body["name"]),
                                    f"the new activity {body['name']!r} of job {code}")
        self._activities[actid] = Activity(actid, projid, body)
        self._remember(Entity.ACTIVITY, values, actid, LinkedBy.CREATED)
        return actid

    def update(self, record_type: RecordType, remote_id: int | str, values: dict[str, Value]) -> None:
        self._load()
        remote = str(remote_id)
        if record_type is RecordType.EMPLOYEE:
            user = self._users[remote]
            changes = user_changes(values, user, send_national_id=self.send_national_id)
            if changes:
                self._write_checked(record_type, lambda: self.client.update_user(remote, changes),
                                    lambda: self._user_fields(remote), changes, user.fields)
                self._users[remote] = User(remote, {**user.fields, **changes})
        elif record_type is RecordType.JOB:
            project = self._projects[remote]
            changes = project_changes(values, project)
            if changes:
                self._write_checked(record_type, lambda: self.client.update_project(remote, changes),
                                    lambda: self._project_fields(remote), changes, project.fields)
                self._projects[remote] = Project(remote, {**project.fields, **changes}, project.activities)
            self._remember(Entity.PROJECT, values, remote, LinkedBy.NATIVE, only_if_new=True)
        else:
            activity = self._activities[remote]
            name = None if "sDescription" in values else activity.name
            changes = activity_changes(values, activity, name=name)
            if changes:
                self._write_checked(record_type, lambda: self.client.update_activity(remote, changes),
                                    lambda: self._activity_fields(activity.project_id, remote), changes,
                                    activity.fields)
                self._activities[remote] = Activity(remote, activity.project_id, {**activity.fields, **changes})
            self._remember(Entity.ACTIVITY, values, remote, LinkedBy.NAME, only_if_new=True)

    # --- writes whose answer was lost: looked up before they are reported ---------------------------
    def _looked_up(self, exc: ApiUnavailableError, record_type: RecordType, look: Callable[[], _Found | None],
                   what: str) -> _Found:
        """What ``look`` finds after a create whose answer was lost or unreadable (the create arrived);
        raises :class:`ApiUnavailableError` saying "nothing was changed" when it finds nothing, or
        ``maybe_applied`` when it cannot look (no budget, Tic-Tac failing)."""
        if not exc.maybe_applied or isinstance(exc, AuthenticationFailedError | CallLimitReachedError):
            raise exc
        found = self._look(exc, record_type, look, what)
        if found is None:
            raise ApiUnavailableError(f"{exc}; TimeBridge looked it up: {what} does not exist, so nothing was created",
                                 maybe_applied=False) from None
        log.info("%s: the answer was lost, but the look-up found that it did arrive", what)
        return found

    def _write_checked(self, record_type: RecordType, write: Callable[[], object],
                       read: Callable[[], Mapping[str, Any] | None], changes: Mapping[str, Any],
                       before: Mapping[str, Any]) -> None:
        """An update; when its answer was lost or unreadable, Tic-Tac's object is read again: holding the
        new values → done; still holding the old ones → "nothing was changed"; else it may or may not."""
        try:
            write()
        except ApiUnavailableError as exc:
            if not exc.maybe_applied or isinstance(exc, AuthenticationFailedError | CallLimitReachedError):
                raise
            stored = self._look(exc, record_type, read, "the update")
            if stored is not None and all(_same(stored.get(name), value) for name, value in changes.items()):
                log.info("%s update: the answer was lost, but the look-up found that it did arrive", record_type)
                return
            if stored is not None and all(_same(stored.get(name), before.get(name)) for name in changes):
                raise ApiUnavailableError(f"{exc}; TimeBridge looked it up: Tic-Tac still holds the old values, so "
                                     "nothing was changed", maybe_applied=False) from None
            raise ApiUnavailableError(f"{exc}; the look-up afterwards could not tell whether the update arrived",
                                 maybe_applied=True) from None

    def _look(self, exc: ApiUnavailableError, record_type: RecordType, look: Callable[[], _Found | None],
              what: str) -> _Found | None:
        if not self._top_up(LOOK_UP_COSTS[record_type]):
            raise ApiUnavailableError(
                f"{exc}; TimeBridge could not look up whether {what} arrived (no calls left in the "
                "daily budget for the look-up)", maybe_applied=True) from None
        try:
            return look()
        except CallLimitReachedError:
            raise
        except (ApiUnavailableError, ApiRejectedError, AllowanceExceededError) as failure:
            raise ApiUnavailableError(f"{exc}; looking up whether {what} arrived failed too ({type(failure).__name__})",
                                 maybe_applied=True) from None

    def _user_fields(self, user_name: str) -> Mapping[str, Any] | None:
        user = self.client.get_user(user_name)
        return None if user is None else user.fields

    def _project_fields(self, projid: str) -> Mapping[str, Any] | None:
        project = self.client.get_project(projid)
        return None if project is None else project.fields

    def _activity_fields(self, projid: str | None, actid: str) -> Mapping[str, Any] | None:
        if projid is None:
            return None
        found = [a for a in self.client.list_activities(projid) if a.activity_id == actid]
        return found[0].fields if found else None

    def _project_id_of(self, code: str) -> str | None:
        project = self.client.find_project(code)
        return None if project is None else project.project_id

    def _activity_id_named(self, projid: str, name: str) -> str | None:
        found = match_activity_by_name(self.client.list_activities(projid), name)
        return None if found is None else found.activity_id

    # --- cross-references -------------------------------------------------------------------------
    def _remember(self, entity: Entity, values: Record | dict[str, Value], remote_id: str, linked_by: LinkedBy,
                  *, only_if_new: bool = False) -> None:
        record_values = values.values if isinstance(values, Record) else values
        record_type = {Entity.USER: RecordType.EMPLOYEE, Entity.PROJECT: RecordType.JOB,
                       Entity.ACTIVITY: RecordType.OPERATION}[entity]
        key = erp_key(record_type, record_values)
        known = self._refs.get(entity, {}).get(key)
        if only_if_new and known is not None and known.remote_id == remote_id:
            return
        erp: dict[str, str] = {}
        if entity is Entity.ACTIVITY:
            erp = operation_values(record_values)
        elif entity is Entity.PROJECT:
            erp = job_values(record_values)
        self._pending[(entity, key)] = CrossRef(TARGET, entity, key, remote_id, linked_by, erp)

    def finish(self) -> None:
        refs = list(self._pending.values())
        refs += [ref for code, ref in self._templates.items()
                 if ref.template_operations or code not in {k[0] for k in self._refs.get(Entity.TEMPLATE, {})}]
        if refs and self.xrefs is not None:
            self.xrefs.put_many(refs)
        self._pending.clear()

    # --- the export's ledger source (EntriesLedger) ----------------------------------------------
    @property
    def max_attempts(self) -> int:
        return self.client.max_attempts

    def read_entries(self, start: date, end: date, *, days_changed_within: int | None) -> list[Entry]:
        return [to_entry(entry.fields) for entry in
                self.client.read_entries(start, end, days_changed_within=days_changed_within)]

    def entry(self, raw: Mapping[str, Any]) -> Entry:
        return to_entry(raw)

    def changed_days(self, since: datetime, now: datetime) -> int | None:
        return days_changed_within(since, now)

    def entry_rules(self) -> EntryRules:
        own = self.settings or read_settings(TicTacSettings)
        return EntryRules(
            attested_only=own.export_attested_only, absence_projects=own.absence_projects,
            worktypes=own.worktype_map, lookback_days=own.export_lookback_days,
            forward_days=own.export_forward_days, max_loss_percent=own.reconcile_max_loss_percent,
            absence_setting="TICTAC_ABSENCE_PROJECTS", loss_setting="TICTAC_RECONCILE_MAX_LOSS_PERCENT",
        )

    def entry_links(self) -> tuple[dict[str, str], dict[str, str], dict[str, dict[str, str]]]:
        xrefs = self.xrefs
        users = xrefs.load(TARGET, Entity.USER).values() if xrefs else ()
        projects = xrefs.load(TARGET, Entity.PROJECT).values() if xrefs else ()
        activities = xrefs.load(TARGET, Entity.ACTIVITY).values() if xrefs else ()
        return ({ref.remote_id.casefold(): ref.erp_key[0] for ref in users if ref.remote_id},
                {ref.remote_id: ref.erp_key[0] for ref in projects if ref.remote_id},
                {ref.remote_id: {**ref.erp_values, "sJobCode": ref.erp_key[0], "nLineNumber": ref.erp_key[1]}
                 for ref in activities if ref.remote_id and len(ref.erp_key) == 2})

    def record_entry_links(self, users: Mapping[str, str], projects: Mapping[str, str]) -> None:
        if self.xrefs is None or not (users or projects):
            return
        self.xrefs.put_many([CrossRef(TARGET, Entity.USER, (code,), name, LinkedBy.NATIVE)
                             for code, name in users.items()]
                            + [CrossRef(TARGET, Entity.PROJECT, (code,), projid, LinkedBy.NATIVE)
                               for code, projid in projects.items()])

    def entry_catalogue(self) -> tuple[dict[str, tuple[str, dict[str, str]]], dict[str, dict[str, str]],
                                       dict[str, str]]:
        """One ``GET /v1/projects`` (project numbers, activity types and names — activities the list
        leaves out stay unknown: no call per project) and one ``GET /v1/users`` (employee numbers)."""
        projects: dict[str, tuple[str, dict[str, str]]] = {}
        names: dict[str, dict[str, str]] = {}
        for project in self.client.list_projects():
            types = {act.activity_id: str(act.fields.get("type") or "") for act in project.activities or ()}
            projects[project.project_id] = (project.project_number, types)
            names[project.project_id] = {act.activity_id: act.name for act in project.activities or ()}
        users = {user.user_name.casefold(): user.employee_number for user in self.client.list_users()}
        return projects, names, users

    def close(self) -> None:
        self.settle()
        self.client.close()


def _same(stored: Any, wanted: Any) -> bool:
    """A field as Tic-Tac answered it equals the value TimeBridge sent (booleans read strictly)."""
    if isinstance(wanted, bool):
        return boolean(stored) is wanted
    return str(stored if stored is not None else "") == str(wanted if wanted is not None else "")


def _no_reservation(method: str, path: str) -> None:
    raise AllowanceExceededError(f"{method} {path} was not sent: no call budget is reserved for it")


__all__ = ["HELD_FIELDS", "TicTacConnector"]
