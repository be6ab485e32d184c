"""A SmartAPI sandbox: the documented SmartAPI behaviour plus TimeBridge's decisions for the gaps.

In-memory state, seeded data, call counters, fault switches (429 with Retry-After, 5xx,
latency, dropped connections) and behaviour switches (``Switches``: one per behaviour SmartTID's
documentation leaves open — page-size cap, UID lifetime and the answer to an expired UID, 400
messages echoing the request headers, paging of ``/getjobledgerentries``, ``Filter`` syntax).
Served on loopback by ``python -m sandbox.smartapi``; tests and the demo drive it over HTTP, the
control endpoints live under ``/_sandbox``.

The sandbox reads SmartTID's documentation on its own (``sandbox/smartapi_model.py``: paths, Create
parameters, their kinds and object fields, keys) and imports nothing of TimeBridge's product code:
a connector's wrong guess must meet SmartTID's answer, not its own reflection. POST creates,
PUT /{ID} updates, bodies keyed by Create-function parameter names (the document's inference); where
the document leaves a write or the job-ledger methods open, a switch decides.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import random
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from sandbox import seed
from sandbox.smartapi_model import (
    EMPLOYEE_JOB_LEDGER_PATH,
    EMPLOYEE_TIME_LEDGER_PATH,
    JOB_LEDGER_MARK_PATH,
    JOB_LEDGER_READ_PATH,
    RESOURCE_OF_PATH,
    RESOURCES,
    BodyRules,
    RecordType,
    RefusedError,
    blank,
    read_body,
)

DEFAULT_API_KEY = "sandbox-api-key-0123456789abcdef0123456789abcdef0123456789abcdef01"
DEFAULT_CUSTOMER_KEY = "sandbox-customer-key"

_FILTER = re.compile(r"^\s*(\w+)\s*=\s*'((?:[^']|'')*)'\s*$")
_UNQUOTED_FILTER = re.compile(r"^\s*(\w+)\s*=\s*([\w.-]+)\s*$")


@dataclass
class Switches:
    """Behaviours SmartTID's documentation leaves open; each can be set through ``/_sandbox/switches``.

    The defaults are TimeBridge's main guesses; the tests run the product against the others too.
    """

    #: Server-side maximum rows per page (``None`` = no cap: ``limit`` is honoured as asked).
    max_page_size: int | None = None
    #: A UID expires this many seconds after the login (``None`` = never).
    uid_lifetime_seconds: float | None = None
    #: A UID expires after this many data calls (``None`` = never); deterministic for tests.
    uid_lifetime_calls: int | None = None
    #: The answer to an expired or unknown UID: ``401`` (default) or ``400`` ("UID not valid").
    expired_uid_status: int = 401
    #: Every 400 message quotes the request headers (as some servers echo the request).
    echo_headers_in_400: bool = False
    #: ``/getjobledgerentries``: ``paged`` (offset/limit + x-pagination like every list),
    #: ``all`` (every entry in one answer, no header, offset ignored) or ``capped`` (at most
    #: ``max_page_size`` entries, no header, offset ignored).
    job_ledger_mode: str = "paged"
    #: ``Filter``: ``lenient`` (``Field='value'`` and unquoted literals, booleans as true/false/1/0),
    #: ``strict`` (only the documented quoted form; anything else is a 400) or ``ignored``.
    filter_syntax: str = "lenient"
    #: ``OrderFieldName``/``OrderDirection`` (documented): honoured, or ignored (rows in storage order).
    order_honoured: bool = True
    #: Share of data and login requests answered ``503`` at random (0-1; reproducible sequence).
    fault_rate: float = 0.0
    #: Milliseconds every data and login request waits before it is served (a real server's
    #: round trip; the benchmarks use 20). Requests wait concurrently, as on a real server.
    latency_ms: float = 0.0
    # --- writes (SmartAPI's POST/PUT bodies are undocumented; sandbox/smartapi_model.py) ---------
    #: A body field that is no Create parameter: ``refuse`` (400) or ``ignore`` (dropped silently,
    #: as ASP.NET's model binding does with a property the model lacks).
    unknown_parameters: str = "refuse"
    #: JSON types in a body: ``strict`` (NVARCHAR → string, INT/DECIMAL → number, BIT → boolean) or
    #: ``lenient`` (a number given for a string, or a numeric string for a number, is converted).
    body_types: str = "strict"
    #: Text longer than its NVARCHAR(n): ``refuse`` (400) or ``truncate`` (silently, as a stored
    #: procedure's parameter does).
    overlong_text: str = "refuse"
    #: ``POST`` for a record whose key exists: ``refuse`` (400) or ``update`` (an upsert, as the
    #: SOAP Create functions do).
    post_existing: str = "refuse"
    #: Dates written through a body as the GET objects show them: ``datetime``
    #: (``2026-12-31T00:00:00``) or ``date`` (``2026-12-31``); both styles appear in SmartAPI's examples.
    date_fields: str = "datetime"
    #: Whether the employee object shows ``WorkCalendarCode`` (its readable part does not; the
    #: value is stored either way).
    employee_work_calendar_shown: bool = True
    #: What a create must carry: ``names`` (the key and the name/description) or ``usual`` (each
    #: Create page's "usual minimum": an employee's dtEmployedStartDate and sTemplateCode, a job's
    #: sJobTemplate and sStatus).
    create_minimum: str = "names"
    #: Methods of the two job-ledger routes (undocumented: the walkthrough's screenshots are
    #: missing): ``GET``, ``POST``, ``PUT`` or ``any``.
    job_ledger_read_method: str = "GET"
    job_ledger_mark_method: str = "POST"

    def body_rules(self) -> BodyRules:
        return BodyRules(unknown_parameters=self.unknown_parameters, body_types=self.body_types,
                         overlong_text=self.overlong_text, date_fields=self.date_fields)


@dataclass
class Fault:
    """Make matching requests fail: ``status`` (+ ``retry_after``), ``delay`` seconds, ``drop``
    the connection mid-response, or ``after_apply`` (perform the request, then fail). With a
    ``status``, the answer's body is ``body`` ("" = empty) — or a JSON list of ``size`` bytes, or
    JSON nested ``nested`` levels deep, or (``echo``) a text that quotes the request's headers —
    with ``headers`` added (a redirect's ``Location``)."""

    method: str
    path: str
    status: int | None = None
    retry_after: int | None = None
    delay: float = 0.0
    drop: bool = False
    after_apply: bool = False
    times: int = 1
    body: str | None = None
    headers: dict[str, str] | None = None
    size: int = 0
    nested: int = 0
    echo: bool = False
    skip: int = 0  # matching requests let through before the fault applies
    #: hold each matching request until ``POST /_sandbox/release`` (``GET /_sandbox/held`` counts them):
    #: requests that overlap for certain, without a delay that only probably makes them overlap
    hold: bool = False
    #: the answer's text (default ``Sandbox fault <status>``): e.g. hidden characters a log must escape
    message: str = ""

    def answer(self, request_headers: list[tuple[bytes, bytes]]) -> tuple[bytes, bytes]:
        """The body and its content type."""
        if self.size:
            row = b'{"rowid":"1","name":"' + b"x" * 200 + b'"}'
            count = max(1, self.size // (len(row) + 1))
            return b"[" + b",".join([row] * count) + b"]", b"application/json"
        if self.nested:
            return b"[" * self.nested + b"]" * self.nested, b"application/json"
        if self.echo:
            quoted = "; ".join(f"{k.decode('latin-1')}: {v.decode('latin-1')}" for k, v in request_headers)
            return f"Bad request. The request was: {quoted}".encode(), b"text/plain; charset=utf-8"
        if self.body is not None:
            kind = b"application/json" if self.body[:1] in ("[", "{", '"') else b"text/plain; charset=utf-8"
            return self.body.encode(), kind
        return (self.message or f"Sandbox fault {self.status}").encode(), b"text/plain; charset=utf-8"

    def matches(self, method: str, path: str) -> bool:
        return self.times > 0 and self.method in (method, "*") and path.startswith(self.path)


class Gate:
    """Requests a ``hold`` fault keeps waiting until the test opens the gate."""

    def __init__(self) -> None:
        self.held = 0
        self.opened = threading.Event()
        self._lock = threading.Lock()

    async def wait(self) -> None:
        with self._lock:
            self.held += 1
        try:
            while not self.opened.is_set():
                await asyncio.sleep(0.005)
        finally:
            with self._lock:
                self.held -= 1


@dataclass
class SandboxState:
    api_key: str = DEFAULT_API_KEY
    customer_key: str = DEFAULT_CUSTOMER_KEY
    uids: dict[str, list[float]] = field(default_factory=dict)  # UID → [login time, data calls]
    switches: Switches = field(default_factory=Switches)
    tables: dict[str, dict[int, dict[str, Any]]] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)
    faults: list[Fault] = field(default_factory=list)
    gate: Gate = field(default_factory=Gate)  # requests held by a ``hold`` fault
    lock: threading.RLock = field(default_factory=threading.RLock)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    random: random.Random = field(default_factory=lambda: random.Random(12))
    #: API requests being served (a delayed one may outlive the test that sent it).
    in_flight: int = 0
    #: (table, folded key) → row ID, and job code (folded) → operation row IDs: lookups that stay
    #: fast with a million rows, so a benchmark measures TimeBridge, not the stand-in.
    index: dict[tuple[str, tuple[Any, ...]], int] = field(default_factory=dict)
    operations_of: dict[Any, set[int]] = field(default_factory=dict)

    def reset(self, *, seeded: bool = True) -> None:
        with self.lock:
            self.uids.clear()
            self.calls.clear()
            self.faults.clear()
            self.switches = Switches()
            self.random = random.Random(12)
            self.ids = itertools.count(1)
            self.index.clear()
            self.operations_of.clear()
            self.tables = {name: {} for name in ("employees", "jobs", "joboperations", "jobledger", "timeledger")}
            if seeded:
                for row in seed.EMPLOYEES:
                    self.insert("employees", blank(RecordType.EMPLOYEE) | row)
                for row in seed.JOBS:
                    self.insert("jobs", blank(RecordType.JOB) | row)
                for row in seed.OPERATIONS:
                    self.insert("joboperations", blank(RecordType.OPERATION) | row)
                for row in seed.JOB_LEDGER:
                    self.insert("jobledger", {"Transfered": False} | row)
                for row in seed.TIME_LEDGER:
                    self.insert("timeledger", row)

    def insert(self, table: str, row: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            row_id = row.get("ID") if row.get("ID") not in self.tables[table] else None  # an explicit id, if free
            row = {"ID": row_id or next(self.ids)} | {k: v for k, v in row.items() if k != "ID"}
            self.tables[table][row["ID"]] = row
            self._index(table, row, add=True)
            return row

    def delete(self, table: str, row_id: int) -> None:
        with self.lock:
            row = self.tables[table].pop(row_id, None)
            if row is not None:
                self._index(table, row, add=False)

    def _index(self, table: str, row: dict[str, Any], *, add: bool) -> None:
        record_type = RECORD_TYPE_OF_TABLE.get(table)
        if record_type is None:
            return
        key = (table, tuple(_folded(row.get(name)) for name in _key_fields(record_type)))
        if add:
            self.index.setdefault(key, row["ID"])
        elif self.index.get(key) == row["ID"]:
            del self.index[key]
        if record_type is RecordType.OPERATION:
            ids = self.operations_of.setdefault(_folded(row.get("JobCode")), set())
            if add:
                ids.add(row["ID"])
            else:
                ids.discard(row["ID"])

    def find(self, record_type: RecordType, values: dict[str, Any]) -> dict[str, Any] | None:
        table = TABLE_OF[record_type]
        key = (table, tuple(_folded(values.get(name)) for name in _key_fields(record_type)))
        row_id = self.index.get(key)
        return None if row_id is None else self.tables[table].get(row_id)

    def operations(self, job_code: str) -> list[dict[str, Any]]:
        table = self.tables["joboperations"]
        return [table[i] for i in sorted(self.operations_of.get(_folded(job_code), ())) if i in table]

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            if self.switches.fault_rate and self.random.random() < self.switches.fault_rate:
                return Fault(method, path, status=503)
            for fault in self.faults:
                if fault.matches(method, path):
                    if fault.skip:  # let this many matching requests through first
                        fault.skip -= 1
                        continue
                    fault.times -= 1
                    return fault
        return None


TABLE_OF = {RecordType.EMPLOYEE: "employees", RecordType.JOB: "jobs", RecordType.OPERATION: "joboperations"}
RECORD_TYPE_OF_TABLE = {table: record_type for record_type, table in TABLE_OF.items()}
TYPE_OF_PATH = {path: resource.record_type for path, resource in RESOURCE_OF_PATH.items()}


# --- request helpers -------------------------------------------------------------------------
class _RejectError(Exception):
    def __init__(self, status: int, message: str) -> None:
        self.status, self.message = status, message


def _state(request: Request) -> SandboxState:
    state: SandboxState = request.app.state.sandbox
    return state


def _authorize(request: Request) -> SandboxState:
    state = _state(request)
    if request.headers.get("API-Key") != state.api_key:
        raise _RejectError(400, "Invalid API-Key")
    if not request.headers.get("DEVICEID"):
        raise _RejectError(400, "DEVICEID is required")
    uid = request.headers.get("UID") or ""
    session = state.uids.get(uid)
    switches = state.switches
    if session is not None:
        session[1] += 1
        expired_by_time = (switches.uid_lifetime_seconds is not None
                           and time.monotonic() - session[0] > switches.uid_lifetime_seconds)
        expired_by_calls = switches.uid_lifetime_calls is not None and session[1] > switches.uid_lifetime_calls
        if expired_by_time or expired_by_calls:
            del state.uids[uid]
            session = None
    if session is None:
        if switches.expired_uid_status == 400:
            raise _RejectError(400, "UID not valid")
        raise _RejectError(switches.expired_uid_status, "Invalid or expired UID")
    return state


def _filtered(request: Request, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    expression = request.query_params.get("Filter")
    syntax = _state(request).switches.filter_syntax
    if not expression or syntax == "ignored":
        return rows
    match = _FILTER.match(expression)
    if match:
        name, literal = match.group(1), match.group(2).replace("''", "'")
    elif syntax == "lenient" and (match := _UNQUOTED_FILTER.match(expression)):
        name, literal = match.group(1), match.group(2)
    else:
        raise _RejectError(400, f"Invalid Filter: {expression}")
    return [row for row in rows if _same(row.get(name), literal)]


def _same(stored: Any, literal: str) -> bool:
    if isinstance(stored, bool):
        return literal.lower() in (("true", "1") if stored else ("false", "0"))
    return _same_code(str(stored), literal)  # SmartTID's collation ignores case


def _ordered(request: Request, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    name = request.query_params.get("OrderFieldName")
    if not name or not _state(request).switches.order_honoured:
        return rows
    direction = request.query_params.get("OrderDirection", "ASC").upper()
    if direction not in ("ASC", "DESC"):
        raise _RejectError(400, f"Invalid OrderDirection: {direction}")
    return sorted(rows, key=lambda row: (row.get(name) is None, row.get(name)), reverse=direction == "DESC")


def _page(request: Request, rows: list[dict[str, Any]]) -> Response:
    total = len(rows)
    rows = _ordered(request, _filtered(request, rows))
    try:
        offset = int(request.query_params.get("offset", 0))
        limit = int(request.query_params.get("limit", len(rows) or 1))
    except ValueError:
        raise _RejectError(400, "offset and limit must be integers") from None
    cap = _state(request).switches.max_page_size
    if cap is not None:
        limit = min(limit, cap)
    page = rows[offset : offset + limit]
    header = {"totalCount": total, "totalFiltered": len(rows), "Offset": offset, "Limit": limit, "Returned": len(page)}
    return JSONResponse(page, headers={"x-pagination": json.dumps(header)})


Handler = Callable[[Request], Awaitable[Response]]


def _endpoint(handler: Handler) -> Handler:
    async def wrapped(request: Request) -> Response:
        state = _state(request)
        state.calls[f"{request.method} {request.url.path}"] += 1
        try:
            with state.lock:
                return await handler(request)
        except _RejectError as exc:
            message = exc.message
            if exc.status == 400 and state.switches.echo_headers_in_400:
                echoed = "; ".join(f"{name}: {value}" for name, value in request.headers.items())
                message = f"{message} (request: {request.method} {request.url}; headers: {echoed})"
            return PlainTextResponse(message, status_code=exc.status)
        except ClientDisconnect:  # the client gave up (timeout fault): nobody to answer
            return Response(status_code=499)

    return wrapped


# --- SmartAPI endpoints ----------------------------------------------------------------------
@_endpoint
async def apilogin(request: Request) -> Response:
    state = _state(request)
    form = await request.form()
    if request.headers.get("API-Key") != state.api_key:
        raise _RejectError(400, "Invalid API-Key")
    if form.get("sAPIKey") != state.customer_key:
        raise _RejectError(400, "Invalid customer API key")
    uid = str(uuid.uuid4())
    state.uids[uid] = [time.monotonic(), 0]
    return JSONResponse([{"UID": uid, "LanguageCode": "EN", "DatabaseVersion": "6.17.72"}])


@_endpoint
async def list_resource(request: Request) -> Response:
    state = _authorize(request)
    record_type = TYPE_OF_PATH[request.url.path.strip("/")]
    if record_type is RecordType.OPERATION:
        job_code = request.query_params.get("sJobCode")
        if not job_code:
            raise _RejectError(400, "sJobCode is required")
        return _page(request, state.operations(job_code))
    rows = list(state.tables[TABLE_OF[record_type]].values())
    if record_type is RecordType.EMPLOYEE and not state.switches.employee_work_calendar_shown:
        rows = [_shown(state, record_type, row) for row in rows]
    return _page(request, rows)


def _shown(state: SandboxState, record_type: RecordType, row: dict[str, Any]) -> dict[str, Any]:
    """A stored record as its GET object shows it."""
    if record_type is RecordType.EMPLOYEE and not state.switches.employee_work_calendar_shown:
        return {name: value for name, value in row.items() if name != "WorkCalendarCode"}
    return row


def _stored_row(request: Request) -> tuple[SandboxState, RecordType, dict[str, Any]]:
    """The record addressed by ``/{resource}/{id}`` (404 when the resource or the id is unknown)."""
    state = _authorize(request)
    record_type = TYPE_OF_PATH.get(request.path_params["resource"])
    row = state.tables[TABLE_OF[record_type]].get(request.path_params["id"]) if record_type else None
    if record_type is None or row is None:
        raise _RejectError(404, f"{request.path_params['resource']} {request.path_params['id']} not found")
    return state, record_type, row


@_endpoint
async def get_one(request: Request) -> Response:
    state, record_type, row = _stored_row(request)
    return JSONResponse([_shown(state, record_type, row)])


@_endpoint
async def create(request: Request) -> Response:
    state = _authorize(request)
    record_type = TYPE_OF_PATH[request.url.path.strip("/")]
    return JSONResponse([_shown(state, record_type, _create(state, record_type, await _json_body(request)))])


def _create(state: SandboxState, record_type: RecordType, body: dict[str, Any]) -> dict[str, Any]:
    values = _validate(state, record_type, body)
    resource = RESOURCES[record_type]
    for name in resource.key:
        if body.get(name) in (None, ""):
            raise _RejectError(400, f"{name} is required to create the {record_type.lower()}")
    existing = _find(state, record_type, values)
    if existing is not None:
        if state.switches.post_existing == "update":  # the Create functions' upsert
            existing.update(values)
            return existing
        raise _RejectError(400, f"{record_type} {_key_text(record_type, values)} already exists")
    minimum = resource.usual_minimum if state.switches.create_minimum == "usual" else resource.name_minimum
    for name in minimum:
        if body.get(name) in (None, ""):
            raise _RejectError(400, f"{name} is required to create the {record_type.lower()}")
    return state.insert(TABLE_OF[record_type], blank(record_type) | values)


@_endpoint
async def update(request: Request) -> Response:
    state, record_type, row = _stored_row(request)
    values = _validate(state, record_type, await _json_body(request))
    resource = RESOURCES[record_type]
    for name, field_name in zip(resource.key, resource.key_fields(), strict=True):
        if field_name in values and not _same_code(values[field_name], row[field_name]):
            raise _RejectError(400, f"{name} cannot be changed")
    row.update(values)
    return JSONResponse([_shown(state, record_type, row)])


def _method_allowed(request: Request, allowed: str) -> None:
    """A job-ledger route answers only the method the switch gives it (405 otherwise, as IIS does)."""
    if allowed != "any" and request.method != allowed:
        raise _RejectError(405, f"The requested resource does not support http method '{request.method}'.")


@_endpoint
async def job_ledger(request: Request) -> Response:
    _method_allowed(request, _state(request).switches.job_ledger_read_method)
    state = _authorize(request)
    rows = [row for row in state.tables["jobledger"].values() if not row["Transfered"]]
    mode = state.switches.job_ledger_mode
    if mode == "paged":
        return _page(request, rows)
    if mode == "capped" and state.switches.max_page_size is not None:
        rows = rows[: state.switches.max_page_size]
    return JSONResponse(rows)


@_endpoint
async def mark_job_ledger(request: Request) -> Response:
    _method_allowed(request, _state(request).switches.job_ledger_mark_method)
    state = _authorize(request)
    text = request.query_params.get("sIDList") or request.query_params.get("nID")
    if not text:
        raise _RejectError(400, "nID or sIDList is required")
    try:
        ids = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise _RejectError(400, f"Invalid ID list: {text}") from None
    unknown = [i for i in ids if i not in state.tables["jobledger"]]
    if unknown:
        raise _RejectError(400, f"Unknown job ledger entry: {unknown[0]}")
    for i in ids:
        state.tables["jobledger"][i]["Transfered"] = True
    return JSONResponse([{"Marked": len(ids)}])


@_endpoint
async def employee_ledger(request: Request) -> Response:
    state = _authorize(request)
    code = request.query_params.get("sEmployeeCode")
    if not code:
        raise _RejectError(400, "sEmployeeCode is required")
    table = "timeledger" if "time" in request.url.path else "jobledger"
    return _page(request, [row for row in state.tables[table].values() if row["EmployeeCode"] == code])


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except ValueError:
        raise _RejectError(400, "The request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise _RejectError(400, "The request body must be a JSON object")
    return body


def _validate(state: SandboxState, record_type: RecordType, body: dict[str, Any]) -> dict[str, Any]:
    """Check a write body against the sandbox's reading of the Create-function table
    (``sandbox/smartapi_model.py``); return it in GET-field names."""
    try:
        values = read_body(record_type, body, state.switches.body_rules())
    except RefusedError as exc:
        raise _RejectError(400, str(exc)) from None
    if record_type is RecordType.JOB and values.get("JobTemplate"):
        templates = [
            row for row in state.tables["jobs"].values()
            if _same_code(row["JobCode"], values["JobTemplate"]) and row["Status"] == "Template"
        ]
        if not templates:
            raise _RejectError(400, f"Job template {values['JobTemplate']} does not exist")
    if record_type is RecordType.OPERATION and "JobCode" in values and state.find(
        RecordType.JOB, {"JobCode": values["JobCode"]}
    ) is None:
        raise _RejectError(400, f"Job {values['JobCode']} does not exist")
    return values


def _same_code(stored: Any, given: Any) -> bool:
    """SmartTID's collation compares codes without regard to case."""
    if isinstance(stored, str) and isinstance(given, str):
        return stored.casefold() == given.casefold()
    return bool(stored == given)


def _key_fields(record_type: RecordType) -> tuple[str, ...]:
    """The GET-object names of the record type's key (every key field has one)."""
    return RESOURCES[record_type].key_fields()


def _find(state: SandboxState, record_type: RecordType, values: dict[str, Any]) -> dict[str, Any] | None:
    return state.find(record_type, values)


def _folded(value: Any) -> Any:
    """A code as SmartTID's collation compares it (without regard to case)."""
    return value.casefold() if isinstance(value, str) else value


def _key_text(record_type: RecordType, values: dict[str, Any]) -> str:
    return "/".join(str(values[name]) for name in _key_fields(record_type))


# --- control endpoints -----------------------------------------------------------------------
async def control_reset(request: Request) -> Response:
    """Back to the seeded state and default switches — after the requests still being served
    (e.g. delayed by a fault) have ended, so they cannot touch the next test's state."""
    body = await request.json() if await request.body() else {}
    state = _state(request)
    state.gate.opened.set()  # held requests end first
    for _ in range(200):  # at most 10 s
        if not state.in_flight:
            break
        await asyncio.sleep(0.05)
    state.reset(seeded=body.get("seeded", True))
    return JSONResponse({"ok": True})


async def control_calls(request: Request) -> Response:
    state = _state(request)
    with state.lock:
        return JSONResponse(dict(state.calls))


async def control_state(request: Request) -> Response:
    state = _state(request)
    with state.lock:
        return JSONResponse({name: list(rows.values()) for name, rows in state.tables.items()})


async def control_faults(request: Request) -> Response:
    state = _state(request)
    with state.lock:
        if request.method == "DELETE":
            state.faults.clear()
        else:
            fault = Fault(**await request.json())
            if fault.hold and state.gate.opened.is_set():
                state.gate = Gate()
            state.faults.append(fault)
        return JSONResponse({"faults": len(state.faults)})


async def control_held(request: Request) -> Response:
    """How many requests a ``hold`` fault keeps waiting right now."""
    return JSONResponse({"held": _state(request).gate.held})


async def control_release(request: Request) -> Response:
    """Let every held request go on (later ``hold`` faults hold again)."""
    _state(request).gate.opened.set()
    return JSONResponse({"ok": True})


async def control_expire_sessions(request: Request) -> Response:
    state = _state(request)
    with state.lock:
        state.uids.clear()
    return JSONResponse({"ok": True})


async def control_switches(request: Request) -> Response:
    """``GET`` the behaviour switches, ``POST`` a JSON object to change some of them."""
    state = _state(request)
    with state.lock:
        if request.method == "POST":
            changes = await request.json()
            state.switches = Switches(**(asdict(state.switches) | changes))
        return JSONResponse(asdict(state.switches))


async def control_delete_rows(request: Request) -> Response:
    """Delete rows (as someone deleting entries in SmartTID would): ``{"table": ..., "ids": [...]}``."""
    state = _state(request)
    body = await request.json()
    with state.lock:
        for row_id in body["ids"]:
            state.delete(body["table"], row_id)
    return JSONResponse({"ok": True})


async def control_insert(request: Request) -> Response:
    """Add rows: ``{"table": "employees", "rows": [...]}`` (blank fields are filled in)."""
    state = _state(request)
    body = await request.json()
    table = body["table"]
    record_type = RECORD_TYPE_OF_TABLE.get(table)
    with state.lock:
        for row in body["rows"]:
            state.insert(table, (blank(record_type) if record_type else {}) | row)
    return JSONResponse({"ok": True})


async def control_create(request: Request) -> Response:
    """Create many records as ``POST /<resource>`` would, in one call (a benchmark's starting state):
    ``{"resource": "/employees", "bodies": [...]}``; every body is validated as a create is."""
    state = _state(request)
    body = await request.json()
    record_type = TYPE_OF_PATH[body["resource"].strip("/")]
    try:
        for one in body["bodies"]:
            _create(state, record_type, one)
    except _RejectError as exc:
        return JSONResponse({"error": exc.message}, status_code=exc.status)
    return JSONResponse({"ok": True, "created": len(body["bodies"])})


class FaultInjector:
    """ASGI middleware applying the fault switches before (or after) the real endpoint."""

    def __init__(self, app: ASGIApp, state: SandboxState) -> None:
        self.app, self.state = app, state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_sandbox"):
            await self.app(scope, receive, send)
            return
        self.state.in_flight += 1
        try:
            await self._serve(scope, receive, send)
        finally:
            self.state.in_flight -= 1

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        latency = getattr(self.state.switches, "latency_ms", 0)  # the Tic-Tac sandbox shares this middleware
        if latency:
            await asyncio.sleep(latency / 1000)
        fault = self.state.take_fault(scope["method"], scope["path"])
        if fault is None:
            await self.app(scope, receive, send)
            return
        if fault.hold:
            await self.state.gate.wait()
        if fault.delay:
            await asyncio.sleep(fault.delay)
        if fault.after_apply:
            await self.app(scope, receive, _swallow)
        elif fault.status or fault.drop:
            with self.state.lock:
                self.state.calls[f"{scope['method']} {scope['path']}"] += 1
        if fault.drop:
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"100")]})
            raise ConnectionAbortedError("sandbox: dropping the connection (fault switch)")
        if fault.status:
            body, kind = fault.answer(scope.get("headers", []))
            headers = [(b"content-type", kind)]
            if fault.retry_after is not None:
                headers.append((b"retry-after", str(fault.retry_after).encode()))
            headers += [(name.lower().encode(), value.encode()) for name, value in (fault.headers or {}).items()]
            await send({"type": "http.response.start", "status": fault.status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        if not fault.after_apply:
            await self.app(scope, receive, send)


async def _swallow(message: Any) -> None:
    return None


def create_app(state: SandboxState | None = None) -> ASGIApp:
    state = state or SandboxState()
    state.reset()
    data_paths = [resource.path for resource in RESOURCES.values()]
    every_method = ["GET", "POST", "PUT"]
    routes = [
        Route("/apilogin", apilogin, methods=["POST"]),
        *[Route(path, list_resource, methods=["GET"]) for path in data_paths],
        *[Route(path, create, methods=["POST"]) for path in data_paths],
        Route("/{resource:str}/{id:int}", get_one, methods=["GET"]),
        Route("/{resource:str}/{id:int}", update, methods=["PUT"]),
        Route(JOB_LEDGER_READ_PATH, job_ledger, methods=every_method),  # methods: the switches
        Route(JOB_LEDGER_MARK_PATH, mark_job_ledger, methods=every_method),
        Route(EMPLOYEE_TIME_LEDGER_PATH, employee_ledger, methods=["GET"]),
        Route(EMPLOYEE_JOB_LEDGER_PATH, employee_ledger, methods=["GET"]),
        Route("/_sandbox/reset", control_reset, methods=["POST"]),
        Route("/_sandbox/calls", control_calls, methods=["GET"]),
        Route("/_sandbox/state", control_state, methods=["GET"]),
        Route("/_sandbox/faults", control_faults, methods=["POST", "DELETE"]),
        Route("/_sandbox/expire-sessions", control_expire_sessions, methods=["POST"]),
        Route("/_sandbox/held", control_held, methods=["GET"]),
        Route("/_sandbox/release", control_release, methods=["POST"]),
        Route("/_sandbox/rows", control_insert, methods=["POST"]),
        Route("/_sandbox/rows/delete", control_delete_rows, methods=["POST"]),
        Route("/_sandbox/switches", control_switches, methods=["GET", "POST"]),
        Route("/_sandbox/create", control_create, methods=["POST"]),
    ]
    app = Starlette(routes=routes)
    app.state.sandbox = state
    return FaultInjector(app, state)


class _QuietFaults(logging.Filter):
    """Keep the deliberate connection drops of the fault switch out of the error log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], ConnectionAbortedError))


def main() -> None:
    import uvicorn

    logging.getLogger("uvicorn.error").addFilter(_QuietFaults())

    parser = argparse.ArgumentParser(description="SmartAPI sandbox on loopback")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8791)
    args = parser.parse_args()
    uvicorn.run(create_app(), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()

__all__ = ["DEFAULT_API_KEY", "DEFAULT_CUSTOMER_KEY", "Fault", "SandboxState", "Switches", "create_app"]
