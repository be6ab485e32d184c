"""ERP records in the SmartTID layout ↔ Tic-Tac Mobile users, projects and activities (pure functions).

Input records are ``dict[str, Value]`` keyed by the layout's parameter names (``shared/records/layouts.py``;
only the fields the file supplied are present). Output bodies use Tic-Tac's field names and go to
:class:`shared.targets.tictac.client.TicTacClient`. The mapping (issue 8 item 2, design note §1.2):

=====================  ==============================  ===========================================
ERP (file)             Tic-Tac                         rule
=====================  ==============================  ===========================================
sEmployeeCode          user ``employeeNumber``         the key (exact string)
sName                  ``firstName`` + ``lastName``    "Last, First" or last word = lastName;
                                                       compared as the joined name
sEmail                 ``emailAdress`` (sic)           compared without case
sCellPhone             ``phoneNumber``                 sent on create only (not in GET, TT:111-134)
sDepartmentCode        ``department``                  exact
sCPRNo                 ``nationalIDNumber``            only with ``send_national_id`` (opt-in)
sJobCode               project ``projectNumber``       the key (exact string)
sJobDescription        ``name``
sJobDescription2       ``description``
sStatus                ``isActive``                    Completed/Canceled → false, Planned/Started →
                                                       true, Template → never created
sDescription           activity ``name``               matched by name (trimmed, without case) the
                                                       first time; later through the cross-reference
bOperationCompleted    activity ``isActive``           inverted
=====================  ==============================  ===========================================

Every other field of the file has no place in Tic-Tac: :data:`UNHELD_FIELDS` lists them so a
receipt can name them once, and a diff never looks at them, so they never cause a write.
"""

from __future__ import annotations

import hashlib
import re
import string
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from shared.errors import AmbiguousMatchError
from shared.records.layouts import LAYOUTS, RecordType
from shared.records.values import Value
from shared.targets.tictac.client import Activity, Project, User
from shared.targets.tictac.settings import check_user_name_template

#: ERP fields that have a Tic-Tac home (the key fields included).
HELD_FIELDS: dict[RecordType, tuple[str, ...]] = {
    RecordType.EMPLOYEE: ("sEmployeeCode", "sName", "sCellPhone", "sEmail", "sCPRNo", "sDepartmentCode"),
    RecordType.JOB: ("sJobCode", "sJobDescription", "sJobDescription2", "sStatus", "sJobTemplate"),
    RecordType.OPERATION: ("sJobCode", "nLineNumber", "sDescription", "bOperationCompleted"),
}
#: Operation fields Tic-Tac cannot hold but TimeBridge keeps in the cross-reference table (they
#: come back into the exported ledger lines): not "ignored", so not in :data:`UNHELD_FIELDS`.
KEPT_IN_XREF: dict[RecordType, tuple[str, ...]] = {
    RecordType.EMPLOYEE: (),
    RecordType.JOB: (),
    RecordType.OPERATION: ("sOperationCode", "sERPReference"),
}
#: ERP fields Tic-Tac has no place for, in layout order (sDepartmentName is the companion of
#: sDepartmentCode, which is written; the name itself is not).
UNHELD_FIELDS: dict[RecordType, tuple[str, ...]] = {
    record_type: tuple(spec.name for spec in layout.fields
                       if spec.name not in HELD_FIELDS[record_type] and spec.name not in KEPT_IN_XREF[record_type])
    for record_type, layout in LAYOUTS.items()
}
ACTIVE_STATUSES = frozenset({"Planned", "Started"})
INACTIVE_STATUSES = frozenset({"Completed", "Canceled"})
TEMPLATE_STATUS = "Template"
#: Tic-Tac-owned project/activity fields echoed from the snapshot in a PUT, so that a PUT which
#: blanks the fields it does not carry (sandbox switch ``partial_put=replace``) keeps them. Never
#: ``priceMode``/``priceListId``: TimeBridge does not own prices (design note §1.7 #6).
PROJECT_ECHO = ("hourRate", "otherCurrHourRate")
ACTIVITY_ECHO = ("description", "hourRate", "otherCurrHourRate", "accountNumber", "type")


# --- names ------------------------------------------------------------------------------------------
def _spaces(text: str) -> str:
    return " ".join(text.split())


def split_name(full: str) -> tuple[str, str]:
    """``sName`` → (firstName, lastName): "Svensson, Anna Maria" → ("Anna Maria", "Svensson");
    "Anna Maria Svensson" → ("Anna Maria", "Svensson"); a single word is both (Tic-Tac requires
    both names): "Madonna" → ("Madonna", "Madonna"), which :func:`joined_name` joins back to one."""
    text = _spaces(full)
    if "," in text:
        last, _, first = (part.strip() for part in text.partition(","))
        if first and last:
            return first, last
        text = first or last
    first, _, last = text.rpartition(" ")
    return (first, last) if first else (last, last)


def joined_name(first: str, last: str) -> str:
    """The full name as compared: "first last" with single spaces (a single-word name once)."""
    first, last = _spaces(first), _spaces(last)
    return last if first == last else _spaces(f"{first} {last}")


def same_person_name(erp_name: str, first: str, last: str) -> bool:
    """The ERP name equals Tic-Tac's first + last name (so a manual re-split in Tic-Tac is no change)."""
    wanted = joined_name(*split_name(erp_name))
    return wanted == joined_name(first, last) or _spaces(erp_name) == joined_name(first, last)


_ASCII_LETTERS = {"æ": "ae", "ø": "o", "å": "a", "ß": "ss", "đ": "d", "ð": "d", "þ": "th", "ł": "l", "œ": "oe",
                  "ı": "i"}


def fold_ascii(text: str) -> str:
    """Lower-case ASCII letters and digits only: "Ørsted-Æ1" → "orstedae1". A code with no such
    character at all becomes "x" + 8 hex digits of its SHA-256 (stable, still unique enough)."""
    lowered = "".join(_ASCII_LETTERS.get(ch, ch) for ch in text.lower())
    folded = unicodedata.normalize("NFKD", lowered).encode("ascii", "ignore").decode()
    folded = re.sub(r"[^a-z0-9]", "", folded)
    return folded or "x" + hashlib.sha256(text.encode()).hexdigest()[:8]


@dataclass(frozen=True)
class UserNameRule:
    """How a new user's ``userName`` is made (setting proposals: TICTAC_USERNAME_TEMPLATE,
    TICTAC_USERNAME_PREFIX).

    ``template`` is a :meth:`str.format` pattern over ``{email}``, ``{code}`` (the employee code
    folded to lower-case ASCII letters and digits, :func:`code_for_user_name`) and ``{prefix}``. When a
    placeholder it uses has no value (no e-mail in the file), the fallback ``{prefix}{code}`` is used.
    Default: the e-mail, else prefix + code. Tic-Tac may store another userName (e.g. the e-mail's
    letters): read it back after creating.

    Unique by construction: when folding changed the code (``N/1``, ``N1``, ``n1`` and ``N#1`` would
    all be ``n1``; ``Ø1`` and ``O1`` both ``o1``), ``x`` and 6 hex digits of the code's SHA-256 are
    appended (``n1`` stays ``n1``, ``N1`` becomes ``n1x…``); so is it when the plain name is already
    taken by a user of the company (``taken``).
    """

    template: str = "{email}"
    company_prefix: str = ""

    def __post_init__(self) -> None:
        check_user_name_template(self.template)

    def user_name(self, values: Mapping[str, Value], taken: Callable[[str], bool] | None = None) -> str:
        code = str(values["sEmployeeCode"])
        name = self._render(values, code_for_user_name(code))
        if taken is not None and taken(name):
            other = self._render(values, f"{fold_ascii(code)}x{_code_digest(code)}")
            if other != name:  # made from the code: the hashed form instead
                return other
        return name

    def _render(self, values: Mapping[str, Value], code: str) -> str:
        fields = {"email": str(values.get("sEmail") or "").strip(), "code": code,
                  "prefix": fold_ascii(self.company_prefix) if self.company_prefix else ""}
        used = {name for _, name, _, _ in string.Formatter().parse(self.template) if name}
        if all(fields[name] for name in used if name != "prefix"):
            rendered = self.template.format(**fields).strip()
            if rendered:
                return rendered
        return f"{fields['prefix']}{fields['code']}"


def _code_digest(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()[:6]


def code_for_user_name(code: str) -> str:
    """The employee code as the ``{code}`` of a userName: lower-case ASCII letters and digits, plus
    ``x`` and 6 hex digits of its SHA-256 when folding changed it (so distinct codes never share a
    name): ``e78`` → ``e78``; ``E-78`` → ``e78x`` + 6 hex digits; ``Ø1`` → ``o1x`` + 6 hex digits."""
    folded = fold_ascii(code)
    return folded if folded == code else f"{folded}x{_code_digest(code)}"


# --- employees ↔ users --------------------------------------------------------------------------------
def user_create_body(values: Mapping[str, Value], *, user_name: str, send_national_id: bool = False) -> dict[str, Any]:
    """The ``POST /v1/users`` body for a new employee. ``department`` is not a documented POST field:
    after the create, :func:`user_changes` against the read-back user yields it as a PUT."""
    first, last = split_name(str(values.get("sName") or values["sEmployeeCode"]))
    body: dict[str, Any] = {"userName": user_name, "firstName": first, "lastName": last,
                            "employeeNumber": str(values["sEmployeeCode"])}
    if values.get("sEmail"):
        body["emailAdress"] = str(values["sEmail"])
    if values.get("sCellPhone"):
        body["phoneNumber"] = str(values["sCellPhone"])
    if send_national_id and values.get("sCPRNo"):
        body["nationalIDNumber"] = str(values["sCPRNo"])
    return body


def user_changes(values: Mapping[str, Value], user: User, *, send_national_id: bool = False) -> dict[str, Any]:
    """The ``PUT /v1/users/{userName}`` body that makes ``user`` match the ERP record: only the
    fields the file gives, Tic-Tac holds and that differ ({} = unchanged). The users PUT is partial
    by the document ("You only need to supply the fields you want to change", TT:214)."""
    fields = user.fields
    changes: dict[str, Any] = {}
    if values.get("sName") and not same_person_name(str(values["sName"]), str(fields.get("firstName") or ""),
                                                    str(fields.get("lastName") or "")):
        changes["firstName"], changes["lastName"] = split_name(str(values["sName"]))
    email = values.get("sEmail")
    if email and str(email).strip().casefold() != str(fields.get("emailAdress") or "").strip().casefold():
        changes["emailAdress"] = str(email)
    department = values.get("sDepartmentCode")
    if department and str(department) != str(fields.get("department") or ""):
        changes["department"] = str(department)
    cpr = values.get("sCPRNo")
    if send_national_id and cpr and str(cpr) != str(fields.get("nationalIDNumber") or ""):
        changes["nationalIDNumber"] = str(cpr)
    return changes


def user_values(user: User) -> dict[str, Value]:
    """A Tic-Tac user in the file's vocabulary (the fields that map back exactly)."""
    fields = user.fields
    values: dict[str, Value] = {}
    if user.employee_number:
        values["sEmployeeCode"] = user.employee_number
    name = joined_name(str(fields.get("firstName") or ""), str(fields.get("lastName") or ""))
    if name:
        values["sName"] = name
    for erp, tictac in (("sEmail", "emailAdress"), ("sDepartmentCode", "department")):
        if fields.get(tictac):
            values[erp] = str(fields[tictac])
    return values


# --- jobs ↔ projects ----------------------------------------------------------------------------------
def is_template(values: Mapping[str, Value]) -> bool:
    """A Template job is never created in Tic-Tac; its operations expand ``sJobTemplate`` of others."""
    return values.get("sStatus") == TEMPLATE_STATUS


def project_is_active(values: Mapping[str, Value]) -> bool | None:
    """``sStatus`` → ``isActive`` (None: no status in the file, or Template)."""
    status = values.get("sStatus")
    if status in ACTIVE_STATUSES:
        return True
    if status in INACTIVE_STATUSES:
        return False
    return None


def _desired_project(values: Mapping[str, Value]) -> dict[str, Any]:
    desired: dict[str, Any] = {"projectNumber": str(values["sJobCode"])}
    if values.get("sJobDescription"):
        desired["name"] = str(values["sJobDescription"])
    if values.get("sJobDescription2"):
        desired["description"] = str(values["sJobDescription2"])
    active = project_is_active(values)
    if active is not None:
        desired["isActive"] = active
    return desired


def project_create_body(values: Mapping[str, Value]) -> dict[str, Any]:
    """The ``POST /v1/projects`` body (without activities; pass those to ``create_project``).
    ``isActive`` is not a documented POST field: see :func:`project_after_create`."""
    if is_template(values):
        raise ValueError(f"job {values['sJobCode']} is a Template: Template jobs are not created in Tic-Tac")
    desired = _desired_project(values)
    desired.setdefault("name", str(values["sJobCode"]))
    desired.pop("isActive", None)
    return desired


def project_after_create(values: Mapping[str, Value]) -> dict[str, Any]:
    """The PUT a new project needs right after its POST ({} = none): a job created as Completed or
    Canceled is deactivated (1 more call). The body repeats the created fields, so a PUT that
    replaces instead of merging blanks nothing."""
    return project_create_body(values) | {"isActive": False} if project_is_active(values) is False else {}


def project_changes(values: Mapping[str, Value], project: Project) -> dict[str, Any]:
    """The ``PUT /v1/projects/{id}`` body that makes ``project`` match the job ({} = unchanged).

    When anything differs the body carries every field TimeBridge owns plus the Tic-Tac-owned
    :data:`PROJECT_ECHO` fields from the snapshot, so a PUT that replaces instead of merging loses
    nothing (the document does not say which it is)."""
    desired = _desired_project(values)
    current = project.fields
    differs = any(
        (project.active != value) if name == "isActive" else str(current.get(name) or "") != value
        for name, value in desired.items()
    )
    if not differs:
        return {}
    body = {name: current[name] for name in PROJECT_ECHO if current.get(name) not in (None, "")}
    body |= {"name": project.name, "description": str(current.get("description") or "")}
    if project.active is not None:  # an isActive Tic-Tac answered unreadably is never echoed
        body["isActive"] = project.active
    return body | desired


def project_values(project: Project) -> dict[str, Value]:
    """A Tic-Tac project in the file's vocabulary. ``sStatus`` does not map back (false is
    Completed or Canceled): it is left out."""
    values: dict[str, Value] = {}
    if project.project_number:
        values["sJobCode"] = project.project_number
    if project.name:
        values["sJobDescription"] = project.name
    if project.fields.get("description"):
        values["sJobDescription2"] = str(project.fields["description"])
    return values


def expand_template(values: Mapping[str, Value],
                    template_operations: Iterable[Mapping[str, Value]]) -> list[dict[str, Value]]:
    """The operations a new job gets from its ``sJobTemplate`` (the template job's operations with
    this job's code), as SmartTID copies them (REF §3.2)."""
    return [dict(operation) | {"sJobCode": values["sJobCode"]} for operation in template_operations]


# --- operations ↔ activities ------------------------------------------------------------------------
def activity_name(values: Mapping[str, Value], duplicates: Iterable[Mapping[str, Value]] = ()) -> str:
    """``sDescription`` (the operation code when empty); when another operation of the same job has
    the same description, " (<line number>)" is appended: "Painting (30)" — activity names are
    unique within a Tic-Tac project (design note §1.7 #5)."""
    name = _spaces(str(values.get("sDescription") or values.get("sOperationCode") or values["nLineNumber"]))
    clash = any(
        _spaces(str(other.get("sDescription") or "")).casefold() == name.casefold()
        and other.get("nLineNumber") != values.get("nLineNumber")
        for other in duplicates
    )
    return f"{name} ({_line(values['nLineNumber'])})" if clash else name


def activity_names(operations: Sequence[Mapping[str, Value]]) -> list[str]:
    """:func:`activity_name` for every operation of one job, each checked against the others."""
    return [activity_name(operation, operations) for operation in operations]


def activity_body(values: Mapping[str, Value], *, name: str | None = None) -> dict[str, Any]:
    """An activity for ``POST /v1/activities`` or inline in a project POST."""
    body: dict[str, Any] = {"name": name or activity_name(values)}
    if "bOperationCompleted" in values:
        body["isActive"] = not values["bOperationCompleted"]
    return body


def activity_changes(values: Mapping[str, Value], activity: Activity, *, name: str | None = None) -> dict[str, Any]:
    """The ``PUT /v1/activities/{id}`` body ({} = unchanged): name and isActive, plus the
    Tic-Tac-owned :data:`ACTIVITY_ECHO` fields from the snapshot when anything differs."""
    desired = activity_body(values, name=name)
    differs = desired["name"] != activity.name or ("isActive" in desired and desired["isActive"] != activity.active)
    if not differs:
        return {}
    body = {field: activity.fields[field] for field in ACTIVITY_ECHO if activity.fields.get(field) not in (None, "")}
    if activity.active is not None:  # an isActive Tic-Tac answered unreadably is never echoed
        body["isActive"] = activity.active
    return body | desired


def activity_values(activity: Activity) -> dict[str, Value]:
    """A Tic-Tac activity in the file's vocabulary (sJobCode/nLineNumber come from the xref). An
    ``isActive`` that cannot be read leaves bOperationCompleted out: it differs from the file's."""
    values: dict[str, Value] = {"sDescription": activity.name}
    if activity.active is not None:
        values["bOperationCompleted"] = not activity.active
    return values


# --- matching -----------------------------------------------------------------------------------------
def match_user(users: Iterable[User], employee_code: str) -> User | None:
    """The user whose ``employeeNumber`` is exactly ``employee_code`` (leading zeros and case kept)."""
    found = [user for user in users if user.employee_number == employee_code]
    if len(found) > 1:
        names = [user.user_name for user in found]
        raise AmbiguousMatchError(f"Tic-Tac has {len(found)} users with employee number {employee_code}: "
                             f"{', '.join(names)}", names)
    return found[0] if found else None


def near_miss_users(users: Iterable[User], employee_code: str) -> list[User]:
    """Users whose employeeNumber equals the code only without case or surrounding spaces: reported,
    never linked."""
    wanted = employee_code.strip().casefold()
    return [u for u in users if u.employee_number != employee_code and u.employee_number.strip().casefold() == wanted]


def match_project(projects: Iterable[Project], job_code: str) -> Project | None:
    """The project whose ``projectNumber`` is exactly ``job_code``."""
    found = [project for project in projects if project.project_number == job_code]
    if len(found) > 1:
        names = [f"{p.name} ({p.project_id})" for p in found]
        raise AmbiguousMatchError(f"Tic-Tac has {len(found)} projects with project number {job_code}: "
                             f"{', '.join(names)}", names)
    return found[0] if found else None


def match_activity_by_name(activities: Iterable[Activity], name: str) -> Activity | None:
    """The first link of an operation: the one activity of its project whose name equals ``name``
    (trimmed, without case). Several → :class:`AmbiguousMatchError` naming them."""
    wanted = _spaces(name).casefold()
    found = [a for a in activities if _spaces(a.name).casefold() == wanted]
    if len(found) > 1:
        names = [f"{a.name} ({a.activity_id})" for a in found]
        raise AmbiguousMatchError(f"more than one Tic-Tac activity is named {name!r}: {' and '.join(names)}", names)
    return found[0] if found else None


def unheld_fields(record_type: RecordType, values: Mapping[str, Value]) -> list[str]:
    """The fields this record gives that Tic-Tac has no place for (for the receipt's one note)."""
    return [name for name in UNHELD_FIELDS[record_type] if name in values]


def _line(number: Value) -> str:
    if isinstance(number, Decimal):
        return format(number.normalize(), "f")
    return str(number)
