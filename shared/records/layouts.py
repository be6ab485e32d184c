"""The incoming record layouts: one declarative table per record type.

Each line of an incoming file is ``RecordType;p1;p2;...`` where ``p1..pN`` are the parameters of
SmartTID's *Create employee / job / operation* web-service functions in documented order,
without ``sAPIKey`` (reference: ../shared/reference/smarttid-api.md §3.1-3.3).

Only positions whose name and type are documented (or, where marked ``guess``, inferred from the
SmartAPI object) are listed. Positions beyond a table are accepted and ignored; docs/file-formats.md lists
them as unknown.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class RecordType(StrEnum):
    EMPLOYEE = "Employee"
    JOB = "Job"
    OPERATION = "Operation"


class FieldKind(StrEnum):
    TEXT = "text"  # NVARCHAR(n): kept as a string (codes keep leading zeros)
    DATE = "date"  # dd-mm-yyyy (ISO yyyy-mm-dd also accepted)
    FLAG = "flag"  # 0 / 1
    INTEGER = "integer"
    DECIMAL = "decimal"  # "," or "." as decimal separator
    CHOICE = "choice"  # one of ``choices`` (matched case-insensitively)


@dataclass(frozen=True)
class FieldSpec:
    position: int
    name: str
    kind: FieldKind
    max_length: int | None = None
    choices: tuple[str, ...] = ()
    #: Auto-creation hint (e.g. a department *name*) that only matters together with its code field;
    #: it is sent whenever that code is sent and never compared on its own.
    companion_of: str | None = None
    #: True where the parameter name/type is our inference, not SmartTID's documentation.
    guess: bool = False


@dataclass(frozen=True)
class Layout:
    record_type: RecordType
    fields: tuple[FieldSpec, ...]
    key: tuple[str, ...]
    #: fields that must be given to *create* the record (SmartTID's "usual minimum", less what is
    #: not in the readable layout)
    required_to_create: tuple[str, ...]

    def field(self, name: str) -> FieldSpec:
        for spec in self.fields:
            if spec.name == name:
                return spec
        raise KeyError(name)


#: GUESS: the documentation names DECIMAL parameters without precision or scale. We accept at most
#: ``DECIMAL_SCALE`` digits after the separator and ``DECIMAL_PRECISION`` digits in all, so a value
#: is never rounded silently by SmartTID (docs/targets.md, "Decisions where SmartTID's documentation has gaps").
DECIMAL_PRECISION, DECIMAL_SCALE = 18, 4

T, D, F, I, N, C = (FieldKind.TEXT, FieldKind.DATE, FieldKind.FLAG, FieldKind.INTEGER, FieldKind.DECIMAL,
                    FieldKind.CHOICE)

EMPLOYEE = Layout(
    RecordType.EMPLOYEE,
    (
        FieldSpec(1, "sEmployeeCode", T, 20),
        FieldSpec(2, "sName", T, 50),
        FieldSpec(3, "sAddress", T, 50),
        FieldSpec(4, "sZipCode", T, 20),
        FieldSpec(5, "sCity", T, 50),
        FieldSpec(6, "sCellPhone", T, 50),
        FieldSpec(7, "sEmail", T, 50),
        FieldSpec(8, "sCPRNo", T, 20),
        FieldSpec(9, "sDepartmentCode", T, 20),
        FieldSpec(10, "sDepartmentName", T, 50, companion_of="sDepartmentCode"),
        FieldSpec(11, "sWorkCalendarCode", T, 20),
        FieldSpec(12, "sWorkFunctionCode", T, 20),
        FieldSpec(13, "sWorkFunctionName", T, 50, companion_of="sWorkFunctionCode"),
        FieldSpec(14, "sPayrollTypeCode", T, 20),
        FieldSpec(15, "sPayrollTypeName", T, 50, companion_of="sPayrollTypeCode"),
        FieldSpec(16, "sJournalCode", T, 20),
        FieldSpec(17, "sJournalName", T, 50, companion_of="sJournalCode", guess=True),
    ),
    key=("sEmployeeCode",),
    required_to_create=("sName",),
)

JOB = Layout(
    RecordType.JOB,
    (
        FieldSpec(1, "sJobCode", T, 20),
        FieldSpec(2, "sJobDescription", T, 50),
        FieldSpec(3, "sJobDescription2", T, 50),
        FieldSpec(4, "sPlannedStartDate", D, 10),
        FieldSpec(5, "sPlannedCompletionDate", D, 10),
        FieldSpec(6, "sStatus", C, 10, choices=("Planned", "Started", "Completed", "Canceled", "Template")),
        FieldSpec(7, "sJobTemplate", T, 20),
        FieldSpec(8, "sJobGroupCode", T, 40),
        FieldSpec(9, "nPlannedNumber", I),
        FieldSpec(10, "nNumberPerContainer", I),
        FieldSpec(11, "sOrderCode", T, 20),
        FieldSpec(12, "sCustomerCode", T, 20),
        FieldSpec(13, "sCustomerName", T, 50, companion_of="sCustomerCode"),
        FieldSpec(14, "sCustomerAddress", T, 50, companion_of="sCustomerCode"),
        FieldSpec(15, "sCustomerZipCode", T, 10, companion_of="sCustomerCode"),
        FieldSpec(16, "sCustomerCity", T, 50, companion_of="sCustomerCode"),
        FieldSpec(17, "sCustomerPhone", T, 50, companion_of="sCustomerCode"),
        FieldSpec(18, "sPlannedDeliveryDate", D, 10),
        FieldSpec(19, "sActualDeliveryDate", D, 10),
        FieldSpec(20, "sDepartmentCode", T, 20),
        FieldSpec(21, "sProductCode", T, 20),
        FieldSpec(22, "sReference", T, 50),
        FieldSpec(23, "sRemark", T, None),
        FieldSpec(24, "sMaterialsRecieved", F, 20),
        FieldSpec(25, "sReadyToShip", F, 1),
        FieldSpec(26, "sExpectedMaterialDeliveryDate", D, 10, guess=True),
    ),
    key=("sJobCode",),
    required_to_create=("sJobDescription",),
)

OPERATION = Layout(
    RecordType.OPERATION,
    (
        FieldSpec(1, "sJobCode", T, 20),
        FieldSpec(2, "nLineNumber", N),
        FieldSpec(3, "sOperationCode", T, 20),
        FieldSpec(4, "sDescription", T, 50),
        FieldSpec(5, "sPlannedTime", N, 10),
        FieldSpec(6, "sERPReference", T, 20),
        FieldSpec(7, "nPlannedQuantityPerHour", N),
        FieldSpec(8, "nQuantityPerUnit", N),
        FieldSpec(9, "nLength", N),
        FieldSpec(10, "nWidth", N),
        FieldSpec(11, "nHeight", N),
        FieldSpec(12, "bOperationCompleted", F),
    ),
    key=("sJobCode", "nLineNumber"),
    required_to_create=("sOperationCode", "sDescription"),
)

LAYOUTS: dict[RecordType, Layout] = {layout.record_type: layout for layout in (EMPLOYEE, JOB, OPERATION)}
