"""Export cost: SmartAPI calls and bytes per export run, for 1,000 employees.

    .venv/bin/python -m tools.services run -- .venv/bin/python -m bench.export_bench

Prints, for 1,000 employees with 20 earlier entries each (either still ``Transfered = false`` —
TimeBridge never marks time-ledger entries, there is no endpoint — or marked transferred by
another system such as payroll), and for 200 employees with 100 earlier entries each (how the
cost grows with history), the calls and response bytes of a run with 5 new time-ledger entries
per employee and of an idle run. Figures only; nothing is asserted. Uses only
``run_export`` and ``connector_factory``, so it runs unchanged against older versions of the code.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
import uuid
from collections import Counter
from typing import Any

import httpx

from shared.export import run_export
from shared.platform.config import Settings
from shared.platform.storage import blob_service
from shared.targets.factory import connector_factory
from shared.wiring import prepare_storage

EMPLOYEES = 1000
#: (employees, earlier entries per employee, history marked transferred)
SCENARIOS = ((EMPLOYEES, 20, False), (EMPLOYEES, 20, True), (200, 100, False))
NEW = 5


def _control(url: str, path: str, body: Any) -> None:
    httpx.post(f"{url}/_sandbox/{path}", json=body, timeout=120).raise_for_status()


def _entry(code: str, day: int, transferred: bool) -> dict[str, Any]:
    date = f"2026-{1 + day // 28:02d}-{1 + day % 28:02d}T00:00:00"
    return {"EmployeeCode": code, "Name": f"Employee {code}", "Date": date,
            "WorkTypeCode": "NORMAL", "StartTime": "2026-01-01T07:00:00", "EndTime": "2026-01-01T15:00:00",
            "TotalTime": 7.5, "Type": "Normal", "Transfered": transferred, "Remark": "", "Relative": False}


class Meter:
    """Counts requests and response bytes of every connector the export builds."""

    def __init__(self, settings: Settings) -> None:
        self.build = connector_factory(settings)
        self.lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.bytes = 0

    def factory(self) -> Any:
        connector = self.build()

        def hook(response: httpx.Response) -> None:
            response.read()
            with self.lock:
                self.calls[f"{response.request.method} {response.request.url.path}"] += 1
                self.bytes += len(response.content)

        # the HTTP client (the one HTTP layer's since it exists; the connector's own before)
        client = getattr(getattr(connector, "api", None), "_client", None) or connector._client  # type: ignore[attr-defined]
        client.event_hooks["response"].append(hook)
        return connector

    def run(self, settings: Settings) -> tuple[int, int, float, Counter[str]]:
        self.calls, self.bytes = Counter(), 0
        started = time.monotonic()
        run_export(settings, connector_factory=self.factory)
        return sum(self.calls.values()), self.bytes, time.monotonic() - started, self.calls


def scenario(url: str, history: int, history_transferred: bool, employees: int) -> None:
    suffix = uuid.uuid4().hex[:8]
    os.environ.update({"OUTPUT_CONTAINER": f"bench-out-{suffix}", "INPUT_CONTAINER": f"bench-in-{suffix}",
                       "ERROR_CONTAINER": f"bench-err-{suffix}", "ARCHIVE_CONTAINER": f"bench-arc-{suffix}",
                       "EXPORT_LEDGER_TABLE": f"benchledger{suffix}", "SMARTTID_BASE_URL": url})
    settings = Settings()
    service = blob_service(settings)
    prepare_storage(settings)
    meter = Meter(settings)
    _control(url, "reset", {"seeded": False})
    codes = [f"{i:05d}" for i in range(employees)]
    _control(url, "rows", {"table": "employees", "rows": [{"EmployeeCode": c, "Name": f"Employee {c}"} for c in codes]})
    _control(url, "rows", {"table": "timeledger",
                           "rows": [_entry(c, d, history_transferred) for c in codes for d in range(history)]})
    meter.run(settings)  # the history is exported (or, when transferred, skipped) once
    _control(url, "rows", {"table": "timeledger",
                           "rows": [_entry(c, history + d, False) for c in codes for d in range(NEW)]})
    state = "marked transferred by another system" if history_transferred else "untransferred (exported earlier)"
    print(f"\n{employees} employees, {history} earlier time-ledger entries each, history {state}:")
    for label in (f"{NEW} new entries each", "nothing new"):
        calls, size, seconds, by_endpoint = meter.run(settings)
        top = ", ".join(f"{k} {n}" for k, n in by_endpoint.most_common(4))
        print(f"  {label:<20} {calls:>6} calls  {size / 1e6:>8.2f} MB received  {seconds:>6.1f} s   ({top})")
    for name in settings.containers:
        service.delete_container(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    url = os.environ["SMARTTID_SANDBOX_URL"]
    os.environ.setdefault("SMARTTID_BASE_URL", url)
    for employees, history, transferred in SCENARIOS:
        scenario(url, history, transferred, employees)


if __name__ == "__main__":
    main()
