"""SmartTID SmartAPI connector (httpx).

Everything we had to *guess* about SmartAPI lives in the ``GUESSES`` section at the top of this
module (reference ../shared/reference/smarttid-api.md marks these points GAP or INF); the README
lists the same decisions. The rest follows the documented behaviour: ``POST /apilogin`` with the
``API-Key`` header and the multipart field ``sAPIKey`` returns a UID; every data call carries the
``API-Key``, ``UID`` and ``DEVICEID`` headers; lists page with ``offset``/``limit`` and report
progress in the ``x-pagination`` header; ``Filter=Field='value'`` narrows a list; errors are
``400`` with a plain-text message.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import tenacity
from pydantic import SecretStr

from shared.errors import ApiRejected, ApiUnavailable, AuthenticationFailed
from shared.importing.layouts import LAYOUTS, FieldKind, FieldSpec, RecordType
from shared.importing.values import Value, parse_date
from shared.platform.clock import parse_timestamp
from shared.targets.base import CallCounter, ConnectorDefaults, RemoteRecord

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
#: GUESS: the status codes with which SmartAPI rejects an expired or unknown UID (undocumented);
#: we log in again once and repeat the call.
UID_REJECTED_STATUSES = frozenset({401, 403})
#: GUESS: page size (default/maximum ``limit`` are undocumented).
PAGE_SIZE = 500
#: GUESS: the job-ledger export calls (the walkthrough's screenshots with the methods are
#: missing): GET to read the untransferred entries, POST with ``sIDList`` in the query to mark.
JOB_LEDGER_READ = ("GET", "/getjobledgerentries")
JOB_LEDGER_MARK = ("POST", "/markjobledgerentrytransfered")
#: No REST endpoint reads untransferred *time* ledger entries; we read each employee's entries
#: and keep ``Transfered == false`` (the export ledger prevents repeats).
TIME_LEDGER_READ = ("GET", "/employeetimeledgerentries")

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


@dataclass(frozen=True)
class RetryPolicy:
    """Retries for timeouts, connection errors, 429 and 5xx, with exponential backoff + jitter."""

    attempts: int = 5
    initial_wait: float = 0.5
    max_wait: float = 20.0
    max_retry_after: float = 60.0


class _Retryable(Exception):
    """A response worth retrying (429 / 5xx)."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


class _UidRejected(Exception):
    pass


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


class SmartTidConnector(ConnectorDefaults):
    """SmartAPI client. Thread-safe: the import writes with bounded concurrency."""

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
    ) -> None:
        self._api_key = api_key
        self._customer_key = customer_key
        self._device_id = device_id
        self._retry = retry or RetryPolicy()
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=httpx.Timeout(timeout),
            headers={"Accept": "application/json", "User-Agent": "TimeBridge"},
            transport=transport,
        )
        self._uid: str | None = None
        self._login_lock = threading.Lock()
        self.calls = CallCounter()

    # --- plumbing -------------------------------------------------------------------------
    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> SmartTidConnector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _headers(self) -> dict[str, str]:
        uid = self._current_uid()
        return {
            "API-Key": self._api_key.get_secret_value(),
            "UID": uid,
            "DEVICEID": self._device_id or self._customer_key.get_secret_value(),
        }

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
        response = self._send_with_retry(
            "POST",
            "/apilogin",
            lambda: {
                "headers": {"API-Key": self._api_key.get_secret_value()},
                "files": {"sAPIKey": (None, self._customer_key.get_secret_value())},
            },
        )
        if response.status_code == 429 or response.status_code >= 500:
            raise ApiUnavailable(
                f"SmartTID's login kept failing (HTTP {response.status_code}) after {self._retry.attempts} attempts"
            )
        if response.status_code != 200:
            raise AuthenticationFailed(
                f"SmartTID refused the login (HTTP {response.status_code}: {_message(response)}). "
                "Check the secrets smarttid-api-key (authorization token) and smarttid-customer-key "
                "(customer API key, SmartTID > IT setup > API access; it must be active)."
            )
        try:
            return str(response.json()[0]["UID"])
        except (ValueError, LookupError, TypeError):
            raise ApiUnavailable("SmartTID's login answer had no UID; contact SmartTID support.") from None

    def _send_with_retry(
        self, method: str, path: str, build: Callable[[], dict[str, Any]], *, retry_on_ambiguous: bool = True
    ) -> httpx.Response:
        """Send, retrying timeouts, connection errors, 429 and 5xx with backoff and jitter.

        ``retry_on_ambiguous=False`` (non-idempotent POSTs) retries only failures where the
        request certainly was not processed: connection refused and 429.
        """
        policy = self._retry

        def retryable(exc: BaseException) -> bool:
            if isinstance(exc, _Retryable):
                return retry_on_ambiguous or exc.response.status_code == 429
            if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
                return True
            return retry_on_ambiguous and isinstance(exc, httpx.TimeoutException | httpx.TransportError)

        backoff = tenacity.wait_exponential_jitter(multiplier=policy.initial_wait, max=policy.max_wait)

        def wait(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, _Retryable):
                retry_after = exc.response.headers.get("Retry-After", "")
                if retry_after.strip().isdigit():
                    return min(float(retry_after), policy.max_retry_after)
            return backoff(state)

        def attempt() -> httpx.Response:
            self.calls.add(method, path)
            response = self._client.request(method, path, **build())
            if response.status_code == 429 or response.status_code >= 500:
                raise _Retryable(response)
            return response

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(policy.attempts),
            wait=wait,
            retry=tenacity.retry_if_exception(retryable),
            reraise=True,
            before_sleep=lambda state: log.warning(
                "SmartTID %s %s failed (%s); retrying (attempt %d of %d)",
                method,
                path,
                _describe(state.outcome.exception() if state.outcome else None),
                state.attempt_number + 1,
                policy.attempts,
            ),
        )
        try:
            return retrying(attempt)
        except _Retryable as exc:
            return exc.response
        except httpx.HTTPError as exc:
            raise ApiUnavailable(
                f"SmartTID could not be reached ({_describe(exc)}) after {policy.attempts} attempts"
            ) from None

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        retry_on_ambiguous: bool = True,
    ) -> httpx.Response:
        """A data call with the auth headers; logs in again once if the UID is rejected."""
        for relogin_left in (True, False):
            headers = self._headers()

            def build(headers: dict[str, str] = headers) -> dict[str, Any]:
                return {"headers": headers, "params": params, "json": json_body}

            response = self._send_with_retry(method, path, build, retry_on_ambiguous=retry_on_ambiguous)
            if response.status_code in UID_REJECTED_STATUSES and relogin_left:
                log.info("SmartTID rejected the session (HTTP %d); logging in again", response.status_code)
                self._relogin(headers["UID"])
                continue
            break
        if response.status_code == 429 or response.status_code >= 500:
            raise ApiUnavailable(
                f"SmartTID kept failing (HTTP {response.status_code}: {_message(response)}) "
                f"after {self._retry.attempts} attempts"
            )
        if response.status_code in UID_REJECTED_STATUSES:
            raise AuthenticationFailed(
                f"SmartTID refused access (HTTP {response.status_code}: {_message(response)}). Check that "
                "the API access is active in SmartTID and that the secrets are right."
            )
        if response.status_code >= 400:
            raise ApiRejected(_message(response), response.status_code)
        return response

    def _get_all(self, path: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Every row of a list endpoint, page by page (offset/limit, x-pagination)."""
        rows: list[dict[str, Any]] = []
        offset = 0
        while True:
            response = self._call("GET", path, params={**(params or {}), "offset": offset, "limit": PAGE_SIZE})
            page = response.json()
            if not isinstance(page, list):
                raise ApiUnavailable(f"SmartTID returned an unexpected answer for {path} (not a list)")
            rows.extend(page)
            pagination = _pagination(response)
            total = pagination.get("totalFiltered", pagination.get("totalCount"))
            if not page or len(page) < PAGE_SIZE or (total is not None and offset + len(page) >= int(total)):
                return rows
            offset += len(page)

    # --- master data ----------------------------------------------------------------------
    def list_records(self, record_type: RecordType, *, job_code: str | None = None) -> list[RemoteRecord]:
        params = {"sJobCode": job_code} if record_type is RecordType.OPERATION else None
        return [self._to_remote(record_type, row) for row in self._get_all(RESOURCE_PATH[record_type], params)]

    def find(self, record_type: RecordType, values: dict[str, Value]) -> RemoteRecord | None:
        """The stored record with the key of ``values``, if any (used after an ambiguous POST)."""
        layout = LAYOUTS[record_type]
        if record_type is RecordType.OPERATION:
            candidates = self.list_records(record_type, job_code=str(values["sJobCode"]))
        else:
            key = layout.key[0]
            field = CROSSWALK[record_type][key]
            literal = str(values[key]).replace("'", "''")
            rows = self._get_all(RESOURCE_PATH[record_type], {"Filter": f"{field}='{literal}'"})
            candidates = [self._to_remote(record_type, row) for row in rows]
        wanted = tuple(values[name] for name in layout.key)
        for candidate in candidates:
            if tuple(candidate.values.get(name) for name in layout.key) == wanted:
                return candidate
        return None

    def create(self, record_type: RecordType, values: dict[str, Value]) -> None:
        body = self._body(record_type, values)
        path = RESOURCE_PATH[record_type]
        for attempt in range(1, self._retry.attempts + 1):
            try:
                self._call(CREATE_METHOD, path, json_body=body, retry_on_ambiguous=False)
                return
            except ApiUnavailable as exc:
                if isinstance(exc, AuthenticationFailed) or attempt == self._retry.attempts:
                    raise
                # The request may or may not have been applied: look before sending it again.
                existing = self.find(record_type, values)
                if existing is not None:
                    log.info("SmartTID %s %s: the create did arrive; not sending it again", CREATE_METHOD, path)
                    return
                time.sleep(min(self._retry.initial_wait * 2 ** (attempt - 1), self._retry.max_wait))

    def update(self, record_type: RecordType, remote_id: int | str, values: dict[str, Value]) -> None:
        path = f"{RESOURCE_PATH[record_type]}/{remote_id}"
        self._call(UPDATE_METHOD, path, json_body=self._body(record_type, values))

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
            value = remote_value(spec, row[field])
            if value is not None:
                values[spec.name] = value
        return RemoteRecord(id=row["ID"], values=values)

    # --- export ---------------------------------------------------------------------------
    def untransferred_job_ledger_entries(self) -> list[dict[str, Any]]:
        method, path = JOB_LEDGER_READ
        response = self._call(method, path)
        rows = response.json()
        if not isinstance(rows, list):
            raise ApiUnavailable(f"SmartTID returned an unexpected answer for {path} (not a list)")
        return rows

    def mark_job_ledger_entries_transferred(self, ids: list[int]) -> None:
        method, path = JOB_LEDGER_MARK
        self._call(method, path, params={"sIDList": ",".join(str(i) for i in ids)})

    def time_ledger_entries(self, employee_code: str) -> list[dict[str, Any]]:
        method, path = TIME_LEDGER_READ
        assert method == "GET"
        return self._get_all(path, {"sEmployeeCode": employee_code})

    def active_employee_codes(self) -> list[str]:
        rows = self._get_all(RESOURCE_PATH[RecordType.EMPLOYEE])
        return [str(row["EmployeeCode"]) for row in rows if row.get("Active", True)]


def _pagination(response: httpx.Response) -> dict[str, Any]:
    try:
        value = json.loads(response.headers.get("x-pagination", "{}"))
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _message(response: httpx.Response) -> str:
    """SmartAPI's error text (plain text, or a JSON string / object), shortened."""
    text = response.text.strip()
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = text
    if isinstance(parsed, dict):
        parsed = parsed.get("message") or parsed.get("Message") or parsed.get("error") or text
    return str(parsed).strip()[:500] or f"HTTP {response.status_code} without a message"


def _describe(exc: BaseException | None) -> str:
    if isinstance(exc, _Retryable):
        return f"HTTP {exc.response.status_code}"
    if exc is None:
        return "unknown error"
    return type(exc).__name__
