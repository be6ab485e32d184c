"""The SmartAPI sandbox is an adversary, not a mirror: it reads SmartTID's documentation on its own
(``sandbox/smartapi_model.py``) and imports nothing of the product, so a wrong guess of the connector
(a parameter sent under the wrong name, a value of the wrong type) meets SmartTID's answer instead of
its own reflection.

The expected object fields below are written from ../shared/reference/smarttid-api.md (§3, §5), not
from either table.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.storage.blob import BlobServiceClient

from shared.importing.intake import apply_parsed
from shared.importing.parsing import parse_file
from shared.importing.reports import Receipt
from shared.platform.config import Settings
from shared.targets.factory import connector_factory
from tests.conftest import Sandbox

ROOT = Path(__file__).resolve().parents[1]
PRODUCT_PACKAGES = ("shared", "functions", "function_app", "tools")


def product_imports(source: str, filename: str = "<source>") -> list[str]:
    """Every import of product code in ``source``: ``import``/``from`` statements (also inside
    functions and under TYPE_CHECKING) and ``importlib.import_module``/``__import__`` of a literal."""
    found: list[str] = []

    def product(name: str) -> bool:
        return name.split(".")[0] in PRODUCT_PACKAGES

    for node in ast.walk(ast.parse(source, filename)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            called = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if called in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                names = [node.args[0].value]
        found += [f"{filename}:{node.lineno} imports {name}" for name in names if product(name)]
    return found


def test_no_sandbox_module_imports_product_code() -> None:
    files = sorted((ROOT / "sandbox").rglob("*.py"))
    assert len(files) >= 5
    found = [hit for path in files for hit in product_imports(path.read_text(), str(path.relative_to(ROOT)))]
    assert found == []


@pytest.mark.parametrize("source", [
    "from shared.targets.smarttid.connector import CROSSWALK",
    "import shared.records.layouts as layouts",
    "def f():\n    from shared.records import layouts\n",
    "if TYPE_CHECKING:\n    import functions.x\n",
    "import importlib\nimportlib.import_module('shared.targets.smarttid.connector')",
])
def test_the_independence_check_sees_every_form_of_import(source: str) -> None:
    assert len(product_imports(source)) == 1
    assert product_imports("from sandbox import seed\nimport starlette\nshared = 1") == []


# --- the connector against the sandbox's own reading ------------------------------------------
def run(settings: Settings, text: str) -> tuple[dict[str, int], int, list[str]]:
    """Import ``text`` with the configured connector: the lines per status, the writes, the reasons."""
    connector = connector_factory(settings)()
    try:
        parsed = parse_file(lambda: [text.encode()], fold_codes=connector.codes_case_insensitive, target="SmartTID")
        receipt = Receipt(source="independence.csv", etag="0x1", status="", received_at="")
        result, _ = apply_parsed(settings, connector, "", parsed, receipt)
        return result.line_counts(), connector.calls.writes, [e.reason for e in result.errors]
    finally:
        connector.close()


class SmartApi:
    """SmartAPI's documented GET, spoken directly (login, the three headers, ``Filter``)."""

    def __init__(self, services: dict[str, str]) -> None:
        self.url, self.api_key = services["SMARTTID_SANDBOX_URL"], services["SMARTTID_API_KEY"]
        login = httpx.post(f"{self.url}/apilogin", headers={"API-Key": self.api_key},
                           files={"sAPIKey": (None, services["SMARTTID_CUSTOMER_KEY"])}, timeout=10)
        login.raise_for_status()
        self.headers = {"API-Key": self.api_key, "UID": login.json()[0]["UID"], "DEVICEID": "tests@example.dk"}

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(method, f"{self.url}{path}", headers=self.headers, timeout=10, **kwargs)

    def get(self, path: str, **params: str) -> list[dict[str, Any]]:
        response = self.request("GET", path, params=params)
        response.raise_for_status()
        rows: list[dict[str, Any]] = response.json()
        return rows


EMPLOYEE = ("Employee;A361;Anne Jensen;Vestergade 1;8000;Aarhus C;+4512345678;aj@example.dk;;PROD;Production;"
            "STD;WELD;Welder;HOUR;Hourly;FUNK;Function journal")
JOB = ("Job;0816;Pipe rack;Second line;01-12-2026;24-12-2026;Planned;TEMPLATE1;GROUP-A;100;10;ORD-1;C-9;"
       "Customer A/S;Havnen 2;8000;Aarhus;+4511111111;20-12-2026;21-12-2026;PROD;PRD-7;REF-1;A remark;1;0;15-12-2026")
OPERATION = "Operation;0816;30;WELD;Welding, seams;2,5;ERP-30;4,25;1;120.5;40;10;1"


@pytest.mark.parametrize("date_fields", ["datetime", "date"])
def test_every_written_field_lands_in_its_documented_object_field(
    storage: BlobServiceClient, settings: Settings, sandbox: Sandbox, services: dict[str, str], date_fields: str
) -> None:
    # A body field the sandbox does not know is dropped without a word (as ASP.NET's model binding
    # does): a parameter sent under a wrong name could only be seen here, in what GET shows.
    sandbox.switch(unknown_parameters="ignore", date_fields=date_fields)
    counts, writes, errors = run(settings, "\n".join([EMPLOYEE, JOB, OPERATION]))
    assert (counts["created"], errors) == (3, [])

    def day(text: str) -> str:
        return text if date_fields == "date" else f"{text}T00:00:00"

    api = SmartApi(services)
    [employee] = api.get("/employees", Filter="EmployeeCode='A361'")
    assert {k: employee[k] for k in ("Name", "Address", "ZipCode", "City", "CellPhone", "EMail", "DepartmentCode",
                                     "WorkCalendarCode", "WorkFunctionCode", "PayrollTypeCode", "JournalCode")} == {
        "Name": "Anne Jensen", "Address": "Vestergade 1", "ZipCode": "8000", "City": "Aarhus C",
        "CellPhone": "+4512345678", "EMail": "aj@example.dk", "DepartmentCode": "PROD", "WorkCalendarCode": "STD",
        "WorkFunctionCode": "WELD", "PayrollTypeCode": "HOUR", "JournalCode": "FUNK"}
    assert "Production" not in employee.values()  # a department's name belongs to the department
    [job] = api.get("/jobs", Filter="JobCode='0816'")
    assert {k: job[k] for k in (
        "JobDescription", "JobDescription2", "PlannedStartDate", "PlannedCompletionDate", "Status", "JobTemplate",
        "JobGroupCode", "PlannedNumber", "NumberPerContainer", "OrderCode", "CustomerCode", "PlannedDeliveryDate",
        "ActualDeliveryDate", "DepartmentCode", "ProductCode", "Reference", "Remark", "MaterialsRecieved",
        "ReadyToShip", "ExpectedMaterialDeliveryDate")} == {
        "JobDescription": "Pipe rack", "JobDescription2": "Second line", "PlannedStartDate": day("2026-12-01"),
        "PlannedCompletionDate": day("2026-12-24"), "Status": "Planned", "JobTemplate": "TEMPLATE1",
        "JobGroupCode": "GROUP-A", "PlannedNumber": 100, "NumberPerContainer": 10, "OrderCode": "ORD-1",
        "CustomerCode": "C-9", "PlannedDeliveryDate": day("2026-12-20"), "ActualDeliveryDate": day("2026-12-21"),
        "DepartmentCode": "PROD", "ProductCode": "PRD-7", "Reference": "REF-1", "Remark": "A remark",
        "MaterialsRecieved": True, "ReadyToShip": False, "ExpectedMaterialDeliveryDate": day("2026-12-15")}
    [operation] = api.get("/joboperations", sJobCode="0816")
    assert {k: operation[k] for k in (
        "LineNumber", "OperationCode", "Description", "PlannedTime", "ERPReference", "PlannedQuantityPerHour",
        "QuantityPerUnit", "Length", "Width", "Height", "OperationCompleted")} == {
        "LineNumber": 30, "OperationCode": "WELD", "Description": "Welding, seams", "PlannedTime": 2.5,
        "ERPReference": "ERP-30", "PlannedQuantityPerHour": 4.25, "QuantityPerUnit": 1, "Length": 120.5,
        "Width": 40, "Height": 10, "OperationCompleted": True}

    # What GET shows is what the connector compares: the same file again writes nothing.
    counts, writes, errors = run(settings, "\n".join([EMPLOYEE, JOB, OPERATION]))
    assert (counts["unchanged"], writes, errors) == (3, 0, [])


def test_a_body_field_the_document_does_not_list_is_refused_by_default_and_dropped_when_ignored(
    sandbox: Sandbox, services: dict[str, str]
) -> None:
    api = SmartApi(services)
    # the object's field name where the Create parameter's belongs: not a parameter of Create job
    body = {"sJobCode": "0817", "sJobDescription": "Named wrong", "JobDescription2": "lost?"}
    refused = api.request("POST", "/jobs", json=body)
    assert (refused.status_code, refused.text) == (400, "Unknown parameter JobDescription2")
    assert api.get("/jobs", Filter="JobCode='0817'") == []

    sandbox.switch(unknown_parameters="ignore")
    assert api.request("POST", "/jobs", json=body).status_code == 200
    [job] = api.get("/jobs", Filter="JobCode='0817'")
    assert (job["JobDescription"], job["JobDescription2"]) == ("Named wrong", None)


@pytest.mark.parametrize(("body", "message"), [
    ({"nPlannedNumber": "5"}, "Invalid value for nPlannedNumber: '5' (expected a JSON integer)"),
    ({"sReadyToShip": True}, "Invalid value for sReadyToShip: True (expected a JSON string)"),
    ({"sMaterialsRecieved": "yes"}, "Invalid value for sMaterialsRecieved: 'yes' (0 for no, 1 for yes)"),
    ({"sPlannedStartDate": "2026-12-01"}, "Invalid value for sPlannedStartDate: '2026-12-01' (expected dd-mm-yyyy)"),
])
def test_a_value_of_another_type_than_the_documented_sql_type_is_refused(
    sandbox: Sandbox, services: dict[str, str], body: dict[str, Any], message: str
) -> None:
    response = SmartApi(services).request("POST", "/jobs", json={"sJobCode": "0818", "sJobDescription": "Typed"} | body)
    assert (response.status_code, response.text) == (400, message)


# --- what the document leaves open: the connector against each plausible answer ---------------
def test_a_smarttid_that_enforces_the_usual_minimum_refuses_new_employees_with_a_reason(
    storage: BlobServiceClient, settings: Settings, sandbox: Sandbox
) -> None:
    # Create employee's usual minimum holds dtEmployedStartDate and sTemplateCode, whose positions in
    # the file are not readable (§3.1): TimeBridge cannot send them, so such a SmartTID refuses the
    # employee — and the line says why. Jobs and operations carry their usual minimum in the file.
    sandbox.switch(create_minimum="usual")
    counts, _, errors = run(settings, "\n".join([EMPLOYEE, JOB, OPERATION]))
    assert (counts["created"], counts["rejected"]) == (2, 1)
    assert errors == ["SmartTID refused to create Employee sEmployeeCode A361: dtEmployedStartDate is required to "
                      "create the employee"]


@pytest.mark.parametrize("switches", [{"post_existing": "update"}, {"body_types": "lenient"},
                                      {"overlong_text": "truncate"}])
def test_every_line_applied_or_reported_whatever_smarttid_does_with_an_existing_key_types_or_long_text(
    storage: BlobServiceClient, settings: Settings, sandbox: Sandbox, switches: dict[str, str]
) -> None:
    sandbox.switch(**switches)
    sandbox.fault("POST", "/employees", drop=True, after_apply=True, times=1)  # the answer to a create is lost
    counts, _, errors = run(settings, "Employee;L-1;Lise Lost\nEmployee;L-2;" + "x" * 60)
    assert (counts["created"], counts["rejected"]) == (1, 1)
    assert [row["Name"] for row in sandbox.find("employees", EmployeeCode="L-1")] == ["Lise Lost"]
    assert sandbox.find("employees", EmployeeCode="L-2") == []  # never sent, so never cut short
    assert errors == ["is 60 characters long; SmartTID allows at most 50"]


def test_the_job_ledger_export_works_whichever_method_the_routes_accept(
    storage: BlobServiceClient, settings: Settings, sandbox: Sandbox
) -> None:
    from shared.export import run_export

    sandbox.switch(job_ledger_read_method="any", job_ledger_mark_method="any")
    receipt = run_export(settings)
    assert receipt is not None and receipt.status == "exported"
    assert all(row["Transfered"] for row in sandbox.state()["jobledger"])


def test_a_mark_route_that_wants_put_stops_the_export_loudly_and_marks_nothing(
    storage: BlobServiceClient, settings: Settings, sandbox: Sandbox
) -> None:
    # The walkthrough's screenshots with the methods are missing (§4.10): POST is TimeBridge's guess.
    from shared.errors import ExportFailedError
    from shared.export import run_export

    sandbox.switch(job_ledger_mark_method="PUT")
    with pytest.raises(ExportFailedError, match="does not support http method 'POST'"):
        run_export(settings)
    assert not any(row["Transfered"] for row in sandbox.state()["jobledger"])


def test_a_read_route_that_wants_another_method_fails_saying_so_and_what_to_do(
    storage: BlobServiceClient, settings: Settings, sandbox: Sandbox
) -> None:
    # GET for reading the job ledger is TimeBridge's reading of the document: if SmartAPI wants POST,
    # the run fails with a message that names the method, the route and where the guess is written.
    from shared.errors import ApiRejectedError
    from shared.export import run_export

    sandbox.switch(job_ledger_read_method="POST")
    with pytest.raises(ApiRejectedError) as caught:
        run_export(settings)
    message = str(caught.value)
    assert "does not accept GET for /getjobledgerentries" in message and "HTTP 405" in message
    assert "docs/targets.md" in message
    assert not any(row["Transfered"] for row in sandbox.state()["jobledger"])


def test_a_field_the_employee_object_does_not_show_is_still_sent_and_lands(
    storage: BlobServiceClient, settings: Settings, sandbox: Sandbox
) -> None:
    # The employee object's readable part has no WorkCalendarCode (§4.9.1). If SmartAPI does not
    # show it, TimeBridge cannot compare it; docs/targets.md decides "a field missing from the GET
    # answer counts as changed, so it is sent rather than silently skipped": a changed calendar
    # reaches SmartTID, at the price of one update per such employee on every import.
    sandbox.switch(employee_work_calendar_shown=False)
    assert run(settings, EMPLOYEE)[0]["created"] == 1
    changed = EMPLOYEE.replace(";STD;", ";NIGHT;")
    counts, writes, errors = run(settings, changed)
    assert (counts["updated"], writes, errors) == (1, 1, [])
    [stored] = sandbox.find("employees", EmployeeCode="A361")  # the control view shows what GET hides
    assert stored["WorkCalendarCode"] == "NIGHT"
    counts, writes, errors = run(settings, changed)
    assert (counts["updated"], writes, errors) == (1, 1, [])


# --- the sandbox's table against the document itself ------------------------------------------
REFERENCE = ROOT.parent / "shared" / "reference" / "smarttid-api.md"
ROW = re.compile(r"^\| (\d+) \| (\w+) \| (NVARCHAR|VARCHAR|INT|DECIMAL|BIT)(?:\((\d+|MAX)\))? \|")


def documented_parameters() -> dict[str, dict[str, tuple[str, int | None]]]:
    """Create employee / job / operation (§3.1-3.3): each readable row's name, SQL type and length."""
    if not REFERENCE.exists():
        pytest.skip(f"SmartTID's reference ({REFERENCE}) is not beside the repository")
    tables: dict[str, dict[str, tuple[str, int | None]]] = {}
    section = ""
    for line in REFERENCE.read_text(encoding="utf-8").splitlines():
        if line.startswith("### "):
            section = {"### 3.1 Create employee": "Employee", "### 3.2 Create job": "Job",
                       "### 3.3 Create operation": "Operation"}.get(line.strip(), "")
        elif section and (match := ROW.match(line)) and match.group(2) != "sAPIKey":
            length = match.group(4)
            tables.setdefault(section, {})[match.group(2)] = (
                match.group(3), int(length) if length and length != "MAX" else None)
    return tables


def test_the_sandbox_table_holds_every_readable_create_parameter_with_its_documented_type() -> None:
    from sandbox.smartapi_model import RESOURCES, RecordType

    documented = documented_parameters()
    assert {name: len(rows) for name, rows in documented.items()} == {"Employee": 16, "Job": 25, "Operation": 12}
    for record_type, rows in documented.items():
        resource = RESOURCES[RecordType(record_type)]
        mine = {p.name: (p.sql, p.length) for p in resource.parameters}
        assert {name: mine.get(name) for name in rows} == rows
        stated = {p.name for p in resource.parameters if p.basis == "DOC" and p.name not in rows}
        assert stated == set()  # a row marked DOC is one the document's table shows
