"""The summary events (shared/platform/telemetry.py): one per import and per export run, with the documented
dimensions, and nothing in them that is a secret or personal data beyond codes.

Imports and exports run for real: Azurite, the SmartAPI sandbox, and the functions as registered in
``function_app.py``. The events are captured as the log records the worker's Azure Monitor handler
receives (``caplog``): the handler exports the ``extra`` fields of a record as customDimensions.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest
from azure.functions.timer import TimerRequest

from shared.export.flagged_source import FlaggedSource
from shared.export.protocol import receipt_name_for
from shared.importing import events as import_events
from shared.importing.intake import FileRun
from shared.platform import telemetry
from shared.platform.config import report_configuration_problems
from shared.records.record import LineError
from tests.conftest import Sandbox, read_blob
from tests.functions_host import registered, trigger_import

ROOT = Path(__file__).resolve().parent.parent

#: Personal data in the test file: names, addresses, phone, e-mail and CPR numbers (made up).
PERSONAL = ["Anne Jensen", "Vestergade 1", "+4512345678", "aj@example.dk", "0101901234", "Bo Nielsen", "2412851234"]
FILE = "\n".join([
    "Employee;A360;Anne Jensen;Vestergade 1;8000;Aarhus C;+4512345678;aj@example.dk;0101901234;PROD;Production",
    "Employee;B200;Bo Nielsen;;;;;;2412851234",
    "Employee;B201;;;;;;;;",  # rejected: no name for a new employee
    "Job;0815;Pipe rack;;31-02-2026",  # rejected: no such date
]).encode()

#: LogRecord attributes that are not ours (the rest of a record's __dict__ are the dimensions).
_STANDARD = set(logging.LogRecord("x", logging.INFO, "x", 1, "x", None, None).__dict__) | {"message", "asctime"}


def events(caplog: pytest.LogCaptureFixture, name: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == telemetry.EVENT_LOGGER and getattr(r, telemetry.CUSTOM_EVENT_NAME) == name]


def dimensions(record: logging.LogRecord) -> dict[str, Any]:
    return {key: value for key, value in record.__dict__.items() if key not in _STANDARD}


def exported_text(record: logging.LogRecord) -> str:
    """Everything the exporter would send: the message and every dimension."""
    return record.getMessage() + "\n" + json.dumps(dimensions(record), ensure_ascii=False, default=str)


def assert_no_secret_or_personal_data(record: logging.LogRecord, app_env: dict[str, str]) -> None:
    text = exported_text(record)
    for name in ("SMARTTID_API_KEY", "SMARTTID_CUSTOMER_KEY"):
        assert app_env[name] not in text, f"{name} in the event"
    account_key = re.search(r"AccountKey=([^;]+)", app_env["IntegrationStorage"])
    assert account_key and account_key.group(1) not in text
    for value in PERSONAL:
        assert value not in text, f"personal data {value!r} in the event"


def assert_flat(record: logging.LogRecord, expected: tuple[str, ...]) -> dict[str, Any]:
    dims = dimensions(record)
    assert set(dims) == {telemetry.CUSTOM_EVENT_NAME, *expected}
    for key, value in dims.items():  # OpenTelemetry attributes: primitives only, or they are dropped
        assert isinstance(value, (str, int, float, bool)), f"{key} is a {type(value).__name__}"
    return dims


def test_an_import_emits_one_summary_event_with_its_dimensions(storage, settings, sandbox: Sandbox, app_env,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    etag = storage.get_blob_client(settings.input_container, "staff.csv").upload_blob(FILE)["etag"].strip('"')

    trigger_import(storage, settings.input_container, "staff.csv")

    receipt = json.loads(read_blob(storage, settings.archive_container, FileRun("staff.csv", etag).receipt))
    [record] = events(caplog, telemetry.IMPORT_EVENT)
    dims = assert_flat(record, telemetry.IMPORT_DIMENSIONS)
    assert dims[telemetry.FILE] == "staff.csv" and dims[telemetry.ETAG] == etag == receipt["etag"]
    assert dims[telemetry.TARGET] == "smarttid"
    assert dims[telemetry.STATUS] == receipt["status"] == "imported-with-errors"
    assert (dims[telemetry.LINES_READ], dims[telemetry.LINES_CREATED], dims[telemetry.LINES_REJECTED]) == (4, 2, 2)
    assert dims[telemetry.LINES_UPDATED] == dims[telemetry.LINES_UNCHANGED] == 0
    assert dims[telemetry.API_CALLS] == receipt["api_calls"]["total"] > 0
    assert dims[telemetry.API_WRITES] == receipt["api_calls"]["writes"] == 2
    assert dims[telemetry.DURATION] == receipt["duration_seconds"]
    reasons = json.loads(dims[telemetry.REJECTED_BY_REASON])
    assert sum(reasons.values()) == 2
    assert set(reasons) == {"Employee sName (position 2)", "Job sPlannedStartDate (position 4)"}, reasons
    assert record.levelno == logging.INFO
    assert_no_secret_or_personal_data(record, app_env)
    assert not events(caplog, telemetry.EXPORT_EVENT)


def test_a_rejected_file_emits_one_event_with_its_status(storage, settings, sandbox: Sandbox, app_env,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    storage.get_blob_client(settings.input_container, "empty.csv").upload_blob(b"")

    trigger_import(storage, settings.input_container, "empty.csv")

    [record] = events(caplog, telemetry.IMPORT_EVENT)
    dims = assert_flat(record, telemetry.IMPORT_DIMENSIONS)
    assert dims[telemetry.STATUS] == "rejected-file"
    assert dims[telemetry.LINES_READ] == dims[telemetry.API_CALLS] == 0
    assert json.loads(dims[telemetry.REJECTED_BY_REASON]) == {}
    assert_no_secret_or_personal_data(record, app_env)


def test_a_duplicate_trigger_emits_no_second_event(storage, settings, sandbox: Sandbox,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    client = storage.get_blob_client(settings.input_container, "staff.csv")
    client.upload_blob(FILE)
    trigger_import(storage, settings.input_container, "staff.csv")
    trigger_import(storage, settings.input_container, "staff.csv")  # nothing left to do
    assert len(events(caplog, telemetry.IMPORT_EVENT)) == 1


def test_an_export_run_emits_one_summary_event_with_its_dimensions(storage, settings, sandbox: Sandbox, app_env,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)

    registered("export_ledger").get_user_function()(TimerRequest(past_due=False))

    [record] = events(caplog, telemetry.EXPORT_EVENT)
    dims = assert_flat(record, telemetry.EXPORT_DIMENSIONS)
    container, name = dims[telemetry.FILE].split("/", 1)
    receipt = json.loads(read_blob(storage, settings.export_state_container, receipt_name_for(name)))
    assert container == settings.output_container and name.startswith("ledger_")
    assert dims[telemetry.RUN_ID] == receipt["run_id"]
    assert dims[telemetry.STATUS] == receipt["status"] == "exported"
    assert dims[telemetry.TARGET] == "smarttid"
    assert dims[telemetry.TIME_ENTRIES] == receipt["counts"]["time_ledger_entries"] > 0
    assert dims[telemetry.JOB_ENTRIES] == receipt["counts"]["job_ledger_entries"] > 0
    assert dims[telemetry.MARKED_TRANSFERRED] == receipt["marked_transferred"]
    assert dims[telemetry.API_CALLS] == receipt["api_calls"]["total"] > 0
    assert dims[telemetry.DURATION] == receipt["duration_seconds"]
    assert dims[telemetry.INTENT_CREATED_AT] == receipt["started_at"]
    assert dims[telemetry.ERROR_TYPE] == dims[telemetry.OPEN_INTENT_SINCE] == ""
    assert_no_secret_or_personal_data(record, app_env)


def test_a_failed_export_run_emits_one_failed_event_naming_the_open_intent(
    storage, settings, sandbox: Sandbox, app_env, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO)
    leak = f"failure quoting https://smartapi/?sAPIKey={app_env['SMARTTID_CUSTOMER_KEY']}"

    def fail(self: FlaggedSource, connector: Any, ids: list[int]) -> None:
        raise RuntimeError(leak)

    monkeypatch.setattr(FlaggedSource, "_mark_batch", fail)  # after the file is written: the intent stays open

    with pytest.raises(RuntimeError):
        registered("export_ledger").get_user_function()(TimerRequest(past_due=False))

    [record] = events(caplog, telemetry.EXPORT_EVENT)
    dims = assert_flat(record, telemetry.EXPORT_DIMENSIONS)
    assert dims[telemetry.STATUS] == telemetry.EXPORT_FAILED
    assert dims[telemetry.ERROR_TYPE] == "RuntimeError"
    assert re.fullmatch(r"[0-9a-f]{12}", dims[telemetry.RUN_ID])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", dims[telemetry.OPEN_INTENT_SINCE])
    assert record.levelno == logging.ERROR
    assert "sAPIKey" not in exported_text(record)
    assert_no_secret_or_personal_data(record, app_env)


def test_deferral_event_carries_its_dimensions_and_refuses_free_text() -> None:
    with _capture() as records:
        telemetry.deferral(file="staff.csv", etag="0x8DC", target="tictac", status=telemetry.DEFERRAL_PENDING,
                           records_pending=12, deferred_since="2026-11-23T08:00:00Z", reason="call-budget")
    [record] = records
    dims = assert_flat(record, telemetry.DEFERRAL_DIMENSIONS)
    assert getattr(record, telemetry.CUSTOM_EVENT_NAME) == telemetry.DEFERRAL_EVENT
    assert (dims[telemetry.STATUS], dims[telemetry.RECORDS_PENDING], dims[telemetry.REASON]) == ("deferred", 12, "call-budget")
    with pytest.raises(ValueError, match="status"):
        telemetry.deferral(file="f", etag="e", target="tictac", status="waiting", records_pending=1,
                           deferred_since="2026-11-23T08:00:00Z", reason="call-budget")
    with pytest.raises(ValueError, match="reason"):
        telemetry.deferral(file="f", etag="e", target="tictac", status="deferred", records_pending=1,
                           deferred_since="2026-11-23T08:00:00Z", reason="Anne Jensen has no e-mail")


def test_reason_codes_name_the_field_never_the_value_or_text_from_the_file() -> None:
    def code(record_type: str, field: str, value: str = "Anne Jensen") -> str:
        return import_events.reason_code(LineError(3, record_type, field, value, f"{value} is wrong", "fix it"))

    assert code("Employee", "sName (position 2)") == "Employee sName (position 2)"
    assert code("employee", "record type (position 0)") == "Employee record type (position 0)"
    assert code("Job", "position 31") == "Job position 31"
    assert code("Anne Jensen", "") == "file line"  # an unknown record type is the file's text
    assert code("Employee", "Anne Jensen (position 2)") == "Employee line"
    assert code("", "") == "file line"
    errors = [LineError(3, "Job", "", "", "SmartTID said Anne Jensen", "x"), LineError(3, "Job", "", "", "again", "x"),
              LineError(4, "Job", "", "", "y", "x")]
    assert import_events.rejected_by_reason(errors) == {"Job line": 2}  # lines, not errors


def test_startup_refusal_is_the_line_the_startup_alert_matches(app_env, monkeypatch: pytest.MonkeyPatch,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("OUTPUT_CONTAINER", app_env["INPUT_CONTAINER"])
    with caplog.at_level(logging.ERROR):
        assert report_configuration_problems() is not None
    [refusal] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert refusal.getMessage().startswith(telemetry.STARTUP_REFUSAL + ": ")


def test_readme_documents_every_event_and_dimension() -> None:
    readme = (ROOT / "docs" / "administrator.md").read_text()
    section = readme[readme.index("## Telemetry, alerts and the dashboard"):]
    end = section.find("\n## ", 3)
    section = section if end < 0 else section[:end]
    names = {*telemetry.EVENTS, *telemetry.IMPORT_DIMENSIONS, *telemetry.EXPORT_DIMENSIONS,
             *telemetry.DEFERRAL_DIMENSIONS, telemetry.EVENT_LOGGER, "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY",
             "PYTHON_APPLICATIONINSIGHTS_LOGGER_NAME", "alertEmailAddress", "deferralAlertHours"}
    missing = sorted(name for name in names if f"`{name}`" not in section)
    assert not missing, f"docs/administrator.md 'Telemetry, alerts and the dashboard' does not name {missing}"


class _capture:
    """Collect the records of the event logger (without caplog, for tests without fixtures)."""

    def __enter__(self) -> list[logging.LogRecord]:
        self.records: list[logging.LogRecord] = []
        self.handler = logging.Handler()
        self.handler.emit = self.records.append  # type: ignore[method-assign]
        logger = logging.getLogger(telemetry.EVENT_LOGGER)
        self.level = logger.level
        logger.setLevel(logging.INFO)
        logger.addHandler(self.handler)
        return self.records

    def __exit__(self, *exc: object) -> None:
        logger = logging.getLogger(telemetry.EVENT_LOGGER)
        logger.removeHandler(self.handler)
        logger.setLevel(self.level)


# The worker's own set-up, in a child process (it installs global OpenTelemetry providers): the Azure
# Monitor distro attached to PYTHON_APPLICATIONINSIGHTS_LOGGER_NAME, exporting to a loopback
# "ingestion endpoint" that records what it receives.
_EXPORT_THROUGH_THE_DISTRO = r'''
import gzip, json, logging, os, sys, threading
from http.server import BaseHTTPRequestHandler, HTTPServer

received = []

class Ingestion(BaseHTTPRequestHandler):
    def do_POST(self):
        data = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            data = gzip.decompress(data)
        items = json.loads(data)
        received.extend(items if isinstance(items, list) else [items])
        body = json.dumps({"itemsReceived": 1, "itemsAccepted": 1, "errors": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

server = HTTPServer(("127.0.0.1", 0), Ingestion)
threading.Thread(target=server.serve_forever, daemon=True).start()

from azure.monitor.opentelemetry import configure_azure_monitor
from opentelemetry._logs import get_logger_provider

configure_azure_monitor(
    connection_string="InstrumentationKey=00000000-0000-0000-0000-000000000001;"
                      f"IngestionEndpoint=http://127.0.0.1:{server.server_port}/",
    logger_name=os.environ["PYTHON_APPLICATIONINSIGHTS_LOGGER_NAME"],
    enable_live_metrics=False,
    disable_offline_storage=True,
)
from shared.importing import events
from shared.platform import telemetry
from shared.records.record import LineError
from shared.importing.reports import Receipt

receipt = Receipt(source="staff.csv", etag="0x8DC1", status="imported-with-errors", received_at="", lines=4,
                  counts={"created": 2, "updated": 0, "unchanged": 0, "rejected": 2},
                  api_calls={"total": 9, "writes": 2}, duration_seconds=1.25)
events.import_finished(receipt, target="smarttid",
                          errors=[LineError(3, "Employee", "sName (position 2)", "Anne Jensen", "x", "y")])
logging.getLogger("shared.importing.intake").warning("an ordinary log line")
get_logger_provider().force_flush()
server.shutdown()
print(json.dumps(received), flush=True)
os._exit(0)  # skip the providers' exit-time shutdown, which waits for its own timeouts
'''


def test_the_azure_monitor_distro_sends_the_event_as_a_custom_event_with_its_dimensions() -> None:
    import importlib.util
    import os
    import subprocess
    import sys

    try:
        installed = importlib.util.find_spec("azure.monitor.opentelemetry") is not None
    except ModuleNotFoundError:  # not even azure.monitor
        installed = False
    assert installed, "azure-monitor-opentelemetry (requirements.txt) is not installed in this venv: run scripts/bootstrap"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none",
           "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
           # what the worker sets; the distro's default detectors would also ask the Azure VM
           # metadata endpoint, a non-loopback address
           "OTEL_EXPERIMENTAL_RESOURCE_DETECTORS": "azure_functions",
           "PYTHON_APPLICATIONINSIGHTS_LOGGER_NAME": telemetry.EVENT_LOGGER}
    env.pop("APPLICATIONINSIGHTS_CONNECTION_STRING", None)
    done = subprocess.run([sys.executable, "-c", _EXPORT_THROUGH_THE_DISTRO], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    items = json.loads(done.stdout.strip().splitlines()[-1])
    events = [i for i in items if i["data"]["baseType"] == "EventData"]
    assert [i["data"]["baseType"] for i in items] == ["EventData"], "only the event logger is exported"
    [event] = events
    data = event["data"]["baseData"]
    assert data["name"] == telemetry.IMPORT_EVENT  # customEvents.name
    properties = data["properties"]  # customDimensions
    assert set(telemetry.IMPORT_DIMENSIONS) <= set(properties)
    assert (properties[telemetry.FILE], properties[telemetry.STATUS], properties[telemetry.LINES_REJECTED]) == (
        "staff.csv", "imported-with-errors", "2")
    assert json.loads(properties[telemetry.REJECTED_BY_REASON]) == {"Employee sName (position 2)": 1}
    assert telemetry.CUSTOM_EVENT_NAME not in properties
    assert "Anne Jensen" not in json.dumps(items)


def test_the_event_statuses_are_the_receipts_own() -> None:
    # One status list per pipeline (the receipts' enums); the events and the alert rules use it.
    from shared.export.receipt import ExportStatus
    from shared.importing.reports import ImportStatus

    assert set(telemetry.IMPORT_STATUSES) <= {status.value for status in ImportStatus}
    assert set(telemetry.EXPORT_STATUSES) == {status.value for status in ExportStatus} | {telemetry.EXPORT_FAILED}
