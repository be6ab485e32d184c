"""A Tic-Tac Mobile sandbox: the documented Tic-Tac Mobile REST API plus a switch for every gap.

In-memory state seeded with the API document's own samples (``sandbox/tictac_seed.py``), call
counters, a rolling 24-hour call limit (429 with ``Retry-After``), a simulated clock, and fault
switches (status codes incl. 503 with ``Retry-After``, delay, dropped connections, fail after
apply). Served on loopback by ``python -m sandbox.tictac --port N``; tests, the demo and the
future connector drive it over HTTP. The API lives under ``/api/rest`` exactly as in the document
(``https://www.tictacmobile.com/api/rest/v1/users`` → ``http://127.0.0.1:N/api/rest/v1/users``),
the control endpoints under ``/_sandbox``.

Endpoints (``/api/rest`` prefix; every one needs ``Authorization: Bearer <API code>``):

* ``GET /v1/hello``
* ``GET|POST /v1/users``, ``GET|PUT /v1/users/{userName}`` — POST answers ``{"userPassword": …}``;
  the sandbox keeps only a SHA-256 of the password and never lists it.
* ``GET|POST /v1/projects`` (``number``, ``projectNumber``, ``vatnumber``, ``includeBudget``,
  ``includeMembers``; POST may carry ``activities`` inline), ``GET|PUT /v1/projects/{projectid}``,
  ``PUT /v1/projects`` (with ``projectId`` in the body: the document's "PUT: Updates (partially a
  project" sits on the collection URL).
* ``GET /v1/activities?projectId=…``, ``POST /v1/activities``, ``PUT /v1/activities/{id}``.
* ``GET|POST /v1/entries``, ``GET /v1/entries/{projectid}`` (version 1, its own XML shape);
  ``GET|POST /v2/entries``, ``GET /v2/entries/{projectid}``, ``DELETE /v2/entries/{rowid}?userId=…``
  (``startdate``/``enddate`` mandatory; ``projectId``, ``userId`` (v2), ``daysChangedWithin``,
  ``timeOnly``). Rows carry ``attested``/``invoiced`` as documented; new rows are neither.

Responses are JSON or XML by ``Accept`` (406 with the document's text otherwise); request bodies
JSON or XML by ``Content-Type`` (415 otherwise; XML parsed with defusedxml). Errors are plain text,
like the document's "HTTP/1.1 404 Not Found. No user with id anderslm".

Control endpoints (no auth, never counted): ``POST /_sandbox/reset``, ``GET /_sandbox/calls``,
``GET /_sandbox/state``, ``POST|DELETE /_sandbox/faults``, ``GET|POST /_sandbox/switches``,
``GET|POST /_sandbox/limit`` (``{"limit": N}``, ``{"forget": true}``), ``GET|POST /_sandbox/clock``
(``{"advance_seconds": s}``, ``{"advance_hours": h}``, ``{"now": iso}``), ``POST
/_sandbox/api-code`` (``{"code": …}`` or ``{"expires": iso}`` to mint one), ``POST /_sandbox/rows``
(``{"table": "users"|"projects"|"activities"|"entries", "rows": […]}``), ``PATCH|DELETE
/_sandbox/entries/{rowid}`` (what a Tic-Tac user does in the app: edit, attest, delete), ``POST
/_sandbox/taken-usernames`` (user names held by other Tic-Tac customers).

The call limit
--------------
Default 500 calls per rolling 24 hours of the sandbox clock (the document: "The number of calls
is limited to 500 per 24 hours. Additional call will produce an error code and no data."). Every
answer of the API counts, refusals (401, 400, 404 …) included (switch ``count_errors``), a 429
itself not (``count_throttled``); the check comes after authentication, so a wrong code gets its
401, not a 429. Over the limit the answer is 429 with ``Retry-After`` = seconds until enough
counted calls are older than 24 h. Answers made by a fault switch before the API (503 …) are not
counted; a fault "after apply" is. There is one company and one valid API code, so one count
(whether Tic-Tac counts per code or per company is not modelled). ``POST /_sandbox/clock`` moves
the clock, so a reset of the budget is tested without waiting.

Open behaviours and their switches
----------------------------------
The document leaves these open (most are listed in the design note ``tictac.md`` §1.7); each has a
switch (``POST /_sandbox/switches {"name": value}``), the **default** first. ``SWITCHES`` below is
the machine-readable list.

==========================  ==============================================  ==================================
switch                      values (default first)                          question
==========================  ==============================================  ==================================
``max_rows``                **0** (no paging, no cap) | N                   Paging? No paging parameter is
                                                                            documented; with N, lists of users,
                                                                            projects, activities and entries are
                                                                            silently cut after N rows (as the
                                                                            invoices resource caps at 1000).
``inactive_in_lists``       **included** | omitted                          Are inactive users/projects/
                                                                            activities listed? (by id always)
``partial_put``             **merge** | replace                             PUT with a partial body: keep or blank
                                                                            the documented fields not sent.
``number_case``             **exact** | insensitive                         Case of employeeNumber/projectNumber
                                                                            in ``?projectNumber=`` and in the
                                                                            uniqueness check.
``username_case``           **insensitive** | exact                         Case of userName in paths, ``userId``
                                                                            and the uniqueness check.
``numbers_unique``          **true** | false                                Is a second user with the same
                                                                            employeeNumber (project with the same
                                                                            projectNumber) refused (400)?
``deleted_entries``         **vanish** | zeroed                             A deleted entry disappears, or stays
                                                                            with quantity 0 and counts as changed.
``project_number``          **writable** | read_only | absent               projectNumber (§1.7 #1): accepted in
                                                                            POST/PUT and returned; ignored on
                                                                            write; or not in answers at all (the
                                                                            query parameter still filters).
``employee_number``         **post** | put_only | read_only                 employeeNumber (§1.7 #2): writable in
                                                                            POST and PUT; only PUT; never.
``username_with_at``        **derive** | keep | reject                      userName with "@" (§1.7 #3): stored as
                                                                            longUserName, userName = its letters
                                                                            and digits (as annatictacse); kept; 400.
``project_activities``      **activities** | Activities | none              Activities in GET /v1/projects JSON
                                                                            (§1.7 #4): key ``activities``, key
                                                                            ``Activities``, or never (XML always
                                                                            ``<Activities>`` unless none).
``activity_names``          **unique** | duplicates                         Activity names unique per project
                                                                            (§1.7 #5)? unique: 400 on a clash.
``update_method``           **put** | put_or_post                           "POST … to write or update" (§1.7 #7):
                                                                            POST on an item URL is 405 or a PUT.
``unchanged_write``         **200** | 304                                   A PUT that changes nothing (§1.7 #8).
``days_changed_param``      **both** | daysChangedWithin |                  Which name is read (§1.7 #9); the other
                            daysChangedWithinStr                            is ignored.
``days_changed_unit``       **calendar** | hours                            "within N days from today": since
                                                                            00:00 N days ago, or N×24 h.
``attest_is_change``        **false** | true                                Does attesting/invoicing an entry make
                                                                            it "changed" for daysChangedWithin?
``count_errors``            **true** | false                                Do 4xx answers (401, 400, 404 …) count
                                                                            against the limit (§1.7 #10)?
``count_throttled``         **false** | true                                Do 429 answers count against it?
``create_status``           **201** | 200                                   Status of a successful POST (the
                                                                            table says 201, samples show none).
``undocumented_fields``     **ignore** | reject | store                     Body fields a call does not document
                                                                            (§1.7 #12): dropped silently; 400
                                                                            ``Unrecognized field "x"``; stored when
                                                                            they are fields of the object.
``projects_json``           **array** | wrapped                             JSON of GET /v1/projects (§1.7 #13):
                                                                            bare array or {"ticTacProjects": […]}.
``empty_list``              **200** | 204                                   An empty list: 200 with [] / empty
                                                                            wrapper, or 204 No Content.
``default_format``          **json** | reject                               Accept missing or ``*/*``: JSON, or
                                                                            406 ("must be either …").
``activities_query``        **project_required** | all                      GET /v1/activities without projectId:
                                                                            400, or every project's activities.
``error_format``            **text** | json                                 Error body: plain text, or
                                                                            {"message": …}.
``members_writable``        **false** | true                                Project members (§1.7 #11): read with
                                                                            includeMembers only, or also set by
                                                                            ``"members": [userName, …]`` in a
                                                                            project POST/PUT (unknown user: 404).
``booleans``                **json** | strings | capitalized | numbers      Booleans in JSON answers (isActive,
                                                                            attested …): true/false, "true"/
                                                                            "false", "True"/"False", or 1/0.
==========================  ==============================================  ==================================

The company: ``POST /_sandbox/reset {"company": "document"}`` (default) seeds the document's samples;
``{"company": "hand_made"}`` a company set up by hand before TimeBridge arrived (``tictac_seed``:
users and projects with the ERP's numbers typed in, "A/S" and "AS/" names, a user and a project
without a number, an absence project, attested and unattested registrations of yesterday).

Answers outside the document come from the fault switch (``POST /_sandbox/faults``, shared with the
SmartAPI sandbox): any status with a ``body`` of its own (``""`` = empty), ``headers`` (a 3xx's
``Location``), a JSON list of ``size`` bytes, JSON nested ``nested`` levels deep, an error body that
``echo``-es the request's headers (the API code with them), and ``after_apply`` + ``drop``: a write
processed and its answer lost.

Other choices (no switch): PUT users accepts every field of the user object (the document: "You
only need to supply the fields you want to change") except userName/longUserName/corpid; PUT
projects accepts the PUT sample's fields; POST users the POST sample's fields; activities the
fields of their POST/PUT samples (also inline in a project POST). ``priceMode`` accepts 0/1/2,
``PRICE_IN_PROJECT``/``PRICELIST``/``PER_USER_IN_PRICELIST`` and the sample's ``PRICEINPROJECT``;
GET /v1/activities shows it as a number (as its sample), projects as a name (as theirs). New ids
are 13-digit millisecond numbers as strings. A POST entry without an activity is refused. Deleting
an attested entry is refused (attested times "kan inte ändras"). Dates and "today" are UTC.
XML shapes the document does not show are guessed: users ``<TicTacUsers><TicTacUser>``, activities
``<Activities><Activity>``, POST answers ``<projectId>…</projectId>`` (the JSON key as root), PUT
answers ``<result>…</result>``, errors stay plain text. ``includeMembers=true`` adds
``"members": [userName, …]`` and ``includeBudget=true`` ``"budget": {"hours", "amount"}`` (shapes not
documented). Lists are sorted as documented (users and projects by name); entries by date, same-day
rows in the order they were made (as the samples). Entries made through the API are
``TicTacTime`` rows, neither attested nor invoiced, "changed" when made.
"""

from __future__ import annotations

import argparse
import base64
import copy
import hashlib
import hmac
import json
import logging
import math
import os
import re
import secrets
import threading
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from xml.sax.saxutils import escape

from defusedxml import ElementTree as SafeET
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from sandbox import tictac_seed as seed
from sandbox.smartapi import Fault, FaultInjector, Gate

API = "/api/rest"
DEFAULT_DAILY_LIMIT = 500
WINDOW_SECONDS = 24 * 3600
#: Signs the sandbox's own JWTs; not a secret (nothing real ever accepts these codes).
_SIGNING_KEY = b"tictac-sandbox-signing-key-not-a-secret"
ACCEPT_TEXT = "Accept header in the requerst must be either application/xml or application/json"  # sic, TT:66


def _iso(text: str) -> str:
    """An ISO timestamp, UTC when it names no zone."""
    moment = datetime.fromisoformat(text)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_api_code(*, subject: str = "timebridge@sandbox", expires: datetime | None = None) -> str:
    """A JWT-shaped API code ("xxxxxxxxxx.yyyyyyyyyyy.zzzzzzzzzzz", TT:39), HS256-signed by the sandbox."""
    expires = expires or datetime(2100, 1, 1, tzinfo=UTC)
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = {"sub": subject, "corpid": seed.COMPANY["corpid"].strip(), "exp": int(expires.timestamp())}
    payload = _b64url(json.dumps(claims).encode())
    signature = hmac.new(_SIGNING_KEY, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64url(signature)}"


DEFAULT_API_CODE = make_api_code()


def _claims(code: str) -> dict[str, Any]:
    try:
        payload = code.split(".")[1]
        claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return claims
    except (IndexError, ValueError):
        return {}


# --- switches --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Switch:
    default: Any
    choices: tuple[Any, ...] | None  # None: any integer >= 0
    question: str


SWITCHES: dict[str, Switch] = {
    "max_rows": Switch(0, None, "paging: 0 = whole lists, N = lists silently cut after N rows"),
    "inactive_in_lists": Switch("included", ("included", "omitted"), "inactive records in lists"),
    "partial_put": Switch("merge", ("merge", "replace"), "PUT with a partial body"),
    "number_case": Switch("exact", ("exact", "insensitive"), "case of employeeNumber/projectNumber"),
    "username_case": Switch("insensitive", ("insensitive", "exact"), "case of userName"),
    "numbers_unique": Switch(True, (True, False), "duplicate employeeNumber/projectNumber refused"),
    "deleted_entries": Switch("vanish", ("vanish", "zeroed"), "what a deleted entry looks like"),
    "project_number": Switch("writable", ("writable", "read_only", "absent"), "projectNumber in the API"),
    "employee_number": Switch("post", ("post", "put_only", "read_only"), "employeeNumber writable where"),
    "username_with_at": Switch("derive", ("derive", "keep", "reject"), "a userName with @"),
    "project_activities": Switch("activities", ("activities", "Activities", "none"), "activities in projects"),
    "activity_names": Switch("unique", ("unique", "duplicates"), "activity names per project"),
    "update_method": Switch("put", ("put", "put_or_post"), "POST on an item URL"),
    "unchanged_write": Switch(200, (200, 304), "a PUT that changes nothing"),
    "days_changed_param": Switch(
        "both", ("both", "daysChangedWithin", "daysChangedWithinStr"), "name of the change-window parameter"),
    "days_changed_unit": Switch("calendar", ("calendar", "hours"), "what 'within N days' means"),
    "attest_is_change": Switch(False, (False, True), "attesting/invoicing counts as a change"),
    "count_errors": Switch(True, (True, False), "4xx answers count against the limit"),
    "count_throttled": Switch(False, (False, True), "429 answers count against the limit"),
    "create_status": Switch(201, (201, 200), "status of a successful POST"),
    "undocumented_fields": Switch("ignore", ("ignore", "reject", "store"), "body fields a call does not document"),
    "projects_json": Switch("array", ("array", "wrapped"), "JSON shape of GET /v1/projects"),
    "empty_list": Switch(200, (200, 204), "an empty list"),
    "default_format": Switch("json", ("json", "reject"), "Accept missing or */*"),
    "activities_query": Switch("project_required", ("project_required", "all"), "activities without projectId"),
    "error_format": Switch("text", ("text", "json"), "error body"),
    "members_writable": Switch(False, (False, True), "project members settable in POST/PUT"),
    "booleans": Switch("json", ("json", "strings", "capitalized", "numbers"), "how JSON answers write booleans"),
}


def _default_switches() -> dict[str, Any]:
    return {name: switch.default for name, switch in SWITCHES.items()}


# --- the objects' fields ---------------------------------------------------------------------
#: GET /v1/users fields in the document's order, with the blank value of a new user (johnnyboy, TT:168-193).
USER_FIELDS: dict[str, Any] = {
    "userName": "", "longUserName": "", "firstName": "", "lastName": "", "emailAdress": "", "employeeNumber": "",
    "nationalIDNumber": "", "userType": "CUSR", "corpid": seed.COMPANY["corpid"], "partTime": 0, "isActive": True,
    "locale": "sv_SE", "workgroup": "", "costcenter": "", "department": "", "team": "", "hourcost": 0.0,
    "flexsaldo": 0.0, "flexsaldoDate": None, "mileCompensation": 0.0, "startDate": None, "endDate": None,
    "priceListId": None, "agendaListNumber": 0,
}
#: GET /v1/projects fields in the XML sample's order (TT:268-306, 316-321), ``projectNumber`` after
#: ``projid`` (TT:243; not in the sample), the November 2023 additions (TT:248) before created/changed.
PROJECT_FIELDS: dict[str, Any] = {
    "name": "", "projid": "", "projectNumber": "", "description": "", "internalDescription": "", "isActive": True,
    "projectLead": "", "ourAccount": "", "ourCategory": "", "ourResultArea": "", "hourRate": 0, "mileRate": 0,
    "ourReference": "", "invoiceCorpname": "", "invoiceCustno": "", "invoiceRefname": "", "invoiceEmail": "",
    "invoicePhone": "", "invoiceAdrrow1": "", "invoiceAdrrow2": "", "invoiceAdrrow3": "", "invoiceAdrrow4": "",
    "invoiceAdrrow5": "", "invoicePaydays": 0, "invoiceAltBankAccount": "", "invoiceAltPayCondition": "",
    "invoiceCustomerVATno": "", "accountNumber": "", "startDate": "", "isOtherCurrActive": False,
    "otherCurrency": "", "conversionRate": 1, "otherCurrHourRate": 0, "otherCurrMileRate": 0, "invoiceLang": "",
    "billing": "HOUR_RATE", "priceMode": "PRICE_IN_PROJECT", "priceListId": "", "vatStatus": 1, "fixedPrice": 0,
    "hasCustomerEntry": False, "postalcode": "", "city": "", "country": "", "glnNumber": "", "orgNumber": "",
    "invoiceDelivery": "", "created": "", "changed": "",
}
#: GET /v1/activities fields in its sample's order (TT:417-428).
ACTIVITY_FIELDS: dict[str, Any] = {
    "name": "", "actid": "", "description": "", "hourRate": 0.0, "otherCurrHourRate": 0.0, "accountNumber": "",
    "isActive": True, "type": "WORKHOURS", "priceMode": "PRICE_IN_PROJECT", "priceListId": "",
}
#: An activity inside a project, in the project sample's order (TT:323-333).
INLINE_ACTIVITY_ORDER = ("name", "actid", "type", "description", "hourRate", "priceMode", "priceListId",
                         "accountNumber", "isActive")
ENTRY_QUANTITIES = {"TicTacTime": ("hours",), "TicTacCost": ("costvatexcl", "costvatincl"),
                    "TicTacMile": ("distance",), "TicTacSale": ("amount",)}

#: What each write call documents (design note §1.5); the rest follows ``undocumented_fields``.
USER_POST = {"firstName", "lastName", "userName", "emailAdress", "phoneNumber", "nationalIDNumber"}
USER_PUT = (set(USER_FIELDS) - {"userName", "longUserName", "corpid", "employeeNumber"}) | {"phoneNumber"}
PROJECT_POST = {"name", "customer", "description", "hourRate", "activities"}
PROJECT_PUT = {"name", "description", "isActive", "hourRate", "otherCurrHourRate", "priceMode", "priceListId"}
ACTIVITY_WRITE = {"name", "description", "hourRate", "otherCurrHourRate", "accountNumber", "isActive", "type",
                  "priceMode", "priceListId"}
IDENTITY = {"userName", "longUserName", "corpid", "projid", "actid", "created", "changed", "projectNumber",
            "employeeNumber"}

PRICE_MODES = {"PRICE_IN_PROJECT": 0, "PRICELIST": 1, "PER_USER_IN_PRICELIST": 2}
PRICE_MODE_SPELLINGS = {"PRICEINPROJECT": "PRICE_IN_PROJECT", "0": "PRICE_IN_PROJECT", "1": "PRICELIST",
                        "2": "PER_USER_IN_PRICELIST"} | {name: name for name in PRICE_MODES}


# --- state -----------------------------------------------------------------------------------
@dataclass
class TicTacState:
    """The sandbox's world. ``configured_api_code``/``configured_limit`` are what a reset returns to."""

    configured_api_code: str = DEFAULT_API_CODE
    configured_limit: int = DEFAULT_DAILY_LIMIT
    api_code: str = DEFAULT_API_CODE
    daily_limit: int = DEFAULT_DAILY_LIMIT
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    projects: dict[str, dict[str, Any]] = field(default_factory=dict)
    activities: dict[str, dict[str, Any]] = field(default_factory=dict)
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    taken_usernames: set[str] = field(default_factory=set)
    switches: dict[str, Any] = field(default_factory=_default_switches)
    calls: Counter[str] = field(default_factory=Counter)
    window: list[float] = field(default_factory=list)  # sandbox-clock times of the calls counted
    faults: list[Fault] = field(default_factory=list)
    gate: Gate = field(default_factory=Gate)  # requests held by a ``hold`` fault
    clock_offset: float = 0.0
    last_id: int = 0
    in_flight: int = 0  # API requests being served (the shared FaultInjector counts them)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def reset(self, *, seeded: bool = True, company: str = "document") -> None:
        if company not in ("document", "hand_made"):
            raise ValueError(f"unknown company {company!r}: document or hand_made")
        self.gate.opened.set()  # requests held by a ``hold`` fault end first
        with self.lock:
            self.api_code = self.configured_api_code
            self.daily_limit = self.configured_limit
            self.switches = _default_switches()
            self.clock_offset = 0.0
            for table in (self.users, self.projects, self.activities, self.entries, self.calls):
                table.clear()
            self.taken_usernames.clear()
            self.window.clear()
            self.faults.clear()
            if seeded and company == "hand_made":
                self.insert("users", seed.HAND_MADE_USERS)
                self.insert("projects", seed.HAND_MADE_PROJECTS)
                self.insert("activities", seed.HAND_MADE_ACTIVITIES)
                self.insert("entries", seed.hand_made_entries((self.now() - timedelta(days=1)).date().isoformat()))
            elif seeded:
                self.insert("users", seed.USERS)
                self.insert("projects", seed.PROJECTS)
                self.insert("activities", seed.ACTIVITIES)
                self.insert("entries", seed.ENTRIES)

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.clock_offset)

    def stamp(self) -> str:
        return self.now().strftime("%Y-%m-%d %H:%M")

    def new_id(self) -> str:
        self.last_id = max(self.last_id + 1, int(self.now().timestamp() * 1000))
        return str(self.last_id)

    def insert(self, table: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Store rows as given (blank fields filled in); used by the seed and ``/_sandbox/rows``."""
        made = []
        with self.lock:
            for given in rows:
                row = copy.deepcopy(given)
                if table == "users":
                    row = USER_FIELDS | {"longUserName": row.get("userName", "")} | row
                    self.users[row["userName"]] = row
                elif table == "projects":
                    row = PROJECT_FIELDS | {"projid": row.get("projid") or self.new_id()} | row
                    row.setdefault("members", [])
                    row.setdefault("budget", {"hours": 0.0, "amount": 0.0})
                    self.projects[row["projid"]] = row
                elif table == "activities":
                    row = ACTIVITY_FIELDS | {"actid": row.get("actid") or self.new_id()} | row
                    if row.get("projid") not in self.projects:
                        raise ValueError(f"activity {row['actid']}: no project {row.get('projid')}")
                    self.activities[row["actid"]] = row
                elif table == "entries":
                    row = _entry_values(row)
                    row = {"rowid": row.get("rowid") or self.new_id(), "spec": "", "attested": False,
                           "invoiced": False} | row
                    changed = row.pop("changed", None) or row.get("_changed") or f"{row['date']}T17:00:00"
                    row["_changed"] = _iso(changed)
                    row["_created"] = _iso(row.get("_created") or changed)
                    row.setdefault("_deleted", False)
                    self.entries[row["rowid"]] = row
                else:
                    raise ValueError(f"unknown table {table}")
                made.append(row)
        return made

    # -- limit --
    def _in_window(self) -> list[float]:
        horizon = self.now().timestamp() - WINDOW_SECONDS
        self.window[:] = [t for t in self.window if t > horizon]
        return sorted(self.window)

    def used(self) -> int:
        return len(self._in_window())

    def retry_after(self) -> int:
        """Seconds until a call would be accepted again (0 when it would be now)."""
        window = self._in_window()
        excess = len(window) - self.daily_limit
        if excess < 0:
            return 0
        if self.daily_limit <= 0:
            return WINDOW_SECONDS
        frees_at = window[excess] + WINDOW_SECONDS
        return max(1, math.ceil(frees_at - self.now().timestamp()))

    def count_call(self) -> None:
        self.window.append(self.now().timestamp())

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    if fault.skip:  # let this many matching requests through first
                        fault.skip -= 1
                        continue
                    fault.times -= 1
                    return fault
        return None


# --- request plumbing ------------------------------------------------------------------------
class _RejectError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        self.status, self.message, self.headers = status, message, headers or {}


@dataclass
class Call:
    """One API request, with its body already read (the handlers run synchronously under the lock)."""

    request: Request
    state: TicTacState
    xml: bool
    body: bytes

    @property
    def query(self) -> Any:
        return self.request.query_params

    @property
    def params(self) -> Any:
        return self.request.path_params

    def switch(self, name: str) -> Any:
        return self.state.switches[name]


def _state(request: Request) -> TicTacState:
    state: TicTacState = request.app.state.tictac
    return state


def _authorize(request: Request, state: TicTacState) -> None:
    header = request.headers.get("Authorization", "")
    if not header:
        raise _RejectError(401, "Missing API code: send it in the Authorization header as 'Bearer <API code>'")
    scheme, _, code = header.partition(" ")
    if scheme.lower() != "bearer" or not code.strip():
        raise _RejectError(401, "Use Bearer authentication: 'Authorization: Bearer <API code>'")
    if not hmac.compare_digest(code.strip().encode(), state.api_code.encode()):
        raise _RejectError(401, "Invalid API code")
    expires = _claims(state.api_code).get("exp")
    if isinstance(expires, int | float) and state.now().timestamp() >= expires:
        raise _RejectError(401, "The API code has expired")


def _wants_xml(request: Request, state: TicTacState) -> bool:
    accept = request.headers.get("Accept", "").lower()
    kinds = [part.split(";")[0].strip() for part in accept.split(",") if part.strip()]
    for kind in kinds:
        if kind in ("application/json", "text/json"):
            return False
        if kind in ("application/xml", "text/xml"):
            return True
    if (not kinds or "*/*" in kinds or "application/*" in kinds) and state.switches["default_format"] == "json":
        return False
    raise _RejectError(406, ACCEPT_TEXT)


def _error(state: TicTacState, exc: _RejectError) -> Response:
    if state.switches["error_format"] == "json":
        return JSONResponse({"message": exc.message}, status_code=exc.status, headers=exc.headers)
    return PlainTextResponse(exc.message, status_code=exc.status, headers=exc.headers)


def _api(handler: Callable[[Call], Response]) -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> Response:
        state = _state(request)
        try:
            body = await request.body()
        except ClientDisconnect:  # the client gave up (timeout fault): nobody to answer
            return Response(status_code=499)
        with state.lock:
            state.calls[f"{request.method} {request.url.path}"] += 1
            try:
                _authorize(request, state)
                xml = _wants_xml(request, state)
                wait = state.retry_after()
                if wait:
                    if state.switches["count_throttled"]:
                        state.count_call()
                    raise _RejectError(429, f"Too many requests: the limit of {state.daily_limit} calls per 24 hours "
                                       f"is reached. Try again in {wait} seconds.", {"Retry-After": str(wait)})
                response = handler(Call(request, state, xml, body))
            except _RejectError as exc:
                if exc.status != 429 and state.switches["count_errors"]:
                    state.count_call()
                return _error(state, exc)
            if response.status_code < 400 or state.switches["count_errors"]:
                state.count_call()
            return response

    return endpoint


# --- bodies ----------------------------------------------------------------------------------
def _body(call: Call) -> dict[str, Any]:
    kind = call.request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if kind in ("application/json", "text/json"):
        try:
            body = json.loads(call.body or b"null")
        except ValueError:
            raise _RejectError(400, "The request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise _RejectError(400, "The request body must be a JSON object")
        return body
    if kind in ("application/xml", "text/xml"):
        try:
            root = SafeET.fromstring(call.body)
        except Exception:  # ParseError, and defusedxml's refusals (DTDs, entities)
            raise _RejectError(400, "The request body is not valid XML") from None
        return _xml_object(root)
    raise _RejectError(415, "Content-Type must be application/json or application/xml")


def _xml_object(element: Any) -> dict[str, Any]:
    """``<project><name>X</name><activities>…</activities><activities>…</activities></project>`` →
    ``{"name": "X", "activities": [{…}, {…}]}``: repeated children and ``activities`` become lists."""
    result: dict[str, Any] = {}
    for child in element:
        value: Any = _xml_object(child) if len(child) else (child.text or "")
        if child.tag in result:
            previous = result[child.tag]
            result[child.tag] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            result[child.tag] = [value] if child.tag == "activities" else value
    return result


def _coerce(name: str, value: Any, blank: Any) -> Any:
    """A written value in the type the object holds (the samples send numbers as strings: "900", "80")."""
    try:
        if isinstance(blank, bool):
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("true", "false"):
                return str(value).lower() == "true"
            raise ValueError
        if isinstance(blank, int | float):
            if isinstance(value, bool):
                raise ValueError
            number = float(value)
            if not math.isfinite(number):
                raise ValueError
            return int(number) if number.is_integer() and isinstance(blank, int) else number
        if value is None:
            return None if blank is None else ""
        if isinstance(value, dict | list):
            raise ValueError
        return str(value)
    except (TypeError, ValueError):
        raise _RejectError(400, f"Invalid value for {name}: {value!r}") from None


def _price_mode(value: Any) -> str:
    mode = PRICE_MODE_SPELLINGS.get(str(value).strip().upper())
    if mode is None:
        raise _RejectError(400, f"Invalid value for priceMode: {value!r}")
    return mode


def _writable(call: Call, body: dict[str, Any], documented: set[str], fields: dict[str, Any]) -> dict[str, Any]:
    """The body's fields that this call stores, coerced; the others follow ``undocumented_fields``."""
    policy = call.switch("undocumented_fields")
    values: dict[str, Any] = {}
    for name, value in body.items():
        if name not in documented:
            if policy == "reject":
                raise _RejectError(400, f'Unrecognized field "{name}"')
            if policy == "ignore" or name not in fields or name in IDENTITY:
                continue
        if name == "priceMode":
            values[name] = _price_mode(value)
        elif isinstance(fields.get(name), list):
            values[name] = value
        elif name in fields:
            values[name] = _coerce(name, value, fields[name])
        else:
            values[name] = value
    return values


def _fold(value: str, how: str) -> str:
    return value.casefold() if how == "insensitive" else value


# --- answers ---------------------------------------------------------------------------------
def _xml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return escape(str(value))


def _xml_items(pairs: list[tuple[str, Any]]) -> str:
    lines = []
    for tag, value in pairs:
        if isinstance(value, list):
            lines.append(f"<{tag}>\n{_xml_items(value)}\n</{tag}>")
        else:
            lines.append(f"<{tag}>{_xml_value(value)}</{tag}>")
    return "\n".join(lines)


def _xml_response(root: str, pairs: list[tuple[str, Any]], *, status: int = 200, standalone: bool = False) -> Response:
    head = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>' if standalone
            else '<?xml version="1.0" encoding="UTF-8" ?>')
    inner = _xml_items(pairs)
    text = f"{head}\n<{root}>\n{inner}\n</{root}>\n" if inner else f"{head}\n<{root}></{root}>\n"
    return Response(text.encode("utf-8"), status_code=status, media_type="application/xml; charset=UTF-8")


def _fields(obj: dict[str, Any]) -> list[tuple[str, Any]]:
    return list(obj.items())


_BOOLEAN_FORMS: dict[str, tuple[Any, Any]] = {"strings": ("true", "false"), "capitalized": ("True", "False"),
                                              "numbers": (1, 0)}


def _booleans(payload: Any, how: str) -> Any:
    """``payload`` with every boolean written as the ``booleans`` switch says."""
    if isinstance(payload, bool):
        return _BOOLEAN_FORMS[how][0 if payload else 1]
    if isinstance(payload, dict):
        return {key: _booleans(value, how) for key, value in payload.items()}
    if isinstance(payload, list):
        return [_booleans(value, how) for value in payload]
    return payload


def _answer(call: Call, payload: Any, root: str, pairs: list[tuple[str, Any]], status: int = 200,
            *, standalone: bool = False) -> Response:
    if call.xml:
        return _xml_response(root, pairs, status=status, standalone=standalone)
    how = call.switch("booleans")
    return JSONResponse(payload if how == "json" else _booleans(payload, how), status_code=status)


def _list_answer(call: Call, rows: list[Any], json_payload: Callable[[list[Any]], Any], root: str,
                 item_pairs: Callable[[Any], tuple[str, Any]], *, standalone: bool = False) -> Response:
    cap = int(call.switch("max_rows"))
    if cap:
        rows = rows[:cap]
    if not rows and call.switch("empty_list") == 204:
        return Response(status_code=204)
    return _answer(call, json_payload(rows), root, [item_pairs(row) for row in rows], standalone=standalone)


def _xml_text(root: str, text: str, status: int = 200) -> Response:
    body = f'<?xml version="1.0" encoding="UTF-8" ?>\n<{root}>{escape(text)}</{root}>\n'
    return Response(body.encode("utf-8"), status_code=status, media_type="application/xml; charset=UTF-8")


def _single(call: Call, key: str, value: str, status: int = 200) -> Response:
    """``{"projectId":"1551796845913"}`` (TT:383); in XML the key is the root element (a guess)."""
    return _xml_text(key, value, status) if call.xml else JSONResponse({key: value}, status_code=status)


def _created(call: Call, key: str, value: str) -> Response:
    return _single(call, key, value, call.switch("create_status"))


def _message(call: Call, text: str) -> Response:
    """``"Project updated"`` (TT:398): a JSON string; ``<result>…</result>`` in XML (a guess)."""
    return _xml_text("result", text) if call.xml else JSONResponse(text)


# --- hello -----------------------------------------------------------------------------------
def hello(call: Call) -> Response:
    return _single(call, "HelloFromTicTacAPI",
                   "Hello! from version 2020-12-02 started at Wed Dec 02 13:18:01 CET 2020")


# --- users -----------------------------------------------------------------------------------
def _public_user(row: dict[str, Any]) -> dict[str, Any]:
    return {name: row.get(name, blank) for name, blank in USER_FIELDS.items()}


def _find_user(call: Call, user_id: str) -> dict[str, Any] | None:
    how = call.switch("username_case")
    wanted = _fold(user_id, how)
    return next((row for name, row in call.state.users.items() if _fold(name, how) == wanted), None)


def _user(call: Call, user_id: str) -> dict[str, Any]:
    row = _find_user(call, user_id)
    if row is None:
        raise _RejectError(404, f"No user with id {user_id}")  # the document's own text (TT:78)
    return row


def _check_employee_number(call: Call, number: str, own: str | None) -> None:
    if not number or not call.switch("numbers_unique"):
        return
    how = call.switch("number_case")
    for name, row in call.state.users.items():
        if name != own and row.get("employeeNumber") and _fold(row["employeeNumber"], how) == _fold(number, how):
            raise _RejectError(400, f"employeeNumber {number} is already used by user {name}")


def list_users(call: Call) -> Response:
    rows = sorted(call.state.users.values(), key=lambda r: (r["lastName"].casefold(), r["firstName"].casefold()))
    if call.switch("inactive_in_lists") == "omitted":
        rows = [row for row in rows if row["isActive"]]
    return _list_answer(call, [_public_user(r) for r in rows], lambda rows: rows, "TicTacUsers",
                        lambda row: ("TicTacUser", _fields(row)))


def get_user(call: Call) -> Response:
    row = _public_user(_user(call, call.params["userid"]))
    return _answer(call, row, "TicTacUser", _fields(row))


def create_user(call: Call) -> Response:
    body = _body(call)
    documented = USER_POST | ({"employeeNumber"} if call.switch("employee_number") == "post" else set())
    values = _writable(call, body, documented, USER_FIELDS)
    for name in ("userName", "firstName", "lastName"):
        if not str(body.get(name) or "").strip():
            raise _RejectError(400, f"{name} is required")
    sent = str(body["userName"]).strip()
    user_name, long_name = sent, sent
    if "@" in sent:
        policy = call.switch("username_with_at")
        if policy == "reject":
            raise _RejectError(400, f"Invalid userName {sent}: use letters and digits only")
        if policy == "derive":
            folded = unicodedata.normalize("NFKD", sent.lower()).encode("ascii", "ignore").decode()
            user_name = re.sub(r"[^a-z0-9]", "", folded)
    how = call.switch("username_case")
    taken = {_fold(name, how) for name in call.state.users} | {_fold(name, how) for name in call.state.taken_usernames}
    if _fold(user_name, how) in taken:
        raise _RejectError(400, f"User name {user_name} is already taken")
    _check_employee_number(call, str(values.get("employeeNumber") or ""), None)
    password = secrets.token_urlsafe(9)
    row = USER_FIELDS | {k: v for k, v in values.items() if k in USER_FIELDS}
    row |= {"userName": user_name, "longUserName": long_name, "corpid": seed.COMPANY["corpid"],
            "phoneNumber": str(values.get("phoneNumber") or ""),
            "passwordSha256": hashlib.sha256(password.encode()).hexdigest()}
    call.state.users[user_name] = row
    return _created(call, "userPassword", password)


def _put_values(call: Call, row: dict[str, Any], values: dict[str, Any], documented: set[str],
                fields: dict[str, Any]) -> dict[str, Any]:
    """The object after a PUT: merged, or (``partial_put=replace``) documented fields not sent blanked."""
    updated = dict(row)
    if call.switch("partial_put") == "replace":
        for name in documented:
            if name in fields and name not in IDENTITY:
                updated[name] = fields[name]
    updated.update(values)
    return updated


def _unchanged(call: Call, before: dict[str, Any], after: dict[str, Any]) -> Response | None:
    if before == after and call.switch("unchanged_write") == 304:
        return Response(status_code=304)
    return None


def _item_post_allowed(call: Call) -> None:
    if call.request.method == "POST" and call.switch("update_method") == "put":
        raise _RejectError(405, "Method Not Allowed")


def update_user(call: Call) -> Response:
    _item_post_allowed(call)
    row = _user(call, call.params["userid"])
    body = _body(call)
    if "userName" in body and _fold(str(body["userName"]), call.switch("username_case")) != _fold(
            row["userName"], call.switch("username_case")):
        raise _RejectError(400, "userName cannot be changed")
    documented = USER_PUT | {"userName"}
    if call.switch("employee_number") in ("post", "put_only"):
        documented |= {"employeeNumber"}
    values = _writable(call, body, documented, USER_FIELDS | {"phoneNumber": ""})
    values.pop("userName", None)
    if "employeeNumber" in values:
        _check_employee_number(call, values["employeeNumber"], row["userName"])
    after = _put_values(call, row, values, documented - {"userName"}, USER_FIELDS)
    unchanged = _unchanged(call, row, after)
    if unchanged is not None:
        return unchanged
    row.clear()
    row.update(after)
    return _message(call, "User updated")


# --- projects and activities -----------------------------------------------------------------
def _project(call: Call, projid: str) -> dict[str, Any]:
    row = call.state.projects.get(projid)
    if row is None:
        raise _RejectError(404, f"No project with id {projid}")
    return row


def _activities_of(call: Call, projid: str | None) -> list[dict[str, Any]]:
    rows = [a for a in call.state.activities.values() if projid is None or a["projid"] == projid]
    if call.switch("inactive_in_lists") == "omitted":
        rows = [a for a in rows if a["isActive"]]
    return sorted(rows, key=lambda a: a["name"].casefold())


def _public_activity(row: dict[str, Any], *, inline: bool) -> dict[str, Any]:
    if inline:
        return {name: row.get(name, ACTIVITY_FIELDS[name]) for name in INLINE_ACTIVITY_ORDER}
    public = {name: row.get(name, blank) for name, blank in ACTIVITY_FIELDS.items()}
    public["priceMode"] = PRICE_MODES.get(public["priceMode"], public["priceMode"])  # a number, as TT:426
    return public


def _public_project(call: Call, row: dict[str, Any]) -> dict[str, Any]:
    public = {name: row.get(name, blank) for name, blank in PROJECT_FIELDS.items()}
    if call.switch("project_number") == "absent":
        del public["projectNumber"]
    if _flag(call, "includeBudget"):
        public["budget"] = dict(row["budget"])
    if _flag(call, "includeMembers"):
        public["members"] = list(row["members"])
    key = call.switch("project_activities")
    if key != "none":
        public[key] = [_public_activity(a, inline=True) for a in _activities_of(call, row["projid"])]
    return public


def _project_pairs(public: dict[str, Any]) -> tuple[str, Any]:
    pairs: list[tuple[str, Any]] = []
    for name, value in public.items():
        if name in ("activities", "Activities"):
            if value:
                pairs.append(("Activities", [("Activity", _fields(a)) for a in value]))
        elif name == "members":
            pairs.append(("members", [("member", m) for m in value]))
        elif name == "budget":
            pairs.append(("budget", _fields(value)))
        else:
            pairs.append((name, value))
    return ("TicTacProject", pairs)


def _flag(call: Call, name: str) -> bool:
    text = call.query.get(name)
    if text is None or text == "":
        return False
    if text.lower() not in ("true", "false"):
        raise _RejectError(400, f"{name} must be true or false")
    return bool(text.lower() == "true")


def list_projects(call: Call) -> Response:
    rows = list(call.state.projects.values())
    if call.switch("inactive_in_lists") == "omitted":
        rows = [row for row in rows if row["isActive"]]
    number = call.query.get("projectNumber")
    if number is not None:
        how = call.switch("number_case")
        rows = [row for row in rows if row["projectNumber"] and _fold(row["projectNumber"], how) == _fold(number, how)]
    vat = call.query.get("vatnumber")
    if vat:
        digits = re.sub(r"\D", "", vat)
        rows = [row for row in rows if digits and digits in re.sub(r"\D", "", row["orgNumber"] +
                                                                    "|" + row["invoiceCustomerVATno"])]
    rows.sort(key=lambda r: r["name"].casefold())
    if "number" in call.query:
        try:
            most = int(call.query["number"])
            if not 1 <= most <= 10000:
                raise ValueError
        except ValueError:
            raise _RejectError(400, "number must be a positive integer up to 10000") from None
        rows = sorted(rows, key=lambda r: r["changed"], reverse=True)[:most]
    public = [_public_project(call, row) for row in rows]
    wrap = call.switch("projects_json") == "wrapped"
    return _list_answer(call, public, (lambda rows: {"ticTacProjects": rows}) if wrap else (lambda rows: rows),
                        "TicTacProjects", _project_pairs)


def get_project(call: Call) -> Response:
    public = _public_project(call, _project(call, call.params["projectid"]))
    tag, pairs = _project_pairs(public)
    return _answer(call, public, tag, pairs)


def _check_project_number(call: Call, number: str, own: str | None) -> None:
    if not number or not call.switch("numbers_unique"):
        return
    how = call.switch("number_case")
    for projid, row in call.state.projects.items():
        if projid != own and row["projectNumber"] and _fold(row["projectNumber"], how) == _fold(number, how):
            raise _RejectError(400, f"projectNumber {number} is already used by project {projid}")


def _check_activity_name(call: Call, projid: str, name: str, own: str | None) -> None:
    if call.switch("activity_names") != "unique":
        return
    for actid, row in call.state.activities.items():
        if row["projid"] == projid and actid != own and row["name"].casefold() == name.casefold():
            raise _RejectError(400, f"Activity {name} already exists in project {projid}")


def _new_activity(call: Call, projid: str, body: Any, *, documented: set[str]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise _RejectError(400, "Each activity must be an object")
    values = _writable(call, body, documented, ACTIVITY_FIELDS)
    values.pop("projectId", None)
    name = str(values.get("name") or "").strip()
    if not name:
        raise _RejectError(400, "name is required for an activity")
    _check_activity_name(call, projid, name, None)
    row = ACTIVITY_FIELDS | values | {"name": name, "actid": call.state.new_id(), "projid": projid}
    call.state.activities[row["actid"]] = row
    return row


def _members(call: Call, names: Any) -> list[str]:
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise _RejectError(400, "members must be a list of user names")
    return [_user(call, name)["userName"] for name in names]


def create_project(call: Call) -> Response:
    body = _body(call)
    writable_number = call.switch("project_number") == "writable"
    documented = PROJECT_POST | ({"projectNumber"} if writable_number else set())
    documented |= {"members"} if call.switch("members_writable") else set()
    values = _writable(call, body, documented, PROJECT_FIELDS | {"customer": "", "activities": []})
    members = _members(call, values.pop("members", []))
    name = str(values.get("name") or "").strip()
    if not name:
        raise _RejectError(400, "name is required")
    number = str(body.get("projectNumber") or "") if writable_number else ""
    _check_project_number(call, number, None)
    activities = values.pop("activities", []) or []
    if not isinstance(activities, list):
        raise _RejectError(400, "activities must be a list")
    for activity in activities:  # validated before anything is stored
        if not isinstance(activity, dict):
            raise _RejectError(400, "Each activity must be an object")
        if not str(activity.get("name") or "").strip():
            raise _RejectError(400, "name is required for an activity")
        _writable(call, activity, ACTIVITY_WRITE, ACTIVITY_FIELDS)
    names = [str(a["name"]).strip().casefold() for a in activities]
    if call.switch("activity_names") == "unique" and len(set(names)) != len(names):
        raise _RejectError(400, "Activity names must be unique within a project")
    customer = values.pop("customer", None)
    projid = call.state.new_id()
    row = PROJECT_FIELDS | {k: v for k, v in values.items() if k in PROJECT_FIELDS}
    row |= {"name": name, "projid": projid, "projectNumber": number, "created": call.state.stamp(),
            "changed": call.state.stamp(), "members": members, "budget": {"hours": 0.0, "amount": 0.0}}
    if customer:
        row["invoiceCorpname"] = customer
    call.state.projects[projid] = row
    for activity in activities:
        _new_activity(call, projid, activity, documented=ACTIVITY_WRITE)
    return _created(call, "projectId", projid)


def update_project(call: Call) -> Response:
    _item_post_allowed(call)
    body = _body(call)
    projid = call.params.get("projectid") or str(body.get("projectId") or body.get("projid") or "")
    if not projid:
        raise _RejectError(400, "projectId is required")
    row = _project(call, projid)
    writable_number = call.switch("project_number") == "writable"
    documented = PROJECT_PUT | {"projectId", "projid"} | ({"projectNumber"} if writable_number else set())
    documented |= {"members"} if call.switch("members_writable") else set()
    values = _writable(call, {k: v for k, v in body.items() if k not in ("projectId", "projid")}, documented,
                       PROJECT_FIELDS)
    if "members" in values:
        values["members"] = _members(call, values["members"])
    if writable_number and "projectNumber" in body:
        values["projectNumber"] = str(body["projectNumber"] or "")
        _check_project_number(call, values["projectNumber"], projid)
    if "name" in values and not str(values["name"]).strip():
        raise _RejectError(400, "name cannot be empty")
    after = _put_values(call, row, values, PROJECT_PUT, PROJECT_FIELDS)
    unchanged = _unchanged(call, row, after)
    if unchanged is not None:
        return unchanged
    after["changed"] = call.state.stamp()
    row.clear()
    row.update(after)
    return _message(call, "Project updated")


def list_activities(call: Call) -> Response:
    projid = call.query.get("projectId")
    if not projid and call.switch("activities_query") == "project_required":
        raise _RejectError(400, "projectId is required")
    if projid:
        _project(call, projid)
    rows = [_public_activity(a, inline=False) for a in _activities_of(call, projid or None)]
    return _list_answer(call, rows, lambda rows: {"activities": rows}, "Activities",
                        lambda row: ("Activity", _fields(row)))


def create_activity(call: Call) -> Response:
    body = _body(call)
    projid = str(body.get("projectId") or "")
    if not projid:
        raise _RejectError(400, "projectId is required")
    project = _project(call, projid)
    row = _new_activity(call, projid, body, documented=ACTIVITY_WRITE | {"projectId"})
    project["changed"] = call.state.stamp()
    return _created(call, "activityId", row["actid"])


def update_activity(call: Call) -> Response:
    _item_post_allowed(call)
    actid = call.params["actid"]
    row = call.state.activities.get(actid)
    if row is None:
        raise _RejectError(404, f"No activity with id {actid}")
    values = _writable(call, _body(call), ACTIVITY_WRITE, ACTIVITY_FIELDS)
    if "name" in values:
        values["name"] = str(values["name"]).strip()
        if not values["name"]:
            raise _RejectError(400, "name cannot be empty")
        _check_activity_name(call, row["projid"], values["name"], actid)
    after = _put_values(call, row, values, ACTIVITY_WRITE, ACTIVITY_FIELDS)
    unchanged = _unchanged(call, row, after)
    if unchanged is not None:
        return unchanged
    row.clear()
    row.update(after)
    call.state.projects[row["projid"]]["changed"] = call.state.stamp()
    return _single(call, "activityId", actid)


# --- entries ---------------------------------------------------------------------------------
def _date(text: str | None, name: str) -> date:
    if not text:
        raise _RejectError(400, f"{name} is mandatory (YYYY-MM-DD)")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise _RejectError(400, f"Invalid {name}: {text}, use the format YYYY-MM-DD") from None


def _public_entry(state: TicTacState, row: dict[str, Any]) -> dict[str, Any]:
    project = state.projects.get(row["projid"], {})
    activity = state.activities.get(row["actid"], {})
    user = state.users.get(row["userid"], {})
    public = {"type": row["type"], "userid": row["userid"], "rowid": row["rowid"],
              "projectname": f"{project.get('name', '')}/{activity.get('name', '')}",
              "projid": row["projid"], "actid": row["actid"], "date": row["date"], "spec": row["spec"]}
    for name in ENTRY_QUANTITIES.get(row["type"], ()):
        public[name] = row.get(name, "0.0")
    public |= {"username": f"{user.get('firstName', '')} {user.get('lastName', '')}".strip(),
               "attested": row["attested"], "invoiced": row["invoiced"]}
    return public


def _changed_since(call: Call) -> datetime | None:
    which = call.switch("days_changed_param")
    names = ("daysChangedWithin", "daysChangedWithinStr") if which == "both" else (which,)
    text = next((call.query[name] for name in names if call.query.get(name)), None)
    if text is None:
        return None
    try:
        days = int(text)
        if not 1 <= days <= 90:
            raise ValueError
    except ValueError:
        raise _RejectError(400, "daysChangedWithin must be a positive integer up to 90") from None
    now = call.state.now()
    if call.switch("days_changed_unit") == "hours":
        return now - timedelta(days=days)
    return datetime.combine(now.date() - timedelta(days=days), datetime.min.time(), UTC)


def _entries(call: Call, *, version: int) -> list[dict[str, Any]]:
    start = _date(call.query.get("startdate"), "startdate")
    end = _date(call.query.get("enddate"), "enddate")
    if start > end:
        raise _RejectError(400, "startdate must not be after enddate")
    since = _changed_since(call)
    projid = call.params.get("projectid") or (call.query.get("projectId") if version == 2 else None)
    user = call.query.get("userId") if version == 2 else None
    how = call.switch("username_case")
    time_only = _flag(call, "timeOnly")
    rows = []
    for row in call.state.entries.values():
        if row["_deleted"] or not start <= date.fromisoformat(row["date"]) <= end:
            continue
        if since is not None and datetime.fromisoformat(row["_changed"]) < since:
            continue
        if projid and row["projid"] != projid:
            continue
        if user and _fold(row["userid"], how) != _fold(user, how):
            continue
        if time_only and row["type"] != "TicTacTime":
            continue
        rows.append(_public_entry(call.state, row))
    return sorted(rows, key=lambda r: r["date"])  # stable: same-day rows keep their order, as the samples


def list_entries_v2(call: Call) -> Response:
    rows = _entries(call, version=2)
    return _list_answer(call, rows, lambda rows: {"ticTacRows": rows}, "workItemModel",
                        lambda row: ("ticTacRows", _fields(row)), standalone=True)


V1_ORDER = ("date", "rowid", "username", "userid", "projectname", "projid", "actid", "spec")


def list_entries_v1(call: Call) -> Response:
    rows = _entries(call, version=1)

    def pairs(row: dict[str, Any]) -> tuple[str, Any]:  # TT:615-652: the type is the element name
        ordered = [(name, row[name]) for name in V1_ORDER]
        ordered += [(name, row[name]) for name in ENTRY_QUANTITIES.get(row["type"], ())]
        return (row["type"], [*ordered, ("attested", row["attested"]), ("invoiced", row["invoiced"])])

    return _list_answer(call, rows, lambda rows: {"ticTacRows": rows}, "TicTacRows", pairs)


def create_entry(call: Call) -> Response:
    body = _body(call)
    user_id = str(body.get("targetUserId") or "")
    if not user_id:
        raise _RejectError(400, "targetUserId is required")
    user = _user(call, user_id)
    if body.get("projectId"):
        project = _project(call, str(body["projectId"]))
    elif body.get("projectName"):
        named = [p for p in call.state.projects.values() if p["name"] == body["projectName"]]
        if not named:
            raise _RejectError(404, f"No project with name {body['projectName']}")
        project = named[0]
    else:
        raise _RejectError(400, "projectId or projectName is required")
    if not project["isActive"]:
        raise _RejectError(400, f"Project {project['name']} is not active")
    candidates = [a for a in call.state.activities.values() if a["projid"] == project["projid"]]
    if body.get("activityId"):
        activity = next((a for a in candidates if a["actid"] == str(body["activityId"])), None)
    elif body.get("activityName"):
        activity = next((a for a in candidates if a["name"] == body["activityName"]), None)
    else:
        raise _RejectError(400, "activityId or activityName is required")
    if activity is None:
        raise _RejectError(404, f"No activity {body.get('activityId') or body.get('activityName')} "
                           f"in project {project['name']}")
    day = _date(str(body.get("date") or ""), "date")
    try:
        hours = float(str(body.get("hours")))
        if not 0 < hours <= 24:
            raise ValueError
    except ValueError:
        raise _RejectError(400, f"Invalid value for hours: {body.get('hours')!r}") from None
    now = call.state.now().isoformat()
    [row] = call.state.insert("entries", [{
        "type": "TicTacTime", "userid": user["userName"], "projid": project["projid"], "actid": activity["actid"],
        "date": day.isoformat(), "spec": str(body.get("spec") or ""), "hours": str(hours),
        "source": str(body.get("source") or ""), "attested": False, "invoiced": False,
        "_created": now, "_changed": now, "rowid": call.state.new_id()}])
    return _created(call, "createditemid", row["rowid"])


def _delete_entry(state: TicTacState, row: dict[str, Any]) -> None:
    if state.switches["deleted_entries"] == "vanish":
        row["_deleted"] = True
    else:
        for name in ENTRY_QUANTITIES.get(row["type"], ()):
            row[name] = "0.0"
    row["_changed"] = state.now().isoformat()


def delete_entry(call: Call) -> Response:
    rowid = call.params["rowid"]
    user = call.query.get("userId")
    if not user:
        raise _RejectError(400, "userId is required")
    row = call.state.entries.get(rowid)
    how = call.switch("username_case")
    if row is None or row["_deleted"] or _fold(row["userid"], how) != _fold(user, how):
        raise _RejectError(404, f"No entry with id {rowid}")
    if row["attested"]:
        raise _RejectError(400, f"Entry {rowid} is attested and cannot be deleted")
    _delete_entry(call.state, row)
    return PlainTextResponse("OK")


# --- control endpoints -----------------------------------------------------------------------
async def _control_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    return json.loads(raw) if raw else {}


def _control(handler: Callable[[TicTacState, Request, dict[str, Any]], Any]) -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> Response:
        state = _state(request)
        body = await _control_body(request)
        with state.lock:
            try:
                result = handler(state, request, body)
            except (KeyError, ValueError, TypeError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
        return result if isinstance(result, Response) else JSONResponse(result)

    return endpoint


def _dump(row: dict[str, Any]) -> dict[str, Any]:
    shown = {k: v for k, v in row.items() if k != "passwordSha256"}
    if "passwordSha256" in row:
        shown["hasPassword"] = True
    return shown


@_control
def control_reset(state: TicTacState, request: Request, body: dict[str, Any]) -> Any:
    state.reset(seeded=body.get("seeded", True), company=str(body.get("company") or "document"))
    return {"ok": True}


@_control
def control_calls(state: TicTacState, request: Request, body: dict[str, Any]) -> Any:
    return dict(state.calls)


@_control
def control_state(state: TicTacState, request: Request, body: dict[str, Any]) -> Any:
    return {"users": [_dump(r) for r in state.users.values()], "projects": list(state.projects.values()),
            "activities": list(state.activities.values()), "entries": list(state.entries.values()),
            "taken_usernames": sorted(state.taken_usernames)}


@_control
def control_faults(state: TicTacState, request: Request, body: dict[str, Any]) -> Any:
    if request.method == "DELETE":
        state.faults.clear()
    else:
        fault = Fault(**body)
        if fault.hold and state.gate.opened.is_set():
            state.gate = Gate()
        state.faults.append(fault)
    return {"faults": len(state.faults)}


@_control
def control_held(state: TicTacState, request: Request, body: dict[str, Any]) -> Any:
    """How many requests a ``hold`` fault keeps waiting right now."""
    return {"held": state.gate.held}


@_control
def control_release(state: TicTacState, request: Request, body: dict[str, Any]) -> Any:
    """Let every held request go on (later ``hold`` faults hold again)."""
    state.gate.opened.set()
    return {"ok": True}


@_control
def control_switches(state: TicTacState, request: Request, body: dict[str, Any]) -> Any:
    for name, value in body.items():
        switch = SWITCHES.get(name)
        if switch is None:
            raise ValueError(f"unknown switch {name}; known: {', '.join(SWITCHES)}")
        if switch.choices is None:
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} takes an integer >= 0")
        elif value not in switch.choices or type(value) is not type(switch.default):
            raise ValueError(f"{name} takes one of {list(switch.choices)}")
    state.switches.update(body)
    return dict(state.switches)


def _limit_report(state: TicTacState) -> dict[str, Any]:
    used = state.used()
    return {"limit": state.daily_limit, "used": used, "remaining": max(0, state.daily_limit - used),
            "retry_after": state.retry_after(), "now": state.now().isoformat()}


@_control
def control_limit(state: TicTacState, request: Request, body: dict[str, Any]) -> Any:
    if "limit" in body:
        if not isinstance(body["limit"], int) or body["limit"] < 0:
            raise ValueError("limit takes an integer >= 0")
        state.daily_limit = body["limit"]
    if body.get("forget"):
        state.window.clear()
    return _limit_report(state)


@_control
def control_clock(state: TicTacState, request: Request, body: dict[str, Any]) -> Any:
    if "now" in body:
        wanted = datetime.fromisoformat(body["now"])
        wanted = wanted if wanted.tzinfo else wanted.replace(tzinfo=UTC)
        state.clock_offset = (wanted - datetime.now(UTC)).total_seconds()
    state.clock_offset += float(body.get("advance_seconds", 0)) + 3600 * float(body.get("advance_hours", 0))
    return {"now": state.now().isoformat()}


@_control
def control_api_code(state: TicTacState, request: Request, body: dict[str, Any]) -> Any:
    if "code" in body:
        state.api_code = str(body["code"])
    elif "expires" in body:
        expires = datetime.fromisoformat(body["expires"])
        state.api_code = make_api_code(expires=expires if expires.tzinfo else expires.replace(tzinfo=UTC))
    return {"code": state.api_code}


@_control
def control_rows(state: TicTacState, request: Request, body: dict[str, Any]) -> Any:
    rows = state.insert(body["table"], body["rows"])
    return {"ids": [row.get("userName") or row.get("rowid") or row.get("actid") or row.get("projid")
                    for row in rows]}


@_control
def control_taken_usernames(state: TicTacState, request: Request, body: dict[str, Any]) -> Any:
    state.taken_usernames.update(body["userNames"])
    return {"taken_usernames": sorted(state.taken_usernames)}


def _entry_values(values: dict[str, Any]) -> dict[str, Any]:
    """Entry fields as the sandbox keeps them: quantities as strings ("1.0"), dates checked."""
    values = dict(values)
    if "date" in values:
        values["date"] = date.fromisoformat(values["date"]).isoformat()
    if "type" in values and values["type"] not in ENTRY_QUANTITIES:
        raise ValueError(f"type must be one of {list(ENTRY_QUANTITIES)}")
    for name in ("hours", "costvatexcl", "costvatincl", "distance", "amount"):
        if name in values:
            values[name] = str(float(values[name]))
    for name in ("attested", "invoiced"):  # a text is kept as it is: an answer outside the document, on purpose
        if name in values and not isinstance(values[name], bool | str):
            raise ValueError(f"{name} must be true or false (or a text, to answer outside the document)")
    return values


@_control
def control_entry(state: TicTacState, request: Request, body: dict[str, Any]) -> Any:
    """What a Tic-Tac user does in the app: PATCH edits (and attests), DELETE deletes."""
    row = state.entries.get(request.path_params["rowid"])
    if row is None or row["_deleted"]:
        return JSONResponse({"error": "no such entry"}, status_code=404)
    if request.method == "DELETE":
        _delete_entry(state, row)
        return {"ok": True}
    explicit = body.pop("changed", None)
    body = _entry_values(body)
    edits = {k: v for k, v in body.items() if row.get(k) != v}
    row.update(body)
    if explicit:
        row["_changed"] = _iso(explicit)
    elif set(edits) - {"attested", "invoiced"} or (edits and state.switches["attest_is_change"]):
        row["_changed"] = state.now().isoformat()
    return _public_entry(state, row) | {"_changed": row["_changed"]}


def create_app(state: TicTacState | None = None) -> ASGIApp:
    state = state or TicTacState()
    state.reset()
    v1, v2 = f"{API}/v1", f"{API}/v2"
    routes = [
        Route(f"{v1}/hello", _api(hello), methods=["GET"]),
        Route(f"{v1}/users", _api(list_users), methods=["GET"]),
        Route(f"{v1}/users", _api(create_user), methods=["POST"]),
        Route(f"{v1}/users/{{userid}}", _api(get_user), methods=["GET"]),
        Route(f"{v1}/users/{{userid}}", _api(update_user), methods=["PUT", "POST"]),
        Route(f"{v1}/projects", _api(list_projects), methods=["GET"]),
        Route(f"{v1}/projects", _api(create_project), methods=["POST"]),
        Route(f"{v1}/projects", _api(update_project), methods=["PUT"]),
        Route(f"{v1}/projects/{{projectid}}", _api(get_project), methods=["GET"]),
        Route(f"{v1}/projects/{{projectid}}", _api(update_project), methods=["PUT", "POST"]),
        Route(f"{v1}/activities", _api(list_activities), methods=["GET"]),
        Route(f"{v1}/activities", _api(create_activity), methods=["POST"]),
        Route(f"{v1}/activities/{{actid}}", _api(update_activity), methods=["PUT", "POST"]),
        Route(f"{v1}/entries", _api(list_entries_v1), methods=["GET"]),
        Route(f"{v1}/entries", _api(create_entry), methods=["POST"]),
        Route(f"{v1}/entries/{{projectid}}", _api(list_entries_v1), methods=["GET"]),
        Route(f"{v2}/entries", _api(list_entries_v2), methods=["GET"]),
        Route(f"{v2}/entries", _api(create_entry), methods=["POST"]),
        Route(f"{v2}/entries/{{projectid}}", _api(list_entries_v2), methods=["GET"]),
        Route(f"{v2}/entries/{{rowid}}", _api(delete_entry), methods=["DELETE"]),
        Route("/_sandbox/reset", control_reset, methods=["POST"]),
        Route("/_sandbox/calls", control_calls, methods=["GET"]),
        Route("/_sandbox/state", control_state, methods=["GET"]),
        Route("/_sandbox/faults", control_faults, methods=["POST", "DELETE"]),
        Route("/_sandbox/held", control_held, methods=["GET"]),
        Route("/_sandbox/release", control_release, methods=["POST"]),
        Route("/_sandbox/switches", control_switches, methods=["GET", "POST"]),
        Route("/_sandbox/limit", control_limit, methods=["GET", "POST"]),
        Route("/_sandbox/clock", control_clock, methods=["GET", "POST"]),
        Route("/_sandbox/api-code", control_api_code, methods=["GET", "POST"]),
        Route("/_sandbox/rows", control_rows, methods=["POST"]),
        Route("/_sandbox/taken-usernames", control_taken_usernames, methods=["POST"]),
        Route("/_sandbox/entries/{rowid}", control_entry, methods=["PATCH", "DELETE"]),
    ]
    app = Starlette(routes=routes)
    app.state.tictac = state
    return FaultInjector(app, state)  # type: ignore[arg-type]  # duck-typed: calls, lock, take_fault, in_flight


class _QuietFaults(logging.Filter):
    """Keep the deliberate connection drops of the fault switch out of the error log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], ConnectionAbortedError))


def main() -> None:
    import uvicorn

    logging.getLogger("uvicorn.error").addFilter(_QuietFaults())
    parser = argparse.ArgumentParser(description="Tic-Tac Mobile sandbox on loopback")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8792)
    parser.add_argument("--daily-limit", type=int, default=DEFAULT_DAILY_LIMIT)
    parser.add_argument("--api-code", default=os.environ.get("TICTAC_SANDBOX_API_CODE") or DEFAULT_API_CODE,
                        help="the one valid API code (default: the sandbox's own JWT, DEFAULT_API_CODE)")
    args = parser.parse_args()
    state = TicTacState(configured_api_code=args.api_code, configured_limit=args.daily_limit)
    app = create_app(state)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()

__all__ = ["API", "DEFAULT_API_CODE", "DEFAULT_DAILY_LIMIT", "SWITCHES", "TicTacState", "create_app",
           "make_api_code"]
