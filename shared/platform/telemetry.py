"""One summary event per import, export and deferral, with named dimensions for Application Insights.

How the events reach Application Insights (docs/administrator.md, "Telemetry, alerts and the dashboard"):

* Each event is one ``logging`` record on the logger :data:`EVENT_LOGGER` (``timebridge.events``)
  whose ``extra`` fields are the event's dimensions, plus ``microsoft.custom_event.name``.
* In Azure the Python worker itself sets up the Azure Monitor OpenTelemetry distro
  (``azure-monitor-opentelemetry``, pinned in requirements.txt) when the app setting
  ``PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY`` is ``true``, and attaches its log handler to the
  logger named by ``PYTHON_APPLICATIONINSIGHTS_LOGGER_NAME`` (``timebridge.events``). The exporter
  turns a record with ``microsoft.custom_event.name`` into a row of ``customEvents`` named after it,
  every other ``extra`` field into a ``customDimensions`` entry. Nothing here imports or configures
  an exporter, so ``function_app.py`` stays import-safe with an empty environment, and the
  summaries still propagate to the ordinary log stream (a readable message) as before.

Dimension values are only codes, counts, names of files TimeBridge handles, ETags, statuses and
durations: never a value from a line of the file, a message from the target system, an exception
message (it can hold a URL with a key) or a secret. ``tests/test_telemetry.py`` scans emitted
records for the sandbox's secrets and for the names and CPR numbers of the test file, and
``tests/test_infra.py`` checks that the alert rules and the workbook query exactly these names.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Any, Final

from shared.platform.safe_text import visible

#: The logger the worker exports (app setting ``PYTHON_APPLICATIONINSIGHTS_LOGGER_NAME``).
EVENT_LOGGER: Final = "timebridge.events"
#: The attribute the Azure Monitor exporter reads as the ``customEvents`` name.
CUSTOM_EVENT_NAME: Final = "microsoft.custom_event.name"

# ---- event names (customEvents.name) ----------------------------------------------------------
IMPORT_EVENT: Final = "TimeBridgeImport"
EXPORT_EVENT: Final = "TimeBridgeExport"
DEFERRAL_EVENT: Final = "TimeBridgeDeferral"
EVENTS: Final = (IMPORT_EVENT, EXPORT_EVENT, DEFERRAL_EVENT)

#: What ``shared/platform/config.py`` logs (ERROR) when it refuses the configuration at start-up; the
#: start-up alert rule matches it.
STARTUP_REFUSAL: Final = "TimeBridge refuses to run until the configuration is fixed"

# ---- statuses ------------------------------------------------------------------------------
#: Import statuses are the receipt's (shared/importing/reports.py).
IMPORT_STATUSES: Final = ("imported", "imported-with-errors", "rejected", "rejected-file")
#: Export statuses: the receipt's, and ``failed`` (a run that raised; see :func:`export_failed`).
EXPORT_FAILED: Final = "failed"
EXPORT_STATUSES: Final = ("exported", "exported-empty", "completed-after-interruption", EXPORT_FAILED)
#: Deferral statuses: ``deferred`` (records wait, e.g. for the target's call budget), ``resumed``
#: (some of them were sent, some still wait) and ``completed`` (nothing waits any more).
DEFERRAL_PENDING: Final = "deferred"
DEFERRAL_STATUSES: Final = (DEFERRAL_PENDING, "resumed", "completed")

# ---- dimensions (customDimensions keys) -----------------------------------------------------
# None of them is an attribute of logging.LogRecord (a clash would raise in makeRecord).
FILE: Final = "file"
ETAG: Final = "etag"
TARGET: Final = "target"
STATUS: Final = "status"
DURATION: Final = "duration_seconds"
API_CALLS: Final = "api_calls"
API_WRITES: Final = "api_writes"
LINES_READ: Final = "lines_read"
LINES_CREATED: Final = "lines_created"
LINES_UPDATED: Final = "lines_updated"
LINES_UNCHANGED: Final = "lines_unchanged"
LINES_REJECTED: Final = "lines_rejected"
#: JSON object ``{"<record type> <field>": lines}``; the key names the field, never its value.
REJECTED_BY_REASON: Final = "rejected_by_reason"
RUN_ID: Final = "run_id"
TIME_ENTRIES: Final = "time_ledger_entries"
JOB_ENTRIES: Final = "job_ledger_entries"
MARKED_TRANSFERRED: Final = "marked_transferred"
INTENT_CREATED_AT: Final = "intent_created_at"
ERROR_TYPE: Final = "error_type"
OPEN_INTENT_SINCE: Final = "open_intent_since"
RECORDS_PENDING: Final = "records_pending"
DEFERRED_SINCE: Final = "deferred_since"
REASON: Final = "reason"

IMPORT_DIMENSIONS: Final = (FILE, ETAG, TARGET, STATUS, LINES_READ, LINES_CREATED, LINES_UPDATED, LINES_UNCHANGED,
                            LINES_REJECTED, REJECTED_BY_REASON, API_CALLS, API_WRITES, DURATION)
EXPORT_DIMENSIONS: Final = (FILE, RUN_ID, TARGET, STATUS, TIME_ENTRIES, JOB_ENTRIES, MARKED_TRANSFERRED, API_CALLS,
                            DURATION, INTENT_CREATED_AT, ERROR_TYPE, OPEN_INTENT_SINCE)
DEFERRAL_DIMENSIONS: Final = (FILE, ETAG, TARGET, STATUS, RECORDS_PENDING, DEFERRED_SINCE, REASON)

_CODE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
log = logging.getLogger(EVENT_LOGGER)
#: The events are INFO records and are always emitted, whatever level the root logger has.
log.setLevel(logging.INFO)


def import_finished(*, file: str, etag: str, target: str, status: str, lines: int, counts: Mapping[str, int],
                    api_calls: int, api_writes: int, duration_seconds: float,
                    rejected_by_reason: Mapping[str, int]) -> None:
    """The summary event of one import (every outcome: imported, with errors, rejected, rejected file).
    ``rejected_by_reason``: rejected lines per reason code (``shared/importing/events.py`` builds it
    from the layouts' names only)."""
    dimensions: dict[str, Any] = {
        FILE: file,
        ETAG: etag,
        TARGET: str(target),
        STATUS: status,
        LINES_READ: lines,
        LINES_CREATED: counts.get("created", 0),
        LINES_UPDATED: counts.get("updated", 0),
        LINES_UNCHANGED: counts.get("unchanged", 0),
        LINES_REJECTED: counts.get("rejected", 0),
        REJECTED_BY_REASON: json.dumps(dict(rejected_by_reason), sort_keys=True),
        API_CALLS: api_calls,
        API_WRITES: api_writes,
        DURATION: duration_seconds,
    }
    _emit(IMPORT_EVENT, dimensions,
          f"{visible(file)} (ETag {etag}): {status}; lines created "
          f"{dimensions[LINES_CREATED]}, updated {dimensions[LINES_UPDATED]}, unchanged {dimensions[LINES_UNCHANGED]}, "
          f"rejected {dimensions[LINES_REJECTED]}; {api_calls} API calls in {duration_seconds} s")


def export_finished(*, file: str, run_id: str, target: str, status: str, time_entries: int, job_entries: int,
                    marked_transferred: int, api_calls: int, duration_seconds: float, started_at: str) -> None:
    """The summary event of one completed export run."""
    dimensions: dict[str, Any] = {
        FILE: file,
        RUN_ID: run_id,
        TARGET: str(target),
        STATUS: status,
        TIME_ENTRIES: time_entries,
        JOB_ENTRIES: job_entries,
        MARKED_TRANSFERRED: marked_transferred,
        API_CALLS: api_calls,
        DURATION: duration_seconds,
        INTENT_CREATED_AT: started_at,
        ERROR_TYPE: "",
        OPEN_INTENT_SINCE: "",
    }
    _emit(EXPORT_EVENT, dimensions,
          f"export run {run_id}: {status}; {file}, {time_entries} time and {job_entries} job ledger entries; "
          f"{api_calls} API calls in {duration_seconds} s")


def export_failed(error: BaseException, *, target: str, open_intent_run_id: str = "", open_intent_since: str = "",
                  duration_seconds: float = 0.0) -> None:
    """The summary event of an export run that raised. Only the exception's type is recorded: its
    message may quote a URL or a response. ``open_intent_*``: the unfinished run the state row
    still holds (the next run completes it), when it could be read."""
    dimensions: dict[str, Any] = {
        FILE: "",
        RUN_ID: open_intent_run_id,
        TARGET: str(target),
        STATUS: EXPORT_FAILED,
        TIME_ENTRIES: 0,
        JOB_ENTRIES: 0,
        MARKED_TRANSFERRED: 0,
        API_CALLS: 0,
        DURATION: round(duration_seconds, 3),
        INTENT_CREATED_AT: open_intent_since,
        ERROR_TYPE: type(error).__name__,
        OPEN_INTENT_SINCE: open_intent_since,
    }
    held = f"; run {open_intent_run_id} (intent since {open_intent_since}) is still open" if open_intent_run_id else ""
    _emit(EXPORT_EVENT, dimensions, f"export failed ({type(error).__name__}){held}; the next run completes it",
          level=logging.ERROR)


def deferral(*, file: str, etag: str, target: str, status: str, records_pending: int, deferred_since: str,
             reason: str) -> None:
    """The summary event of a deferral (records of a file that wait, e.g. for the target's daily call
    budget): emitted when records are deferred, on every attempt to resume them and when none wait any
    more. ``deferred_since``: ISO 8601 UTC of the first deferral; ``reason``: a short code
    (``call-budget``)."""
    if status not in DEFERRAL_STATUSES:
        raise ValueError(f"deferral status must be one of {DEFERRAL_STATUSES}, not {status!r}")
    if not _CODE.match(reason):
        raise ValueError(f"deferral reason must be a short lowercase code, not {reason!r}")
    dimensions: dict[str, Any] = {
        FILE: file,
        ETAG: etag,
        TARGET: str(target),
        STATUS: status,
        RECORDS_PENDING: records_pending,
        DEFERRED_SINCE: deferred_since,
        REASON: reason,
    }
    _emit(DEFERRAL_EVENT, dimensions,
          f"{visible(file)} (ETag {etag}): {status}, {records_pending} records waiting since {deferred_since} "
          f"({reason})")


def _emit(event: str, dimensions: dict[str, Any], message: str, level: int = logging.INFO) -> None:
    log.log(level, "%s: %s", event, message, extra={CUSTOM_EVENT_NAME: event, **dimensions})
