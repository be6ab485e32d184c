"""The SmartAPI sandbox's own reading of SmartTID's documentation (../shared/reference/smarttid-api.md).

Written from the document, not from TimeBridge's connector: a sandbox that borrowed the
connector's tables would repeat its mistakes, and no test could catch them. Every row says where
it comes from: **DOC** (stated on SmartTID's page), **EX** (read from an example), **INF** (the
document's inference) or **GAP** (not readable; decided here as SmartTID plausibly would).

What the document does not settle, and could plausibly go two ways, is a behaviour switch of the
sandbox (``sandbox.smartapi.Switches``): the answer to an unknown body field, JSON types in a body,
over-long text, a POST for a record that exists, the date style of the GET objects, whether the
employee object shows its work calendar, the minimum a create needs, and the methods of the two
job-ledger routes.

Bodies: SmartAPI's POST/PUT bodies are a **GAP** (§4.6, §6 item 12). The document's inference, used
here: a JSON object keyed by the *Create* functions' parameter names (``sEmployeeCode``, …, §3.1-3.3),
typed by their SQL type — NVARCHAR → JSON string, INT/DECIMAL → JSON number, BIT → JSON boolean —
and stored in the SmartAPI object field of the same name without its prefix (§5, **EX**).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any


class RecordType(StrEnum):
    """The record types of SmartTID's Create functions (§2.2)."""

    EMPLOYEE = "Employee"
    JOB = "Job"
    OPERATION = "Operation"


class Kind(StrEnum):
    """What a parameter holds, read from its SQL type and its description."""

    TEXT = "text"
    INTEGER = "integer"
    DECIMAL = "decimal"
    DATE = "date"  # NVARCHAR(10) ``dd-mm-yyyy`` (§3.2)
    FLAG = "flag"  # BIT, or NVARCHAR ``"0"``/``"1"`` (§3.2: "0 for no and 1 for yes")
    CHOICE = "choice"


@dataclass(frozen=True)
class Parameter:
    """One Create-function parameter as a body field."""

    name: str
    #: SQL type without length: NVARCHAR, INT, DECIMAL or BIT (decides the JSON type of the value)
    sql: str
    kind: Kind
    #: NVARCHAR length (None = MAX, or not a string)
    length: int | None
    #: the SmartAPI object field the value is stored in; None = not on this record (a master-data
    #: name used when SmartTID creates the code's master record)
    field: str | None
    #: where the parameter's row (name, SQL type, length) comes from: DOC, INF or GAP; the object
    #: field is read from the crosswalk of §5 (EX: the names match) unless a comment says otherwise
    basis: str
    choices: tuple[str, ...] = ()

    @property
    def wire(self) -> type | tuple[type, ...]:
        """The JSON type SmartTID's model binding expects for this parameter."""
        if self.sql == "BIT":
            return bool
        if self.sql == "INT":
            return int
        if self.sql == "DECIMAL":
            return (int, float)
        return str


@dataclass(frozen=True)
class Resource:
    record_type: RecordType
    #: the list path (DOC, §4.9); POST creates here, PUT ``<path>/{ID}`` updates (INF, §4.6)
    path: str
    parameters: tuple[Parameter, ...]
    #: the parameters that identify the record (DOC: "required even for a minimal update")
    key: tuple[str, ...]
    #: the page's "usual minimum to create" (DOC), less sAPIKey
    usual_minimum: tuple[str, ...]
    #: what the sandbox asks of a create by default: the key and the record's name/description. The
    #: sample Job line omits sJobTemplate, so the usual minimum is a recommendation (INF, §3.2).
    name_minimum: tuple[str, ...]

    def parameter(self, name: str) -> Parameter | None:
        return _BY_NAME[self.record_type].get(name)

    def key_fields(self) -> tuple[str, ...]:
        """The object fields of the key (every key parameter is stored on the record)."""
        return tuple(str(_BY_NAME[self.record_type][name].field) for name in self.key)


T, I, N, D, F, C = Kind.TEXT, Kind.INTEGER, Kind.DECIMAL, Kind.DATE, Kind.FLAG, Kind.CHOICE
JOB_STATUSES = ("Planned", "Started", "Completed", "Canceled", "Template")  # DOC §3.2 pos 6

#: §3.1 Create employee (rows 1-17 readable; dtEmployedStartDate, dtEmployedEndDate and sTemplateCode
#: exist at some later position). Object fields: §4.9.1 and the crosswalk of §5.
EMPLOYEE = Resource(
    RecordType.EMPLOYEE,
    "/employees",
    (
        Parameter("sEmployeeCode", "NVARCHAR", T, 20, "EmployeeCode", "DOC"),
        Parameter("sName", "NVARCHAR", T, 50, "Name", "DOC"),
        Parameter("sAddress", "NVARCHAR", T, 50, "Address", "DOC"),
        Parameter("sZipCode", "NVARCHAR", T, 20, "ZipCode", "DOC"),
        Parameter("sCity", "NVARCHAR", T, 50, "City", "DOC"),
        Parameter("sCellPhone", "NVARCHAR", T, 50, "CellPhone", "DOC"),
        Parameter("sEmail", "NVARCHAR", T, 50, "EMail", "DOC"),  # the object spells it EMail (EX)
        Parameter("sCPRNo", "NVARCHAR", T, 20, "CPRNo", "DOC"),
        Parameter("sDepartmentCode", "NVARCHAR", T, 20, "DepartmentCode", "DOC"),
        Parameter("sDepartmentName", "NVARCHAR", T, 50, None, "DOC"),  # the department master's name
        # The employee object's readable part has no WorkCalendarCode (GAP): stored under that name,
        # shown or not by the switch ``employee_work_calendar_shown``.
        Parameter("sWorkCalendarCode", "NVARCHAR", T, 20, "WorkCalendarCode", "GAP"),
        Parameter("sWorkFunctionCode", "NVARCHAR", T, 20, "WorkFunctionCode", "DOC"),
        Parameter("sWorkFunctionName", "NVARCHAR", T, 50, None, "DOC"),
        Parameter("sPayrollTypeCode", "NVARCHAR", T, 20, "PayrollTypeCode", "DOC"),
        Parameter("sPayrollTypeName", "NVARCHAR", T, 50, None, "DOC"),
        Parameter("sJournalCode", "NVARCHAR", T, 20, "JournalCode", "DOC"),
        Parameter("sJournalName", "NVARCHAR", T, 50, None, "INF"),  # type cut off; pattern of rows 10/13/15
        # Beyond row 17 (names DOC, types and format GAP): dates as the Job page writes them.
        Parameter("dtEmployedStartDate", "NVARCHAR", D, 10, None, "GAP"),  # the object shows only Employed
        Parameter("dtEmployedEndDate", "NVARCHAR", D, 10, None, "GAP"),
        Parameter("sTemplateCode", "NVARCHAR", T, 20, "TemplateCode", "INF"),
    ),
    key=("sEmployeeCode",),
    usual_minimum=("sEmployeeCode", "sName", "dtEmployedStartDate", "sTemplateCode"),
    name_minimum=("sEmployeeCode", "sName"),
)

#: §3.2 Create job (rows 1-25 readable, 26 cut after "sExpectedMaterialDeliv"). Objects: §4.9.2, §5.
JOB = Resource(
    RecordType.JOB,
    "/jobs",
    (
        Parameter("sJobCode", "NVARCHAR", T, 20, "JobCode", "DOC"),
        Parameter("sJobDescription", "NVARCHAR", T, 50, "JobDescription", "DOC"),
        Parameter("sJobDescription2", "NVARCHAR", T, 50, "JobDescription2", "DOC"),
        Parameter("sPlannedStartDate", "NVARCHAR", D, 10, "PlannedStartDate", "DOC"),
        Parameter("sPlannedCompletionDate", "NVARCHAR", D, 10, "PlannedCompletionDate", "DOC"),
        Parameter("sStatus", "NVARCHAR", C, 10, "Status", "DOC", JOB_STATUSES),
        Parameter("sJobTemplate", "NVARCHAR", T, 20, "JobTemplate", "DOC"),
        Parameter("sJobGroupCode", "NVARCHAR", T, 40, "JobGroupCode", "DOC"),
        Parameter("nPlannedNumber", "INT", I, None, "PlannedNumber", "DOC"),
        Parameter("nNumberPerContainer", "INT", I, None, "NumberPerContainer", "DOC"),
        Parameter("sOrderCode", "NVARCHAR", T, 20, "OrderCode", "DOC"),
        Parameter("sCustomerCode", "NVARCHAR", T, 20, "CustomerCode", "DOC"),
        # 13-17: used when the customer is created; they go to the customer master (§5).
        Parameter("sCustomerName", "NVARCHAR", T, 50, None, "DOC"),
        Parameter("sCustomerAddress", "NVARCHAR", T, 50, None, "DOC"),
        Parameter("sCustomerZipCode", "NVARCHAR", T, 10, None, "DOC"),
        Parameter("sCustomerCity", "NVARCHAR", T, 50, None, "DOC"),
        Parameter("sCustomerPhone", "NVARCHAR", T, 50, None, "DOC"),
        Parameter("sPlannedDeliveryDate", "NVARCHAR", D, 10, "PlannedDeliveryDate", "DOC"),
        Parameter("sActualDeliveryDate", "NVARCHAR", D, 10, "ActualDeliveryDate", "DOC"),
        Parameter("sDepartmentCode", "NVARCHAR", T, 20, "DepartmentCode", "DOC"),
        Parameter("sProductCode", "NVARCHAR", T, 20, "ProductCode", "DOC"),
        Parameter("sReference", "NVARCHAR", T, 50, "Reference", "DOC"),
        Parameter("sRemark", "NVARCHAR", T, None, "Remark", "DOC"),  # NVARCHAR(MAX)
        Parameter("sMaterialsRecieved", "NVARCHAR", F, 20, "MaterialsRecieved", "DOC"),
        Parameter("sReadyToShip", "NVARCHAR", F, 1, "ReadyToShip", "DOC"),
        Parameter("sExpectedMaterialDeliveryDate", "NVARCHAR", D, 10, "ExpectedMaterialDeliveryDate", "INF"),
        Parameter("sInvoiced", "NVARCHAR", F, 1, "Invoiced", "INF"),  # row 27; the sample line has 0 there
    ),
    key=("sJobCode",),
    usual_minimum=("sJobCode", "sJobDescription", "sJobTemplate", "sStatus"),
    name_minimum=("sJobCode", "sJobDescription"),
)

#: §3.3 Create operation (rows 1-12 readable, 13 cut after "bReportScr"). Objects: §4.9.3, §5.
OPERATION = Resource(
    RecordType.OPERATION,
    "/joboperations",
    (
        Parameter("sJobCode", "NVARCHAR", T, 20, "JobCode", "DOC"),
        Parameter("nLineNumber", "DECIMAL", N, None, "LineNumber", "DOC"),
        Parameter("sOperationCode", "NVARCHAR", T, 20, "OperationCode", "DOC"),
        Parameter("sDescription", "NVARCHAR", T, 50, "Description", "DOC"),
        # hours as a string; the object shows a number (PlannedTime 30, EX)
        Parameter("sPlannedTime", "NVARCHAR", N, 10, "PlannedTime", "DOC"),
        Parameter("sERPReference", "NVARCHAR", T, 20, "ERPReference", "DOC"),
        Parameter("nPlannedQuantityPerHour", "DECIMAL", N, None, "PlannedQuantityPerHour", "DOC"),
        Parameter("nQuantityPerUnit", "DECIMAL", N, None, "QuantityPerUnit", "DOC"),
        Parameter("nLength", "DECIMAL", N, None, "Length", "DOC"),
        Parameter("nWidth", "DECIMAL", N, None, "Width", "DOC"),
        Parameter("nHeight", "DECIMAL", N, None, "Height", "DOC"),
        Parameter("bOperationCompleted", "BIT", F, None, "OperationCompleted", "DOC"),
        # row 13: the operation master has ReportScrap, the job operation does not (§4.9.6)
        Parameter("bReportScrap", "BIT", F, None, None, "INF"),
    ),
    key=("sJobCode", "nLineNumber"),
    usual_minimum=("sJobCode", "nLineNumber", "sOperationCode", "sDescription"),
    name_minimum=("sJobCode", "nLineNumber", "sOperationCode", "sDescription"),
)

RESOURCES: dict[RecordType, Resource] = {r.record_type: r for r in (EMPLOYEE, JOB, OPERATION)}
_BY_NAME = {r.record_type: {p.name: p for p in r.parameters} for r in RESOURCES.values()}
RESOURCE_OF_PATH: dict[str, Resource] = {r.path.strip("/"): r for r in RESOURCES.values()}

#: §4.10: the untransferred job-ledger entries (method GAP, INF GET) and the mark (method GAP, INF
#: POST or PUT; ``nID`` or ``sIDList`` as query parameters, INF). The methods are switches.
JOB_LEDGER_READ_PATH = "/getjobledgerentries"
JOB_LEDGER_MARK_PATH = "/markjobledgerentrytransfered"
#: §4.9.8/§4.9.9: an employee's ledger entries (GET, ``sEmployeeCode`` required).
EMPLOYEE_TIME_LEDGER_PATH = "/employeetimeledgerentries"
EMPLOYEE_JOB_LEDGER_PATH = "/employeejobledgerentries"


def blank(record_type: RecordType) -> dict[str, Any]:
    """A new record's stored fields before its body is applied (flags false, the rest null)."""
    row: dict[str, Any] = {p.field: (False if p.kind is Kind.FLAG else None)
                           for p in RESOURCES[record_type].parameters if p.field}
    if record_type is RecordType.EMPLOYEE:
        row |= {"Active": True, "Employed": True}  # both shown in the object (§4.9.1)
    return row


class RefusedError(ValueError):
    """A body SmartTID answers with 400; the message is the answer's text."""


@dataclass(frozen=True)
class BodyRules:
    """How a body is read: the switches that decide what the document leaves open."""

    unknown_parameters: str = "refuse"  # "refuse" | "ignore"
    body_types: str = "strict"  # "strict" | "lenient"
    overlong_text: str = "refuse"  # "refuse" | "truncate"
    date_fields: str = "datetime"  # "datetime" | "date"


_DECIMAL_TEXT = re.compile(r"^\s*-?\d+(\.\d+)?\s*$")


def read_body(record_type: RecordType, body: dict[str, Any], rules: BodyRules) -> dict[str, Any]:
    """The body's values under their object field names (parameters without a field are checked
    and left out); raises :class:`RefusedError` as SmartTID would answer 400."""
    resource = RESOURCES[record_type]
    values: dict[str, Any] = {}
    for name, value in body.items():
        parameter = resource.parameter(name)
        if parameter is None:
            if rules.unknown_parameters == "ignore":
                continue  # as ASP.NET's model binding drops a property the model does not have
            raise RefusedError(f"Unknown parameter {name}")
        if value is None:
            continue  # not supplied: the procedure's default (§1)
        stored = _stored(parameter, value, rules)
        if parameter.field:
            values[parameter.field] = stored
    return values


def _stored(parameter: Parameter, value: Any, rules: BodyRules) -> Any:
    name = parameter.name
    value = _as_wire_type(parameter, value, lenient=rules.body_types == "lenient")
    if isinstance(value, str) and parameter.length is not None and _nvarchar_length(value) > parameter.length:
        if rules.overlong_text == "truncate":  # a stored procedure's NVARCHAR(n) parameter cuts silently
            value = value.encode("utf-16-le")[: 2 * parameter.length].decode("utf-16-le", "ignore")
        else:
            raise RefusedError(f"String or binary data would be truncated: {name} is longer than "
                          f"{parameter.length} characters")
    match parameter.kind:
        case Kind.DATE:
            try:
                moment = datetime.strptime(value, "%d-%m-%Y")
            except ValueError:
                raise RefusedError(f"Invalid value for {name}: {value!r} (expected dd-mm-yyyy)") from None
            if moment.year < 1753:  # SQL Server's DATETIME
                raise RefusedError("The conversion of a nvarchar data type to a datetime data type resulted in an "
                              "out-of-range value.")
            return moment.strftime("%Y-%m-%d" if rules.date_fields == "date" else "%Y-%m-%dT00:00:00")
        case Kind.FLAG:
            if parameter.sql == "BIT":
                return value
            if value not in ("0", "1"):
                raise RefusedError(f"Invalid value for {name}: {value!r} (0 for no, 1 for yes)")
            return value == "1"
        case Kind.CHOICE:
            if value not in parameter.choices:
                raise RefusedError(f"Invalid value for {name}: {value!r} (one of {', '.join(parameter.choices)})")
            return value
        case Kind.INTEGER:
            if not -(2**31) <= value < 2**31:
                raise RefusedError(f"Arithmetic overflow error converting expression to data type int ({name}).")
            return value
        case Kind.DECIMAL:
            if isinstance(value, str):
                if not _DECIMAL_TEXT.match(value):  # SQL Server's CAST to DECIMAL: "." only
                    raise RefusedError(f"Error converting data type nvarchar to numeric ({name}: {value!r}).")
                number = Decimal(value)
                return int(number) if number == number.to_integral_value() else float(number)
            return value
        case _:
            return value


def _as_wire_type(parameter: Parameter, value: Any, *, lenient: bool) -> Any:
    """The value if its JSON type is the parameter's; under ``lenient`` binding, a number or
    boolean given for a string (and a numeric string for a number) is converted first."""
    wire = parameter.wire
    if isinstance(value, wire) and not (wire is not bool and isinstance(value, bool)):
        return value
    if lenient:
        if wire is str and isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        if wire is not str and wire is not bool and isinstance(value, str):
            try:
                number = Decimal(value.strip())
            except InvalidOperation:
                pass
            else:
                if parameter.sql == "INT" and number == number.to_integral_value():
                    return int(number)
                if parameter.sql == "DECIMAL":
                    return int(number) if number == number.to_integral_value() else float(number)
        if wire is bool and value in ("true", "false"):
            return value == "true"
    raise RefusedError(f"Invalid value for {parameter.name}: {value!r} (expected a JSON "
                  f"{_JSON_NAMES[parameter.sql]})")


def _nvarchar_length(text: str) -> int:
    """Length as NVARCHAR counts it: UTF-16 code units (a character outside the BMP counts twice)."""
    return len(text.encode("utf-16-le")) // 2


_JSON_NAMES = {"NVARCHAR": "string", "INT": "integer", "DECIMAL": "number", "BIT": "boolean"}
