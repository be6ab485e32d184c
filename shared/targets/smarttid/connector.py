"""SmartTID SmartAPI connector (httpx).

Everything we had to *guess* about SmartAPI lives in the ``GUESSES`` section at the top of this
module (reference ../shared/reference/smarttid-api.md marks these points GAP or INF); docs/targets.md
lists the same decisions. The rest follows the documented behaviour: ``POST /apilogin`` with the
``API-Key`` header and the multipart field ``sAPIKey`` returns a UID; every data call carries the
``API-Key``, ``UID`` and ``DEVICEID`` headers; lists page with ``offset``/``limit`` and report
progress in the ``x-pagination`` header; ``Filter=Field='value'`` narrows a list and
``OrderFieldName``/``OrderDirection`` sort it; errors are ``400`` with a plain-text message.

Where the documentation leaves behaviour open the client copes with every plausible answer: a
server-side page cap, a session rejected with 400 "UID not valid", capped job-ledger answers,
lost answers of writes (looked up before reporting), outages (circuit breaker) and error
messages that quote the request (secrets redacted). ``tests/test_smartapi_behaviours.py`` runs it
against each of the sandbox's behaviour switches.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Generator, Iterator, Sequence
from datetime import date
from decimal import Decimal
from functools import partial
from itertools import pairwise
from typing import Any

import httpx
import tenacity
from pydantic import SecretStr

from shared.errors import ApiRejectedError, ApiUnavailableError, AuthenticationFailedError, CircuitOpenError
from shared.platform.clock import parse_timestamp
from shared.platform.safe_text import visible
from shared.records.layouts import LAYOUTS, FieldKind, FieldSpec, RecordType
from shared.records.values import Value, parse_date, same_value
from shared.targets.base import ConnectorDefaults, RemoteRecord
from shared.targets.http import (
    DEFAULT_MAX_ANSWER_BYTES,
    ApiClient,
    Pager,
    RetryPolicy,
    attempts_text,
    backoff_wait,
    error_text,
    is_redirect,
    load_json,
    redirect_text,
    retry_after_seconds,
    route_of,
)

log = logging.getLogger(__name__)

# ======================================================================================
# GUESSES — every decision taken where the SmartTID documentation has a gap (GAP / INF).
# ======================================================================================

#: Resource path per record type (documented list endpoints; write paths are a guess).
RESOURCE_PATH = {
    RecordType.EMPLOYEE: "/employees",
    RecordType.JOB: "/jobs",
    RecordType.OPERATION: "/joboperations",
}
#: GUESS: ``POST /<resource>`` creates; ``PUT /<resource>/{ID}`` updates only the changed fields.
CREATE_METHOD = "POST"
UPDATE_METHOD = "PUT"
#: GUESS: request bodies are JSON objects keyed by the Create-function parameter names
#: (``sEmployeeCode``, ``sName``, …), as SmartTID documents ``nAnswer``/``nQuestionID`` as
#: POST/PUT fields. Values are typed by the parameter's SQL type: NVARCHAR → string (dates
#: ``dd-mm-yyyy``, flags ``"0"``/``"1"``, decimals with ``.``), INT/DECIMAL → JSON number,
#: BIT → JSON boolean.
BODY_DATE_FORMAT = "%d-%m-%Y"
#: GUESS: how SmartAPI rejects an expired or unknown UID (undocumented): HTTP 401 or 403, or its
#: documented error style, HTTP 400 with a text message that names the UID ("UID not valid",
#: "Invalid or expired UID", or the Danish error language's "UID er ikke gyldig" / "ugyldig UID").
#: Either way we log in again and repeat the request.
TARGET_NAME = "SmartTID"
#: Answers worth retrying: 429 (SmartAPI's rate limit, with Retry-After) and every 5xx.
RETRY_STATUSES = frozenset({429, *range(500, 600)})
#: Answers after which the request certainly was not processed (a POST is repeated after them).
UNPROCESSED_STATUSES = frozenset({429})
UID_REJECTED_STATUSES = frozenset({401, 403})
UID_REJECTED_MESSAGE = re.compile(
    r"\bUID\b.{0,40}\b(not valid|invalid|expired|unknown|ikke gyldig|ugyldig|udløbet)"
    r"|\b(invalid|unknown|expired|not valid|ugyldigt?)\b.{0,40}\bUID\b",
    re.IGNORECASE,
)
#: New logins for one request whose UID was rejected, before giving up (a UID rejected right
#: after a fresh login means the access itself is refused). A run survives any number of expiries.
MAX_LOGINS_PER_REQUEST = 2
#: GUESS: page size asked for (default/maximum ``limit`` are undocumented). SmartAPI may answer
#: with fewer rows than asked (a server-side cap): we page by the ``x-pagination`` header
#: (``totalFiltered``, with ``offset`` advanced by the rows returned) and stop on an empty page,
#: never on a short one.
PAGE_SIZE = 500
#: Upper bound of pages per list read (500 000 rows at the default page size; a server that
#: never ends its list would otherwise keep a run busy for ever).
MAX_PAGES = 1000
#: GUESS: the job-ledger export calls (the walkthrough's screenshots with the methods are
#: missing): GET to read the untransferred entries, POST with ``sIDList`` in the query to mark.
JOB_LEDGER_READ = ("GET", "/getjobledgerentries")
JOB_LEDGER_MARK = ("POST", "/markjobledgerentrytransfered")
#: GUESS: ``/getjobledgerentries`` may page like every list (offset/limit, ``x-pagination``),
#: return everything in one answer, or return a capped subset (paging undocumented). We send
#: offset/limit and read until the end of the pages, or until an answer brings nothing new; an
#: answer without paging information that repeats itself may have been capped, so the export
#: marks what it read and reads again in the same run until nothing new comes back.
#: No REST endpoint reads untransferred *time* ledger entries; we read each employee's entries
#: and keep ``Transfered == false`` (the export ledger prevents repeats).
TIME_LEDGER_READ = ("GET", "/employeetimeledgerentries")
#: Existence check of a job-ledger entry whose mark was refused (was it deleted in SmartTID?).
EMPLOYEE_JOB_LEDGER_READ = ("GET", "/employeejobledgerentries")
#: GUESS: the filter asking only for untransferred time-ledger entries. Only ``Field='value'`` is
#: documented; we send the unquoted boolean ``Transfered=false``. If SmartTID answers 400 to it
#: we read without the filter for the rest of the run, and if it ignores it nothing changes:
#: entries with ``Transfered = true`` are left out on our side in any case.
UNTRANSFERRED_FILTER = "Transfered=false"
#: GUESS: ``OrderFieldName=ID&OrderDirection=DESC`` (both parameters documented, ``ID`` as the
#: field name inferred) lists an employee's time-ledger entries newest first, and an entry posted
#: later has a higher ``ID`` than the entries before it (an identity column). The export then
#: reads only down to the newest entry it already exported. Checked on every answer: rows not in
#: descending order are read to the end (and the run stops ordering); a 400 to the ordering drops
#: it. A full read every ``FULL_READ_EVERY`` (``shared/export/protocol.py``) catches any entry
#: that breaks the rule.
NEWEST_FIRST = {"OrderFieldName": "ID", "OrderDirection": "DESC"}
#: Rows asked for on the first newest-first page (doubling on each further page, up to
#: ``PAGE_SIZE``) until the ordering is seen honoured in this run: a page of two or more rows in
#: descending order (rows in another order stop the ordering, see above).
NEWEST_FIRST_PAGE = 10
#: Once the run has seen the ordering honoured, the first page asks for one row and the second for
#: ``NEWEST_FIRST_PAGE``: an idle employee costs one row (its newest entry, already exported), an
#: employee with new entries one more page. (SmartAPI honours an ordering parameter for every list
#: alike or for none: it is a property of the server, not of an employee.)
VERIFIED_FIRST_PAGE = 1
#: GUESS: a posted ledger entry is never changed in place: SmartTID's ledgers hold *posted* entries
#: (reference §3.4, §3.5: what journals post), so a correction arrives as new entries (a reversal and
#: the new hours), each exported once. The export knows an entry by its ID: an entry changed in place
#: under an ID already exported would not be exported again (docs/export.md, "Corrections").
#: GUESS: an employee's ``Active`` field (documented in the GET object) tells whether the employee
#: is active; a missing field counts as active.
EMPLOYEE_ACTIVE_FIELD = "Active"

#: Crosswalk: Create-function parameter → SmartAPI GET field (reference §5). ``None`` = the GET
#: object has no such field (auto-creation hints such as a department *name*); those parameters
#: are sent together with their code field only. Names marked GUESS are not visible in the docs.
CROSSWALK: dict[RecordType, dict[str, str | None]] = {
    RecordType.EMPLOYEE: {
        "sEmployeeCode": "EmployeeCode",
        "sName": "Name",
        "sAddress": "Address",
        "sZipCode": "ZipCode",
        "sCity": "City",
        "sCellPhone": "CellPhone",
        "sEmail": "EMail",
        "sCPRNo": "CPRNo",
        "sDepartmentCode": "DepartmentCode",
        "sDepartmentName": None,
        "sWorkCalendarCode": "WorkCalendarCode",  # GUESS: not among the visible employee fields
        "sWorkFunctionCode": "WorkFunctionCode",
        "sWorkFunctionName": None,
        "sPayrollTypeCode": "PayrollTypeCode",
        "sPayrollTypeName": None,
        "sJournalCode": "JournalCode",
        "sJournalName": None,
    },
    RecordType.JOB: {
        "sJobCode": "JobCode",
        "sJobDescription": "JobDescription",
        "sJobDescription2": "JobDescription2",
        "sPlannedStartDate": "PlannedStartDate",
        "sPlannedCompletionDate": "PlannedCompletionDate",
        "sStatus": "Status",
        "sJobTemplate": "JobTemplate",
        "sJobGroupCode": "JobGroupCode",
        "nPlannedNumber": "PlannedNumber",
        "nNumberPerContainer": "NumberPerContainer",
        "sOrderCode": "OrderCode",
        "sCustomerCode": "CustomerCode",
        "sCustomerName": None,
        "sCustomerAddress": None,
        "sCustomerZipCode": None,
        "sCustomerCity": None,
        "sCustomerPhone": None,
        "sPlannedDeliveryDate": "PlannedDeliveryDate",
        "sActualDeliveryDate": "ActualDeliveryDate",
        "sDepartmentCode": "DepartmentCode",
        "sProductCode": "ProductCode",
        "sReference": "Reference",
        "sRemark": "Remark",
        "sMaterialsRecieved": "MaterialsRecieved",
        "sReadyToShip": "ReadyToShip",
        "sExpectedMaterialDeliveryDate": "ExpectedMaterialDeliveryDate",
    },
    RecordType.OPERATION: {
        "sJobCode": "JobCode",
        "nLineNumber": "LineNumber",
        "sOperationCode": "OperationCode",
        "sDescription": "Description",
        "sPlannedTime": "PlannedTime",
        "sERPReference": "ERPReference",
        "nPlannedQuantityPerHour": "PlannedQuantityPerHour",
        "nQuantityPerUnit": "QuantityPerUnit",
        "nLength": "Length",
        "nWidth": "Width",
        "nHeight": "Height",
        "bOperationCompleted": "OperationCompleted",
    },
}

# ======================================================================================


def body_value(spec: FieldSpec, value: Value) -> Any:
    """Value for a write body, typed by the Create-function parameter (see GUESSES)."""
    if isinstance(value, bool):
        if spec.name.startswith("b"):
            return value
        return "1" if value else "0"
    if isinstance(value, date):
        return value.strftime(BODY_DATE_FORMAT)
    if isinstance(value, Decimal):
        if spec.name.startswith("s"):
            return format(value.normalize(), "f")
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def remote_value(spec: FieldSpec, raw: Any) -> Value | None:
    """A SmartAPI JSON value converted to the typed value of ``spec`` (None = not set)."""
    if raw is None:
        return None
    match spec.kind:
        case FieldKind.DATE:
            text = str(raw)
            if not text:
                return None
            moment = parse_timestamp(text)
            return moment.date() if moment else parse_date(text[:10])
        case FieldKind.FLAG:
            return raw in (True, 1, "1", "true", "True")
        case FieldKind.INTEGER:
            return int(raw)
        case FieldKind.DECIMAL:
            return Decimal(str(raw))
        case _:
            return str(raw)


class _Session(httpx.Auth):
    """SmartAPI's session as an ``httpx.Auth`` flow: the headers of the current UID (logging in
    first when there is none); when SmartAPI rejects the UID, log in again and send the request once
    more — at most :data:`MAX_LOGINS_PER_REQUEST` times (the re-sent request is counted as a call)."""

    def __init__(self, connector: SmartTidConnector) -> None:
        self._connector = connector

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        connector = self._connector
        for logins_left in range(MAX_LOGINS_PER_REQUEST, -1, -1):
            uid = connector._current_uid()
            request.headers.update(connector._session_headers(uid))
            response = yield request
            if not logins_left or not connector._uid_rejected(response):
                return
            log.info("SmartTID rejected the session (HTTP %d); logging in again", response.status_code)
            connector._relogin(uid)


class SmartTidConnector(ConnectorDefaults):
    """SmartAPI client. Thread-safe: the import writes (and the export reads) with bounded concurrency.

    One retry layer: each request is retried by one tenacity policy (``RetryPolicy``); a create
    is one tenacity loop of [look the record up if the last attempt may have arrived, then POST
    once]. A circuit breaker ends the work quickly once SmartTID is clearly unavailable.
    """

    #: SmartTID stores codes case-insensitively (its SQL collation): ``a360`` is the stored ``A360``.
    codes_case_insensitive = True

    def __init__(
        self,
        base_url: str,
        api_key: SecretStr,
        customer_key: SecretStr,
        *,
        device_id: str | None = None,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
    ) -> None:
        self._api_key = api_key
        self._customer_key = customer_key
        self._device_id = device_id
        self._retry = retry or RetryPolicy()
        self._issued_uids: list[str] = []
        self.api = ApiClient(TARGET_NAME, base_url, timeout=timeout, retry=self._retry, secrets=self._secrets,
                             retry_statuses=RETRY_STATUSES, unprocessed_statuses=UNPROCESSED_STATUSES,
                             transport=transport, max_answer_bytes=max_answer_bytes)
        self._uid: str | None = None
        self._login_lock = threading.Lock()
        self._session = _Session(self)
        self._filter_refused = False
        self._order_refused = False
        #: the ordering was seen honoured in this run (a page of two or more rows, descending)
        self._order_verified = False
        self.breaker = self.api.breaker
        self.calls = self.api.calls
        self.job_ledger_read_complete = True
        self._field_names: dict[frozenset[str], frozenset[str]] = {}

    # --- plumbing -------------------------------------------------------------------------
    def close(self) -> None:
        self.api.close()

    def check_login(self) -> None:
        """Log in (once): proves the base URL and both keys; raises as any call would (``timebridge doctor``)."""
        self._current_uid()

    def _secrets(self) -> list[str | None]:
        """Every configured secret (API-Key, customer key, DEVICEID) and every UID issued."""
        return [self._api_key.get_secret_value(), self._customer_key.get_secret_value(), self._device_id,
                *self._issued_uids]

    def _session_headers(self, uid: str) -> dict[str, str]:
        return {
            "API-Key": self._api_key.get_secret_value(),
            "UID": uid,
            "DEVICEID": self._device_id or self._customer_key.get_secret_value(),
        }

    def redact(self, text: str) -> str:
        """``text`` without any configured secret (API-Key, customer key, DEVICEID) or issued UID."""
        return self.api.redact(text)

    def _message(self, response: httpx.Response) -> str:
        """SmartAPI's error text, every secret redacted before it is shortened."""
        return self.api.message(response)

    def _current_uid(self) -> str:
        with self._login_lock:
            if self._uid is None:
                self._uid = self._login()
            return self._uid

    def _relogin(self, rejected_uid: str) -> None:
        with self._login_lock:
            if self._uid == rejected_uid:  # another thread may have logged in already
                self._uid = self._login()

    def _login(self) -> str:
        response = self.api.send(
            "POST", "/apilogin", headers={"API-Key": self._api_key.get_secret_value()},
            files={"sAPIKey": (None, self._customer_key.get_secret_value())}, safe_to_repeat=True,
        ).response
        if response.status_code in RETRY_STATUSES:
            raise ApiUnavailableError(
                f"SmartTID's login kept failing (HTTP {response.status_code}) after {self._retry.attempts} attempts"
            )
        if response.status_code != 200:
            raise AuthenticationFailedError(
                f"SmartTID refused the login (HTTP {response.status_code}: {self._message(response)}). "
                "Check the secrets smarttid-api-key (authorization token) and smarttid-customer-key "
                "(customer API key, SmartTID > IT setup > API access; it must be active)."
            )
        try:
            uid = str(load_json(response.content, "SmartTID", "the login")[0]["UID"])
        except (ApiUnavailableError, LookupError, TypeError):
            raise ApiUnavailableError("SmartTID's login answer had no UID; contact SmartTID support.") from None
        self._issued_uids.append(uid)
        return uid

    def _uid_rejected(self, response: httpx.Response) -> bool:
        """The session (UID) was refused: 401/403, or 400 with SmartAPI's "UID not valid" text. Reads
        the answer's body for such a status (within MAX_ANSWER_BYTES)."""
        if response.status_code in UID_REJECTED_STATUSES:
            return True
        if response.status_code != 400:
            return False
        response.read()
        return UID_REJECTED_MESSAGE.search(error_text(response)) is not None

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        retry_on_ambiguous: bool = True,
        attempts: int | None = None,
    ) -> httpx.Response:
        """A data call in the session (:class:`_Session` logs in again when the UID is rejected)."""
        sent = self.api.send(method, path, params=params, json_body=json_body, auth=self._session,
                             safe_to_repeat=retry_on_ambiguous, attempts=attempts)
        response = sent.response
        write = method != "GET"
        if sent.kept_failing:
            raise ApiUnavailableError(
                f"SmartTID kept failing (HTTP {response.status_code}: {self._message(response)}) "
                f"after {attempts_text(sent.attempts)}",
                maybe_applied=write and (sent.ambiguous or response.status_code >= 500),
                retry_after=retry_after_seconds(response),
            )
        if is_redirect(response):  # never followed and never success
            raise ApiUnavailableError(
                f"SmartTID answered {method} {route_of(path)} with a redirect ({redirect_text(response)}), which "
                "TimeBridge does not follow" + ("" if write else ": check SMARTTID_BASE_URL (it must be "
                                                                 "SmartAPI's https address)"),
                maybe_applied=write,
            )
        if self._uid_rejected(response):
            raise AuthenticationFailedError(
                f"SmartTID refused access (HTTP {response.status_code}: {self._message(response)}) even right "
                "after a new login. Check that the API access is active in SmartTID (IT setup > API access) "
                "and that the secrets smarttid-api-key and smarttid-customer-key are right."
            )
        if response.status_code == 405:  # the method of a route is a guess where the document is silent
            raise ApiRejectedError(
                f"SmartTID does not accept {method} for {route_of(path)} (HTTP 405: {self._message(response)}). "
                "SmartTID's documentation does not settle this route's method and TimeBridge uses its best "
                "reading (docs/targets.md, 'Decisions where SmartTID's documentation has gaps'); report this "
                "answer to TimeBridge's support with your SmartTID version", 405)
        if response.status_code >= 400:
            raise ApiRejectedError(self._message(response), response.status_code)
        if response.status_code < 200:
            raise ApiUnavailableError(f"SmartTID answered {method} {route_of(path)} with HTTP {response.status_code}, "
                                 "which is no answer", maybe_applied=write)
        return response

    def _rows(self, response: httpx.Response, path: str) -> list[dict[str, Any]]:
        page = load_json(response.content, "SmartTID", path) if response.content.strip() else None
        if not isinstance(page, list) or not all(isinstance(row, dict) for row in page):
            raise ApiUnavailableError(f"SmartTID returned an unexpected answer for {path} (not a list of records)")
        return page

    def _get_all(
        self,
        path: str,
        params: dict[str, Any] | None = None,
        *,
        attempts: int | None = None,
        first_limit: int = PAGE_SIZE,
        second_limit: int | None = None,
        on_page: Callable[[list[dict[str, Any]]], None] | None = None,
        enough: Callable[[list[dict[str, Any]]], bool] | None = None,
        keep: Callable[[dict[str, Any]], Any] | None = None,
    ) -> list[Any]:
        """Every row of a list endpoint, read through :meth:`_pager` (a short page is never the end; an
        answer that repeats itself is an error). ``keep``: what is kept of each row, as each page
        arrives (the raw rows of a long list are never all held at once)."""
        pages = self._pager(path, params, attempts=attempts, first_limit=first_limit, second_limit=second_limit,
                            on_page=on_page, enough=enough)
        return [keep(row) if keep else row for page in pages for row in page]

    def _pager(self, path: str, params: dict[str, Any] | None = None, *, attempts: int | None = None,
               first_limit: int = PAGE_SIZE, second_limit: int | None = None,
               on_page: Callable[[list[dict[str, Any]]], None] | None = None,
               enough: Callable[[list[dict[str, Any]]], bool] | None = None, strict: bool = True) -> Pager:
        """A list endpoint read page by page (offset/limit; the total from ``x-pagination``)."""

        def fetch(offset: int, limit: int) -> tuple[list[dict[str, Any]], int | None]:
            response = self._call("GET", path, params={**(params or {}), "offset": offset, "limit": limit},
                                  attempts=attempts)
            total = _pagination(response).get("totalFiltered")
            return self._rows(response, path), None if total is None else int(total)

        return Pager(fetch, identity=_identity, target=TARGET_NAME, what=path, page_size=PAGE_SIZE,
                     max_pages=MAX_PAGES, first_limit=first_limit, second_limit=second_limit, strict=strict,
                     on_page=on_page, enough=enough)

    # --- master data ----------------------------------------------------------------------
    def list_records(self, record_type: RecordType, *, job_code: str | None = None) -> list[RemoteRecord]:
        params = {"sJobCode": job_code} if record_type is RecordType.OPERATION else None
        records: list[RemoteRecord] = self._get_all(RESOURCE_PATH[record_type], params,
                                                     keep=partial(self._to_remote, record_type))
        return records

    def each_record(self, record_type: RecordType) -> Iterator[RemoteRecord]:
        for page in self._pager(RESOURCE_PATH[record_type]):
            yield from map(partial(self._to_remote, record_type), page)

    def find(
        self, record_type: RecordType, values: dict[str, Value], *, attempts: int | None = None
    ) -> RemoteRecord | None:
        """The stored record with the key of ``values``, if any (used after an ambiguous write)."""
        layout = LAYOUTS[record_type]
        if record_type is RecordType.OPERATION:
            rows = self._get_all(RESOURCE_PATH[record_type], {"sJobCode": str(values["sJobCode"])}, attempts=attempts)
        else:
            key = layout.key[0]
            field = CROSSWALK[record_type][key]
            literal = str(values[key]).replace("'", "''")
            rows = self._get_all(RESOURCE_PATH[record_type], {"Filter": f"{field}='{literal}'"}, attempts=attempts)
        wanted = tuple(values[name] for name in layout.key)
        for candidate in (self._to_remote(record_type, row) for row in rows):
            if tuple(candidate.values.get(name) for name in layout.key) == wanted:
                return candidate
        return None

    def _look_up(self, record_type: RecordType, values: dict[str, Value]) -> RemoteRecord | bool | None:
        """``find`` with one attempt, for checking a write's outcome; ``False`` = could not look."""
        try:
            return self.find(record_type, values, attempts=1)
        except (ApiUnavailableError, ApiRejectedError):
            return False

    def create(self, record_type: RecordType, values: dict[str, Value]) -> None:
        """POST once per attempt; before repeating a POST whose outcome is unknown, look first."""
        body = self._body(record_type, values)
        path = RESOURCE_PATH[record_type]
        policy = self._retry
        ambiguous = False

        def attempt() -> None:
            nonlocal ambiguous
            if ambiguous and self.find(record_type, values) is not None:  # the lookup has its own retries
                log.info("SmartTID %s %s: the create did arrive; not sending it again", CREATE_METHOD, path)
                return
            try:
                self._call(CREATE_METHOD, path, json_body=body, retry_on_ambiguous=False, attempts=1)
            except ApiUnavailableError as exc:
                ambiguous = ambiguous or exc.maybe_applied
                raise

        def retryable(exc: BaseException) -> bool:
            return isinstance(exc, ApiUnavailableError) and not isinstance(
                exc, AuthenticationFailedError | CircuitOpenError)

        backoff = backoff_wait(policy)

        def wait(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, ApiUnavailableError) and exc.retry_after is not None:
                return min(exc.retry_after, policy.max_retry_after)
            return backoff(state)

        try:
            tenacity.Retrying(
                stop=tenacity.stop_after_attempt(policy.attempts),
                wait=wait,
                sleep=self.breaker.sleep,
                retry=tenacity.retry_if_exception(retryable),
                reraise=True,
            )(attempt)
        except ApiUnavailableError as exc:
            if not ambiguous or isinstance(exc, AuthenticationFailedError):
                raise
            # The last POST may have arrived: look before reporting.
            found = self._look_up(record_type, values)
            if found:
                log.info("SmartTID %s %s: the create did arrive after all", CREATE_METHOD, path)
                return
            raise type(exc)(str(exc), maybe_applied=found is False) from None

    def update(self, record_type: RecordType, remote_id: int | str, values: dict[str, Value]) -> None:
        path = f"{RESOURCE_PATH[record_type]}/{remote_id}"
        try:
            self._call(UPDATE_METHOD, path, json_body=self._body(record_type, values))
        except ApiUnavailableError as exc:
            if not exc.maybe_applied or isinstance(exc, AuthenticationFailedError):
                raise
            # The last PUT may have arrived: compare what SmartTID stores now before reporting.
            stored = self._look_up(record_type, values)
            applied = _holds(record_type, stored, values) if isinstance(stored, RemoteRecord) else None
            if applied:
                log.info("SmartTID %s %s: the update did arrive after all", UPDATE_METHOD, route_of(path))
                return
            raise type(exc)(str(exc), maybe_applied=applied is None) from None

    def _body(self, record_type: RecordType, values: dict[str, Value]) -> dict[str, Any]:
        layout = LAYOUTS[record_type]
        return {name: body_value(layout.field(name), value) for name, value in values.items()}

    def _to_remote(self, record_type: RecordType, row: dict[str, Any]) -> RemoteRecord:
        layout = LAYOUTS[record_type]
        values: dict[str, Value] = {}
        for spec in layout.fields:
            field = CROSSWALK[record_type].get(spec.name)
            if field is None or field not in row:
                continue
            try:
                value = remote_value(spec, row[field])
            except (ValueError, TypeError, ArithmeticError):
                value = str(row[field])  # shown as changed rather than failing the whole read
            if value is not None:
                values[spec.name] = value
        if "ID" not in row:
            raise ApiUnavailableError(f"SmartTID returned a {record_type} without an ID; contact SmartTID support")
        names = frozenset(row)  # rows of one list share their field names: one set for all of them
        return RemoteRecord(id=row["ID"], values=values, present=self._field_names.setdefault(names, names))

    # --- export ---------------------------------------------------------------------------
    def untransferred_job_ledger_entries(self) -> Iterator[dict[str, Any]]:
        """Read until the pages end or an answer brings nothing new (see GUESSES).

        Rows are yielded page by page, so a caller that handles each row at once holds one page.
        A page whose rows are all the previous page's is an answer that repeats itself (offset
        ignored, or capped): the read ends there, incomplete. Rows may be yielded twice (a row
        that moved between pages); the caller keeps one of each id.
        """
        _, path = JOB_LEDGER_READ
        pager = self._pager(path, strict=False)
        self.job_ledger_read_complete = False
        for page in pager:
            yield from page
        self.job_ledger_read_complete = pager.complete

    def mark_job_ledger_entries_transferred(self, ids: Sequence[int]) -> None:
        method, path = JOB_LEDGER_MARK
        self._call(method, path, params={"sIDList": ",".join(str(i) for i in ids)})

    def time_ledger_entries(self, employee_code: str, newer_than: int | None = None, *,
                            keep: Callable[[dict[str, Any]], Any] | None = None) -> list[Any]:
        """The employee's untransferred time-ledger entries (see GUESSES for the filter).

        ``newer_than``: the highest id of this employee already exported — read newest first and
        stop at it (every entry with an id above it is returned; older ones may be too).
        ``keep``: what is kept of each row (a pure function), applied as each page arrives.
        """
        _, path = TIME_LEDGER_READ  # a GET
        while True:
            params: dict[str, Any] = {"sEmployeeCode": employee_code}
            filtered = not self._filter_refused
            ordered = newer_than is not None and not self._order_refused
            if filtered:
                params["Filter"] = UNTRANSFERRED_FILTER
            if newer_than is None or not ordered:
                if filtered:
                    return self._filtered_read(path, params, keep)
                return self._get_all(path, params, keep=keep)
            verified = self._order_verified
            check, enough = self._reached(newer_than)
            try:
                return self._get_all(path, params | NEWEST_FIRST,
                                     first_limit=VERIFIED_FIRST_PAGE if verified else NEWEST_FIRST_PAGE,
                                     second_limit=NEWEST_FIRST_PAGE if verified else None,
                                     on_page=check, enough=enough, keep=keep)
            except ApiRejectedError as exc:
                if filtered:
                    self._filter_refused = True
                else:
                    self._order_refused = True
                log.warning("SmartTID refused the time-ledger read with %s (%s); reading without it",
                            UNTRANSFERRED_FILTER if filtered else "OrderFieldName=ID", visible(exc.message))

    def _filtered_read(self, path: str, params: dict[str, Any],
                       keep: Callable[[dict[str, Any]], Any] | None = None) -> list[Any]:
        try:
            return self._get_all(path, params, keep=keep)
        except ApiRejectedError as exc:
            self._filter_refused = True
            log.warning("SmartTID refused the filter %s (%s); reading every time-ledger entry instead",
                        UNTRANSFERRED_FILTER, visible(exc.message))
            return self._get_all(path, {k: v for k, v in params.items() if k != "Filter"}, keep=keep)

    def _reached(self, newer_than: int) -> tuple[Callable[[list[dict[str, Any]]], None],
                                                 Callable[[list[dict[str, Any]]], bool]]:
        """A newest-first read: its order check (every page, also the last) and its stop rule (the page
        went down to ``newer_than``, in descending order)."""
        previous: list[int] = []

        def check(page: list[dict[str, Any]]) -> None:
            ids = [int(row["ID"]) for row in page]
            if self._order_refused:
                return
            if not all(a > b for a, b in pairwise(previous[-1:] + ids)):
                log.warning("SmartTID did not list the time ledger newest first; reading it to the end")
                self._order_refused = True  # ignored ordering: later reads are full reads
                return
            if len(previous[-1:] + ids) > 1:
                self._order_verified = True  # two or more rows seen in descending order
            previous[:] = ids[-1:]

        def enough(page: list[dict[str, Any]]) -> bool:
            return not self._order_refused and bool(page) and int(page[-1]["ID"]) <= newer_than

        return check, enough

    def job_ledger_entry_ids(self, employee_code: str) -> set[int]:
        _, path = EMPLOYEE_JOB_LEDGER_READ  # a GET
        return {int(row["ID"]) for row in self._get_all(path, {"sEmployeeCode": employee_code})}

    def employee_codes(self) -> dict[str, bool]:
        rows = self._get_all(RESOURCE_PATH[RecordType.EMPLOYEE])
        return {str(row["EmployeeCode"]): row.get(EMPLOYEE_ACTIVE_FIELD) not in (False, 0, "0", "false", "False")
                for row in rows}


def _identity(row: dict[str, Any]) -> int | str:
    """A row's id (an int, as SmartTID's are), or its whole content when it has none."""
    try:
        return int(row["ID"])
    except (KeyError, TypeError, ValueError):
        return json.dumps(row, sort_keys=True, default=str)


def _holds(record_type: RecordType, stored: RemoteRecord, values: dict[str, Value]) -> bool | None:
    """Whether SmartTID stores ``values`` (None: some field cannot be compared from the GET answer)."""
    for name, value in values.items():
        field = CROSSWALK[record_type].get(name)
        if field is None:
            continue  # an auto-creation hint: not on the record
        if field not in stored.present:
            return None  # SmartTID's answer does not show this field
        if name not in stored.values or not same_value(value, stored.values[name]):
            return False
    return True


def _pagination(response: httpx.Response) -> dict[str, Any]:
    try:
        value = json.loads(response.headers.get("x-pagination", "{}"))
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}

