"""Tic-Tac Mobile REST client (httpx): users, projects with their activities, activities, entries.

Everything we had to *guess* about the Tic-Tac Mobile API lives in the ``GUESSES`` section at the
top of this module (the design note ``tictac.md`` §1.7 lists the open points, the API document is
``tictac-mobile-api.txt``, cited as TT:line). The rest follows the document: every call carries
``Authorization: Bearer <API code>`` (TT:36-39) and ``Accept: application/json``; writes send JSON
with ``Content-Type: application/json`` (TT:44-51); errors are a non-2xx status with a plain-text
message (TT:74-78); "The number of calls is limited to 500 per 24 hours" (TT:71).

This module is the transport only: it knows Tic-Tac's resources and answers, not the ERP file.
``shared.targets.tictac.mapping`` turns ERP records into the bodies sent here and back.

Secrets: the API code is a :class:`pydantic.SecretStr` that is read only to build the header. The
answer of ``POST /v1/users`` holds the new user's password (TT:212); it is dropped the moment the
status is checked — never logged, stored, returned or put into an exception.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Collection, Generator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote

import httpx
from defusedxml import ElementTree as SafeET
from pydantic import SecretStr

from shared.errors import ApiRejectedError, ApiUnavailableError, AuthenticationFailedError, BudgetExhaustedError
from shared.platform.safe_text import visible
from shared.targets.http import (
    DEFAULT_MAX_ANSWER_BYTES,
    ApiClient,
    RetryPolicy,
    attempts_text,
    is_redirect,
    load_json,
    redirect_text,
    retry_after_seconds,
)

log = logging.getLogger(__name__)

# ======================================================================================
# GUESSES — every decision taken where the Tic-Tac Mobile document is silent or ambiguous.
# ======================================================================================

#: The name used in every message.
TARGET_NAME = "Tic-Tac"
#: The base URL is the API root as printed in the document, ``https://www.tictacmobile.com/api/rest``
#: (setting TICTAC_BASE_URL); the paths below are appended to it.
USERS_PATH = "/v1/users"
PROJECTS_PATH = "/v1/projects"
ACTIVITIES_PATH = "/v1/activities"
#: Version 2 of entries (TT:674): v1 is "Kept for backwards compatibility" (TT:539).
ENTRIES_PATH = "/v2/entries"

#: GUESS (§1.7 #7): "Use … POST method to write or update" (TT:42) contradicts every update sample,
#: which uses PUT (and the 2025 change note "Updating projects with PUT"): updates are PUT.
UPDATE_METHOD = "PUT"
#: GUESS: a project is updated at ``PUT /v1/projects/{projectid}`` as in the sample (TT:385), not
#: on the collection URL the resource table suggests ("PUT: Updates (partially a project").
#: GUESS (§1.7 #8): ``304 Not Modified`` on a write means "nothing changed" — not an error; the
#: write methods then return False.
UNCHANGED_STATUS = 304
#: GUESS: a user is created with the documented POST fields plus ``employeeNumber`` (§1.7 #2, the
#: POST sample TT:200 does not show it). If the read-back after the create lacks it, one PUT sets
#: it (``create_user(read_back=True)``).
USER_POST_FIELDS = frozenset({"firstName", "lastName", "userName", "emailAdress", "phoneNumber",
                              "nationalIDNumber", "employeeNumber"})
#: GUESS (§1.7 #1): ``projectNumber`` (only documented as a query parameter, TT:243) is written under
#: the same JSON name in the project POST and PUT and is returned in the project objects.
PROJECT_NUMBER_FIELD = "projectNumber"
#: GUESS (§1.7 #12): only the documented fields are written to a project (POST sample TT:365, PUT
#: sample TT:387-395) — plus ``projectNumber``.
PROJECT_POST_FIELDS = frozenset({"name", "customer", "description", "hourRate", PROJECT_NUMBER_FIELD})
PROJECT_PUT_FIELDS = frozenset({"name", "description", "isActive", "hourRate", "otherCurrHourRate", "priceMode",
                                "priceListId", PROJECT_NUMBER_FIELD})
#: The activity fields of the POST/PUT samples (TT:448-474); ``projectId`` only in the POST.
ACTIVITY_FIELDS = frozenset({"name", "description", "hourRate", "otherCurrHourRate", "accountNumber", "isActive",
                             "type", "priceMode", "priceListId"})
#: GUESS (§1.7 #4): in the JSON of ``GET /v1/projects`` a project's activities are under
#: ``activities`` or ``Activities`` (the only sample is XML: ``<Activities><Activity>``, TT:322). A
#: project that comes without either key gets ``activities=None``; ``fill_activities`` then reads
#: them with one ``GET /v1/activities?projectId=`` per project that needs them.
PROJECT_ACTIVITY_KEYS = ("activities", "Activities")
#: GUESS (§1.7 #13): the JSON of a list is a bare array or an object wrapping one array
#: (``{"ticTacRows": […]}`` as the entries, TT:705); both are accepted for every list.
#: GUESS: an empty list may come as ``204 No Content`` (TT:59) or as an empty list; a ``200`` with an
#: empty body is not an empty list but an answer that cannot be read (``shared/targets/http.py``).
EMPTY_STATUS = 204
#: GUESS: booleans (``isActive``, ``attested`` …) are JSON ``true``/``false`` as in the samples; ``1``/``0``
#: and the same as strings (any case) are read too. Anything else cannot be read: an entry with such an
#: ``attested`` is held with the reason; an object with such an ``isActive`` counts as differing from
#: the file, whose value is then written (and nothing is echoed for it).
TRUE_TEXTS, FALSE_TEXTS = frozenset({"true", "1"}), frozenset({"false", "0"})
#: GUESS (§1.7 #9): the document's table names the parameter ``daysChangedWithin`` (TT:690), its
#: sample ``daysChangedWithinStr`` (TT:700): both are sent with the same value.
DAYS_CHANGED_PARAMS = ("daysChangedWithin", "daysChangedWithinStr")
DAYS_CHANGED_MAX = 90  # "Positive integer, up to 90" (TT:690)
#: GUESS: JSON is asked for everywhere; an answer is parsed by its Content-Type, so XML (parsed with
#: defusedxml) is read too, should Tic-Tac ignore the Accept header for a resource whose only
#: documented sample is XML (projects, TT:265-356; v1 entries, TT:613-653).
#: GUESS: booleans in XML answers are ``true``/``false`` text (TT:270); these fields are turned into
#: bools, every other XML value stays text. JSON values are kept as Tic-Tac sends them.
XML_BOOLEAN_FIELDS = frozenset({"isActive", "attested", "invoiced", "isOtherCurrActive", "hasCustomerEntry"})
#: GUESS (§1.7 #10): a 429 is an exhausted daily limit, never retried; without a usable
#: ``Retry-After`` the next call is assumed possible after one hour.
DEFAULT_RETRY_AFTER_SECONDS = 3600
#: GUESS: ``503 Service Unavailable`` ("The server is not ready to handle the request", TT:70) means
#: the request was not processed: it is retried with backoff (``Retry-After`` honoured up to a
#: bound) — also a POST. 502/504, timeouts and dropped connections are retried for GET and PUT
#: only: after a POST they may hide an applied create. A refused connection is always retried.
#: Any attempt of a write that may have been processed (a timeout or dropped connection after
#: sending, 500/502/504, a 3xx, an answer too large to read) makes the write's outcome unknown
#: (``ApiUnavailableError.maybe_applied``), whatever the later attempts answer: the connector looks it up.
RETRY_STATUSES = frozenset({502, 503, 504})
SAFE_TO_REPEAT_STATUS = 503
#: GUESS: 401 and 403 both mean the API code is wrong, expired or lacks the rights (TT:63-64).
AUTH_STATUSES = frozenset({401, 403})
#: GUESS (§1.7 #10): every HTTP attempt that reaches Tic-Tac counts against its limit — refusals
#: (4xx) and retries included; ``calls`` counts every attempt, so a plan can reserve for them.
#: GUESS: a successful create may be 200 or 201 (the table says 201, the samples show none): any
#: 2xx is success.
#: GUESS (§1.7 #3): Tic-Tac may store another userName than the one sent (the sample user
#: ``annatictacse`` has ``longUserName`` ``anna@tictac.se``, TT:136-137): after a create the user is
#: read back by the name sent, else found in the list by ``longUserName`` or employeeNumber.
#: GUESS: ``?projectNumber=`` may match without regard to case; ``find_project`` keeps only the
#: exact match (the ERP's codes are exact strings, leading zeros and case included).
#: GUESS: ``GET /v1/activities`` rows carry no project id (TT:417-428); it is taken from the query.
#: GUESS: the document gives no field lengths, number ranges or earliest date; the file's values
#: are checked against SmartTID's parameter types as for SmartTID (the file format is SmartTID's),
#: and the messages name Tic-Tac ("Tic-Tac allows at most 50", ``parse_file(..., target=...)``).
#
#: The export (``shared/export/sent_ledger.py``, ``sent_plan.py``; the rows as entries: ``entries.py``):
#: GUESS: ``GET /v2/entries`` answers every row of the window in one answer (no paging is
#: documented); an answer cut short is caught by the reconcile's loss guard, never read as deletions.
#: GUESS: a deleted row vanishes, or stays with quantity 0 and counts as changed (sandbox switch
#: ``deleted_entries``): a time row with ``hours`` 0 is a deletion (a reversal, never a 0-hour line).
#: GUESS: attesting may or may not count as a change for ``daysChangedWithin`` (``attest_is_change``),
#: and "within N days from today" may be calendar days or N×24 h (``days_changed_unit``): the window
#: sent is the days since the last recorded read rounded up, plus 1, and the daily whole-window
#: reconcile catches what a change window cannot see (a row attested without a change time).
#: GUESS: an entry's ``userid`` is the user's ``userName`` (compared without case), ``username`` its
#: display name; ``projectname`` is "Project/Activity" but is never split (a project's name holds "/"
#: of its own: "Hansen A/S"): the activity's name comes from the project list or the cross-reference.
#: GUESS: a user or project with no cross-reference is linked by its ``employeeNumber`` /
#: ``projectNumber`` (the numbers the customer typed into Tic-Tac are the ERP's codes), unless two carry it.
#: GUESS: the ``type`` of an activity in ``GET /v1/projects`` (WORKHOURS, OVERTIME …, TT:448-474) is
#: the kind of hours, mapped to a WorkTypeCode (``TICTAC_WORKTYPE_MAP``); an activity the list does
#: not show keeps an unknown type (WorkTypeCode empty).

#: Calls each client method makes at most when nothing fails (retries after a 503 come on top:
#: up to ``RetryPolicy.attempts`` per call). A plan adds these up before it reserves its budget.
CALL_COSTS: dict[str, int] = {
    "list_users": 1,
    "list_projects": 1,
    "find_project": 1,
    "list_activities": 1,  # and fill_activities: 1 per project that came without its activities
    "create_user": 1,
    "create_user_read_back": 4,  # POST, GET by name, (GET list if renamed), (PUT employeeNumber)
    "update_user": 1,
    "create_project": 1,  # its activities inline included
    "update_project": 1,
    "create_activity": 1,
    "update_activity": 1,
    "read_entries": 1,
}

# ======================================================================================


#: Tic-Tac's retry numbers: few attempts, since each one may count against the daily limit; a
#: 503's ``Retry-After`` is honoured up to 30 seconds.
DEFAULT_RETRY = RetryPolicy(attempts=3, initial_wait=0.5, max_wait=10.0, max_retry_after=30.0)


class BearerCode(httpx.Auth):
    """Tic-Tac's API code, sent as ``Authorization: Bearer <code>`` on every request."""

    def __init__(self, api_code: SecretStr) -> None:
        self._api_code = api_code

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._api_code.get_secret_value()}"
        yield request


# --- what the client returns ------------------------------------------------------------------
class _Fields:
    """What every Tic-Tac object answers the same way: its fields, and whether it is active."""

    fields: Mapping[str, Any]

    @property
    def active(self) -> bool | None:
        """``isActive`` (a missing field counts as active); None when Tic-Tac's value cannot be read."""
        return boolean(self.fields.get("isActive", True))

    @property
    def is_active(self) -> bool:
        """Active, or an ``isActive`` that cannot be read (never counted as inactive)."""
        return self.active is not False


@dataclass(frozen=True)
class User(_Fields):
    """A Tic-Tac user: ``userName`` is its id (the path parameter, TT:106); ``fields`` are the
    user object's fields as Tic-Tac answered them (camelCase, never a password)."""

    user_name: str
    fields: Mapping[str, Any]

    @property
    def employee_number(self) -> str:
        return str(self.fields.get("employeeNumber") or "")


class _Named(_Fields):
    @property
    def name(self) -> str:
        return str(self.fields.get("name") or "")


@dataclass(frozen=True)
class Activity(_Named):
    """A Tic-Tac activity (``actid``) of a project (``project_id``; None when the answer did not say)."""

    activity_id: str
    project_id: str | None
    fields: Mapping[str, Any]


@dataclass(frozen=True)
class Project(_Named):
    """A Tic-Tac project (``projid``). ``activities`` is None when the answer held none at all
    (not read), an empty tuple when the project has none."""

    project_id: str
    fields: Mapping[str, Any]
    activities: tuple[Activity, ...] | None = None

    @property
    def project_number(self) -> str:
        return str(self.fields.get(PROJECT_NUMBER_FIELD) or "")


@dataclass(frozen=True)
class Entry:
    """One row of ``GET /v2/entries``: ``type`` is TicTacTime/TicTacCost/TicTacMile/TicTacSale."""

    row_id: str
    type: str
    fields: Mapping[str, Any]


@dataclass(frozen=True)
class CreatedUser:
    """The outcome of ``POST /v1/users``: the userName we asked for and — with ``read_back`` — the
    user as Tic-Tac stored it (its ``user_name`` may differ, e.g. for an e-mail). No password."""

    requested_user_name: str
    user: User | None = None


# --- parsing (JSON and XML; public so the document's samples can be checked) ---------------------
def boolean(value: Any) -> bool | None:
    """A boolean as Tic-Tac may send it: JSON ``true``/``false``, ``1``/``0``, or the same as text
    in any case; None for anything else (the value cannot be read — never guessed)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in TRUE_TEXTS:
            return True
        if text in FALSE_TEXTS:
            return False
    return None


def _xml_value(element: Any) -> Any:
    if len(element):
        return {child.tag: _xml_value(child) for child in element}
    text = element.text or ""
    if element.tag in XML_BOOLEAN_FIELDS and text:
        parsed = boolean(text)
        return text if parsed is None else parsed
    return text


def _xml_root(text: str | bytes) -> Any:
    try:
        return SafeET.fromstring(text)
    except Exception:  # ParseError, and defusedxml's refusals (DTDs, entities)
        raise ApiUnavailableError(f"{TARGET_NAME} returned XML that cannot be read") from None


def _json_list(payload: Any, what: str) -> list[dict[str, Any]]:
    if isinstance(payload, dict):
        lists = [value for value in payload.values() if isinstance(value, list)]
        if len(lists) != 1:
            raise ApiUnavailableError(f"{TARGET_NAME} returned an unexpected answer for {what} (no list)")
        payload = lists[0]
    if not isinstance(payload, list) or not all(isinstance(row, dict) for row in payload):
        raise ApiUnavailableError(f"{TARGET_NAME} returned an unexpected answer for {what} (not a list of objects)")
    return payload


def _load_json(text: str | bytes, what: str) -> Any:
    return load_json(text, TARGET_NAME, what)


def parse_users(text: str | bytes, *, xml: bool = False) -> list[User]:
    """``GET /v1/users`` (JSON array TT:109-161, or XML ``<TicTacUsers><TicTacUser>``)."""
    if xml:
        rows = [_xml_value(item) for item in _xml_root(text)]
    else:
        payload = _load_json(text, "users")
        rows = [payload] if isinstance(payload, dict) and "userName" in payload else _json_list(payload, "users")
    return [_user(row) for row in rows]


def _user(row: Mapping[str, Any]) -> User:
    fields = {name: value for name, value in row.items() if "password" not in name.lower()}
    return User(user_name=str(fields.get("userName") or ""), fields=fields)


def _activity(row: Mapping[str, Any], project_id: str | None) -> Activity:
    fields = dict(row)
    owner = str(fields.get("projid") or fields.get("projectId") or project_id or "") or None
    return Activity(activity_id=str(fields.get("actid") or ""), project_id=owner, fields=fields)


def parse_activities(text: str | bytes, *, xml: bool = False, project_id: str | None = None) -> list[Activity]:
    """``GET /v1/activities?projectId=`` (JSON ``{"activities": […]}`` TT:416-441, or XML
    ``<Activities><Activity>``)."""
    if xml:
        rows = [_xml_value(item) for item in _xml_root(text)]
    else:
        rows = _json_list(_load_json(text, "activities"), "activities")
    return [_activity(row, project_id) for row in rows]


def _project(row: Mapping[str, Any]) -> Project:
    fields = {name: value for name, value in row.items() if name not in PROJECT_ACTIVITY_KEYS}
    project_id = str(fields.get("projid") or "")
    activities: tuple[Activity, ...] | None = None
    for key in PROJECT_ACTIVITY_KEYS:
        if key in row:
            value = row[key]
            if isinstance(value, dict):  # XML: <Activities><Activity>…</Activity></Activities>
                value = [value]
            items = value if isinstance(value, list) else []
            activities = tuple(_activity(item, project_id) for item in items if isinstance(item, dict))
    return Project(project_id=project_id, fields=fields, activities=activities)


def _xml_project(element: Any) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for child in element:
        if child.tag in PROJECT_ACTIVITY_KEYS:
            row["activities"] = [_xml_value(item) for item in child]
        else:
            row[child.tag] = _xml_value(child)
    return row


def parse_projects(text: str | bytes, *, xml: bool = False) -> list[Project]:
    """``GET /v1/projects`` (XML ``<TicTacProjects><TicTacProject>`` TT:265-356 with
    ``<Activities>``; JSON a bare array or a wrapper, see GUESSES).

    In XML a project without ``<Activities>`` gets an empty tuple (the XML always lists them)."""
    if xml:
        root = _xml_root(text)
        elements = [root] if root.tag == "TicTacProject" else list(root)
        projects = []
        for element in elements:
            project = _project(_xml_project(element))
            projects.append(project if project.activities is not None else
                            Project(project.project_id, project.fields, ()))
        return projects
    payload = _load_json(text, "projects")
    rows = [payload] if isinstance(payload, dict) and "projid" in payload else _json_list(payload, "projects")
    return [_project(row) for row in rows]


def parse_entries(text: str | bytes, *, xml: bool = False) -> list[Entry]:
    """``GET /v2/entries`` (JSON ``{"ticTacRows": […]}`` TT:704-749, XML ``<workItemModel>`` TT:752-810)
    and the v1 XML (TT:613-653), whose element names are the row types."""
    if xml:
        rows = []
        for item in _xml_root(text):
            row = _xml_value(item)
            if item.tag != "ticTacRows":  # v1: <TicTacTime>…</TicTacTime>
                row = {"type": item.tag, **row}
            rows.append(row)
    else:
        rows = _json_list(_load_json(text, "entries"), "entries")
    return [Entry(row_id=str(row.get("rowid") or ""), type=str(row.get("type") or ""), fields=row) for row in rows]


def _single_value(response: httpx.Response, key: str) -> str:
    """``{"projectId":"1551796845913"}`` (TT:383); in XML the key is the root element (a guess).

    The answer of a write that succeeded (2xx) but cannot be read: :class:`ApiUnavailableError` with
    ``maybe_applied`` — the write happened, its id is unknown (the connector looks it up)."""
    try:
        if _is_xml(response):
            value = (_xml_root(response.content).text or "").strip()
        else:
            payload = _load_json(response.content, key)
            value = str(payload[key]) if isinstance(payload, dict) and payload.get(key) else ""
    except ApiUnavailableError:
        value = ""
    if not value:
        raise ApiUnavailableError(f"{TARGET_NAME} answered HTTP {response.status_code} without a readable {key}",
                             maybe_applied=response.request.method != "GET")
    return value


def _is_xml(response: httpx.Response) -> bool:
    return "xml" in response.headers.get("Content-Type", "").lower()


def _retry_after(response: httpx.Response) -> int | None:
    seconds = retry_after_seconds(response)
    return None if seconds is None else math.ceil(seconds)


# --- the client ---------------------------------------------------------------------------------
class TicTacClient:
    """Tic-Tac Mobile API client. Thread-safe as far as httpx is; every HTTP request is counted in
    ``calls`` (``METHOD /path`` with ids replaced by ``{id}``) — retries included, since each one
    may count against Tic-Tac's daily limit."""

    def __init__(
        self,
        base_url: str,
        api_code: SecretStr,
        *,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], datetime] | None = None,
        before_call: Callable[[str, str], None] | None = None,
        max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
    ) -> None:
        self._api_code = api_code
        self._retry = retry or DEFAULT_RETRY
        self._clock = clock or (lambda: datetime.now(UTC))
        self._auth = BearerCode(api_code)
        self.api = ApiClient(TARGET_NAME, base_url, timeout=timeout, retry=self._retry,
                             secrets=lambda: [api_code.get_secret_value()], retry_statuses=RETRY_STATUSES,
                             unprocessed_statuses=frozenset({SAFE_TO_REPEAT_STATUS}), transport=transport,
                             max_answer_bytes=max_answer_bytes, before_call=before_call)
        self.calls = self.api.calls

    # --- plumbing ------------------------------------------------------------------------------
    @property
    def max_attempts(self) -> int:
        """HTTP attempts one call may take (each may count against Tic-Tac's limit)."""
        return self._retry.attempts

    @property
    def before_call(self) -> Callable[[str, str], None] | None:
        """Called with (method, path) before every HTTP request, retries included; may raise to stop
        the call before it is sent (``budget.Allowance.take``). Settable per plan."""
        return self.api.before_call

    @before_call.setter
    def before_call(self, hook: Callable[[str, str], None] | None) -> None:
        self.api.before_call = hook

    def close(self) -> None:
        self.api.close()

    def __enter__(self) -> TicTacClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _message(self, response: httpx.Response) -> str:
        """Tic-Tac's error text with the API code (plain, URL-encoded or as ``Bearer <code>``) redacted
        before it is shortened: an error body that echoes the request never carries the code on."""
        return self.api.message(response)

    def _request(
        self,
        method: str,
        path: str,
        *,
        counted_as: str | None = None,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        accept: str = "application/json",
        may_have_applied_retry: bool = True,
    ) -> httpx.Response:
        """Send one call (with retries of 503/502/504 and connection errors) and map the answer.

        Returns 2xx answers (and 304 to a write, GUESSES); raises :class:`BudgetExhaustedError` (429),
        :class:`AuthenticationFailedError` (401/403), :class:`ApiRejectedError` (other 4xx) or
        :class:`ApiUnavailableError` (5xx after the retries, unreachable, a 3xx — never followed and never
        success —, an answer larger than ``max_answer_bytes``). For a write, ``maybe_applied`` is
        set when any attempt may have been processed (GUESSES), whatever the last attempt answered.
        ``may_have_applied_retry=False`` (POST): such an attempt is not repeated.
        """
        label = counted_as or path
        write = method != "GET"
        sent = self.api.send(method, path, params=params, json_body=json_body, headers={"Accept": accept},
                             auth=self._auth, label=label, safe_to_repeat=may_have_applied_retry)
        response, ambiguous = sent.response, sent.ambiguous
        if sent.kept_failing:
            raise ApiUnavailableError(
                f"{TARGET_NAME} kept failing (HTTP {response.status_code}: {self._message(response)}) "
                f"after {attempts_text(sent.attempts)}", maybe_applied=write and ambiguous,
            )
        status = response.status_code
        if status == 429:
            seconds = _retry_after(response)
            seconds = DEFAULT_RETRY_AFTER_SECONDS if seconds is None else max(seconds, 1)
            log.warning("%s answered 429 to %s %s: the daily call limit is used up (Retry-After %d s)",
                        TARGET_NAME, method, label, seconds)
            raise BudgetExhaustedError(seconds, now=self._clock())
        if status in AUTH_STATUSES:
            raise AuthenticationFailedError(
                f"{TARGET_NAME} refused the API code (HTTP {status}: {self._message(response)}). Check the secret "
                "tictac-api-code (locally TICTAC_API_CODE): it may be wrong, expired or lack the rights.",
                maybe_applied=write and ambiguous,
            )
        if status == UNCHANGED_STATUS and write:
            return response
        if is_redirect(response):
            if write:
                raise ApiUnavailableError(
                    f"{TARGET_NAME} answered {method} {label} with a redirect ({redirect_text(response)}), which "
                    "TimeBridge does not follow", maybe_applied=True)
            raise ApiUnavailableError(
                f"{TARGET_NAME} answered {method} {label} with a redirect ({redirect_text(response)}), which "
                "TimeBridge does not follow: check TICTAC_BASE_URL (it must be the API's https address)")
        if status >= 500:
            raise ApiUnavailableError(f"{TARGET_NAME} failed (HTTP {status}: {self._message(response)})",
                                 maybe_applied=write)
        if status >= 400:
            raise ApiRejectedError(f"{TARGET_NAME} refused {method} {label}: {self._message(response)}", status)
        if status < 200:
            raise ApiUnavailableError(f"{TARGET_NAME} answered {method} {label} with HTTP {status}, which is no answer",
                                 maybe_applied=write)
        return response

    def _list(self, path: str, *, counted_as: str | None = None, params: Mapping[str, Any] | None = None,
              accept: str = "application/json") -> httpx.Response | None:
        """A list call; None for ``204 No Content`` (an empty list). Any other answer without a body
        cannot be read (it is never taken for an empty list)."""
        response = self._request("GET", path, counted_as=counted_as, params=params, accept=accept)
        if response.status_code == EMPTY_STATUS:
            return None
        if not response.content.strip():
            raise ApiUnavailableError(
                f"{TARGET_NAME} answered GET {counted_as or path} with HTTP {response.status_code} "
                "and an empty body; only 204 No Content or an empty list means \"none\", so "
                "the answer cannot be read")
        return response

    def _write(self, method: str, path: str, body: Mapping[str, Any], *, counted_as: str) -> httpx.Response:
        response = self._request(method, path, counted_as=counted_as, json_body=dict(body),
                                 may_have_applied_retry=method != "POST")
        if method == "POST" and response.status_code == UNCHANGED_STATUS:  # "was not successful" (TT:60)
            raise ApiRejectedError(f"{TARGET_NAME} answered 304 Not Modified to POST {counted_as}: nothing was created",
                              UNCHANGED_STATUS)
        return response

    # --- connection check ------------------------------------------------------------------------
    def hello(self) -> str:
        """``GET /v1/hello``: Tic-Tac's salutation (proves the URL and the API code)."""
        return _single_value(self._request("GET", "/v1/hello"), "HelloFromTicTacAPI")

    # --- users -----------------------------------------------------------------------------------
    def list_users(self) -> list[User]:
        """Every user (1 call)."""
        response = self._list(USERS_PATH)
        return [] if response is None else parse_users(response.content, xml=_is_xml(response))

    def get_user(self, user_name: str) -> User | None:
        """One user by userName (1 call); None when Tic-Tac answers 404."""
        try:
            response = self._request("GET", f"{USERS_PATH}/{_segment(user_name)}", counted_as=f"{USERS_PATH}/{{id}}")
        except ApiRejectedError as exc:
            if exc.status == 404:
                return None
            raise
        [user] = parse_users(response.content, xml=_is_xml(response))
        return user

    def create_user(self, values: Mapping[str, Any], *, read_back: bool = False) -> CreatedUser:
        """``POST /v1/users`` with ``values`` (Tic-Tac field names, ``userName`` required; only
        ``USER_POST_FIELDS`` are sent). The answer's password is discarded here.

        ``read_back=True`` costs 1-3 more calls: ``GET /v1/users/{userName}`` (or, when Tic-Tac
        stored another userName, ``GET /v1/users`` and a match on ``longUserName``/employeeNumber),
        and one PUT when the stored user lacks the ``employeeNumber`` sent (GUESSES)."""
        body = {name: value for name, value in values.items() if name in USER_POST_FIELDS}
        requested = str(body.get("userName") or "").strip()
        if not requested:
            raise ValueError("a Tic-Tac user needs a userName")
        response = self._write("POST", USERS_PATH, body, counted_as=USERS_PATH)
        del response  # holds {"userPassword": …}: never kept, logged or returned
        log.info("%s user created for employee %s", TARGET_NAME,  # the employee code: a userName is personal
                 visible(str(body.get("employeeNumber") or "(no employee number)")))
        if not read_back:
            return CreatedUser(requested)
        try:
            user = self.find_created_user(body)
        except BudgetExhaustedError:
            raise  # the line waits and is planned again: the next plan finds the user by its number
        except ApiRejectedError as exc:  # the user was created: a failed read-back never reads as "nothing changed"
            raise ApiUnavailableError(f"{TARGET_NAME} created the user but it could not be read back ({exc.message})",
                                 maybe_applied=True) from None
        except ApiUnavailableError as exc:
            raise type(exc)(f"{TARGET_NAME} created the user but it could not be read back ({exc})",
                            maybe_applied=True) from None
        if user is None:
            raise ApiUnavailableError(f"{TARGET_NAME} created the user {requested} but does not list it",
                                      maybe_applied=True)
        return CreatedUser(requested, user)

    def find_created_user(self, values: Mapping[str, Any]) -> User | None:
        """The user a ``POST /v1/users`` with ``values`` created, as Tic-Tac stored it (1-3 calls: by
        userName, else in the list by ``longUserName``/employeeNumber; one PUT when it lacks the
        employeeNumber sent, GUESSES); None when there is none."""
        body = {name: value for name, value in values.items() if name in USER_POST_FIELDS}
        requested = str(body.get("userName") or "").strip()
        user = self.get_user(requested) or _created_among(self.list_users(), requested, body)
        if user is None:
            return None
        number = str(body.get("employeeNumber") or "")
        if number and user.employee_number != number:
            self.update_user(user.user_name, {"employeeNumber": number})
            user = User(user.user_name, {**user.fields, "employeeNumber": number})
        return user

    def update_user(self, user_name: str, changes: Mapping[str, Any]) -> bool:
        """``PUT /v1/users/{userName}`` with only the fields to change ("You only need to supply the
        fields you want to change", TT:214). False when Tic-Tac answers 304 (nothing changed)."""
        body = {name: value for name, value in changes.items() if name not in ("userName", "longUserName")}
        response = self._write(UPDATE_METHOD, f"{USERS_PATH}/{_segment(user_name)}", body,
                               counted_as=f"{USERS_PATH}/{{id}}")
        return response.status_code != UNCHANGED_STATUS

    # --- projects --------------------------------------------------------------------------------
    def list_projects(self, *, include_members: bool = False, project_number: str | None = None) -> list[Project]:
        """Every project, with its activities when Tic-Tac includes them (1 call; see GUESSES).
        ``project_number`` narrows the list to that project number (TT:243)."""
        params: dict[str, Any] = {}
        if include_members:
            params["includeMembers"] = "true"
        if project_number is not None:
            params[PROJECT_NUMBER_FIELD] = project_number
        response = self._list(PROJECTS_PATH, params=params)
        return [] if response is None else parse_projects(response.content, xml=_is_xml(response))

    def get_project(self, project_id: str) -> Project | None:
        """``GET /v1/projects/{projectid}`` (1 call); None when Tic-Tac answers 404."""
        try:
            response = self._request("GET", f"{PROJECTS_PATH}/{_segment(project_id)}",
                                     counted_as=f"{PROJECTS_PATH}/{{id}}")
        except ApiRejectedError as exc:
            if exc.status == 404:
                return None
            raise
        projects = parse_projects(response.content, xml=_is_xml(response))
        return next((project for project in projects if project.project_id == project_id), None)

    def fill_activities(self, projects: Sequence[Project], project_ids: Collection[str] | None = None) -> list[Project]:
        """``projects`` with the activities read for those that came without (1 call per such project;
        only those in ``project_ids`` when given: the budget is scarce)."""
        filled = []
        for project in projects:
            wanted = project_ids is None or project.project_id in project_ids
            if project.activities is None and wanted:
                project = Project(project.project_id, project.fields, tuple(self.list_activities(project.project_id)))
            filled.append(project)
        return filled

    def find_project(self, project_number: str) -> Project | None:
        """The project with this ``projectNumber`` (1 call; prefer one ``list_projects`` for many).

        The match is checked again here on the exact number: Tic-Tac may compare without case."""
        matches = [p for p in self.list_projects(project_number=project_number) if p.project_number == project_number]
        if len(matches) > 1:
            raise ApiRejectedError(f"{TARGET_NAME} has {len(matches)} projects with project number {project_number}")
        return matches[0] if matches else None

    def create_project(self, values: Mapping[str, Any],
                       activities: Sequence[Mapping[str, Any]] = ()) -> str:
        """``POST /v1/projects`` with the project and its activities inline (TT:233); returns the
        new ``projectId``. The new activities' ids come with the next ``list_projects``."""
        body: dict[str, Any] = {name: value for name, value in values.items() if name in PROJECT_POST_FIELDS}
        if activities:
            body["activities"] = [{k: v for k, v in a.items() if k in ACTIVITY_FIELDS} for a in activities]
        response = self._write("POST", PROJECTS_PATH, body, counted_as=PROJECTS_PATH)
        return _single_value(response, "projectId")

    def update_project(self, project_id: str, changes: Mapping[str, Any]) -> bool:
        """``PUT /v1/projects/{projectid}`` (only ``PROJECT_PUT_FIELDS``); False on 304."""
        body = {name: value for name, value in changes.items() if name in PROJECT_PUT_FIELDS}
        response = self._write(UPDATE_METHOD, f"{PROJECTS_PATH}/{_segment(project_id)}", body,
                               counted_as=f"{PROJECTS_PATH}/{{id}}")
        return response.status_code != UNCHANGED_STATUS

    # --- activities ------------------------------------------------------------------------------
    def list_activities(self, project_id: str) -> list[Activity]:
        """The activities of one project (1 call)."""
        response = self._list(ACTIVITIES_PATH, params={"projectId": project_id})
        if response is None:
            return []
        return parse_activities(response.content, xml=_is_xml(response), project_id=project_id)

    def create_activity(self, project_id: str, values: Mapping[str, Any]) -> str:
        """``POST /v1/activities`` for an existing project; returns the new ``activityId``."""
        body = {"projectId": project_id} | {k: v for k, v in values.items() if k in ACTIVITY_FIELDS}
        return _single_value(self._write("POST", ACTIVITIES_PATH, body, counted_as=ACTIVITIES_PATH), "activityId")

    def update_activity(self, activity_id: str, changes: Mapping[str, Any]) -> bool:
        """``PUT /v1/activities/{id}`` (only ``ACTIVITY_FIELDS``); False on 304."""
        body = {name: value for name, value in changes.items() if name in ACTIVITY_FIELDS}
        response = self._write(UPDATE_METHOD, f"{ACTIVITIES_PATH}/{_segment(activity_id)}", body,
                               counted_as=f"{ACTIVITIES_PATH}/{{id}}")
        return response.status_code != UNCHANGED_STATUS

    # --- entries ---------------------------------------------------------------------------------
    def read_entries(
        self,
        start: date,
        end: date,
        *,
        days_changed_within: int | None = None,
        time_only: bool = False,
        project_id: str | None = None,
        user_id: str | None = None,
    ) -> list[Entry]:
        """``GET /v2/entries`` for entry dates ``start``..``end`` (1 call). ``days_changed_within``
        (1-90) keeps entries created or changed within that many days (TT:690)."""
        if start > end:
            raise ValueError("start must not be after end")
        params: dict[str, Any] = {"startdate": start.isoformat(), "enddate": end.isoformat()}
        if days_changed_within is not None:
            if not 1 <= days_changed_within <= DAYS_CHANGED_MAX:
                raise ValueError(f"days_changed_within must be 1..{DAYS_CHANGED_MAX}")
            params |= {name: str(days_changed_within) for name in DAYS_CHANGED_PARAMS}
        if time_only:
            params["timeOnly"] = "true"
        if project_id:
            params["projectId"] = project_id
        if user_id:
            params["userId"] = user_id
        response = self._list(ENTRIES_PATH, params=params)
        return [] if response is None else parse_entries(response.content, xml=_is_xml(response))


def days_changed_within(since: datetime, now: datetime) -> int | None:
    """The ``daysChangedWithin`` that covers everything changed since ``since`` with a day of
    overlap (design note §1.7 #9); None when that is beyond 90 days (read the whole window)."""
    days = math.ceil(max((now - since).total_seconds(), 0) / 86400) + 1
    return days if days <= DAYS_CHANGED_MAX else None


def _created_among(users: Sequence[User], requested: str, body: Mapping[str, Any]) -> User | None:
    """The user a POST created when Tic-Tac stored another userName (e.g. an e-mail → letters only):
    the one whose ``longUserName`` is the requested name, else the one with the employeeNumber sent."""
    wanted = requested.casefold()
    for user in users:
        if str(user.fields.get("longUserName") or "").casefold() == wanted:
            return user
    number = str(body.get("employeeNumber") or "")
    matches = [user for user in users if number and user.employee_number == number]
    return matches[0] if len(matches) == 1 else None


def _segment(value: str) -> str:
    """A path segment: every reserved character percent-encoded (an id never changes the path)."""
    return quote(value, safe="")


__all__ = [
    "TARGET_NAME", "Activity", "BudgetExhaustedError", "CreatedUser", "Entry", "Project", "RetryPolicy", "TicTacClient",
    "User", "days_changed_within", "parse_activities", "parse_entries", "parse_projects", "parse_users",
]
