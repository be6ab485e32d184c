"""Export at scale: peak memory and time of one SmartTID export run with many new entries.

    .venv/bin/python -m tools.services run -- .venv/bin/python -m bench.export_scale [--sizes 1000 100000]

For each size N the SmartAPI sandbox is loaded with N new ledger entries — half job-ledger, half
time-ledger, spread over 100 employees — and one export run (``run_export``) is made in a child
process, so its peak resident set size (its own ``VmHWM``, ``bench/memory.py``) is that run's alone.
Prints lines, file bytes, seconds, peak RSS and the ratio to the smallest size. Figures only;
nothing is asserted. Uses only ``run_export``, so it runs unchanged against older versions.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from typing import Any

import httpx

from bench.memory import peak_rss_mib

EMPLOYEES = 100
BATCH = 20_000


def _control(url: str, path: str, body: Any) -> None:
    httpx.post(f"{url}/_sandbox/{path}", json=body, timeout=600).raise_for_status()


def _time_entry(code: str, n: int) -> dict[str, Any]:
    day = f"2026-{1 + (n // 28) % 12:02d}-{1 + n % 28:02d}"
    return {"EmployeeCode": code, "Name": f"Medarbejder {code}", "Date": f"{day}T00:00:00",
            "LogStart": f"{day}T06:58:00", "LogEnd": f"{day}T15:03:00", "WorkTypeCode": "NORMAL",
            "BreakTime": "1900-01-01T00:30:00", "StartTime": f"{day}T07:00:00", "EndTime": f"{day}T15:00:00",
            "TotalTime": 7.5, "WorkCalendarCode": "STD", "Type": "Normal", "Transfered": False,
            "Remark": f"Bench entry {n}", "DepartmentCode": "PROD", "WorkFunctionCode": "MALER", "Relative": False}


def _job_entry(code: str, n: int) -> dict[str, Any]:
    day = f"2026-{1 + (n // 28) % 12:02d}-{1 + n % 28:02d}"
    return {"EmployeeCode": code, "Name": f"Medarbejder {code}", "Date": f"{day}T00:00:00", "JobCode": "1000",
            "JobDescription": "Målerstation Ærø", "OperationCode": "PAINT", "JobOperationLineNumber": 10,
            "OperationDescription": "Maling - farve 9010", "ActivityCode": "FAKTURERBAR",
            "ActivityDescription": "Fakturerbart", "Completed": False, "WorkTypeCode": "NORMAL",
            "StartTime": f"{day}T07:00:00", "EndTime": f"{day}T15:00:00", "TotalTime": 7.5,
            "ERPReference": f"ERP-{n}", "DepartmentCode": "PROD", "JournalCode": "STANDARD",
            "Transfered": False}


def load(url: str, entries: int) -> None:
    _control(url, "reset", {"seeded": False})
    codes = [f"{i:05d}" for i in range(EMPLOYEES)]
    _control(url, "rows", {"table": "employees", "rows": [{"EmployeeCode": c, "Name": f"Medarbejder {c}"}
                                                         for c in codes]})
    for table, make, count in (("timeledger", _time_entry, entries // 2), ("jobledger", _job_entry,
                                                                             entries - entries // 2)):
        for start in range(0, count, BATCH):
            rows = [make(codes[n % EMPLOYEES], n) for n in range(start, min(count, start + BATCH))]
            _control(url, "rows", {"table": table, "rows": rows})


def child() -> None:
    """One export run; prints its receipt's counts as JSON on the last line."""
    from shared.export import run_export
    from shared.platform.config import Settings
    from shared.wiring import prepare_storage

    settings = Settings()
    prepare_storage(settings)
    receipt = run_export(settings)
    print(json.dumps({"lines": receipt.counts.get("lines", 0) if receipt else 0,
                      "bytes": receipt.bytes if receipt else 0, "rss_mib": peak_rss_mib()}))


def measure(entries: int) -> dict[str, float]:
    suffix = uuid.uuid4().hex[:8]
    env = os.environ | {"OUTPUT_CONTAINER": f"bench-out-{suffix}", "EXPORT_STATE_CONTAINER": f"bench-st-{suffix}",
                        "EXPORT_LEDGER_TABLE": f"benchledger{suffix}"}
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, "-m", "bench.export_scale", "--child"], env=env,
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    output = process.stdout.read()
    status = process.wait()
    seconds = time.monotonic() - started
    if status != 0:
        raise SystemExit(f"the export run for {entries} entries failed (status {status})")
    result = json.loads(output.strip().splitlines()[-1])
    return {"lines": result["lines"], "bytes": result["bytes"], "seconds": seconds, "rss_mib": result["rss_mib"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 100_000])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child()
        return
    url = os.environ["SMARTTID_SANDBOX_URL"]
    os.environ.setdefault("SMARTTID_BASE_URL", url)
    print(f"{'new entries':>11} {'lines':>8} {'file MB':>8} {'seconds':>8} {'peak RSS MiB':>12} {'× smallest':>10}")
    base: float | None = None
    for size in args.sizes:
        load(url, size)
        figures = measure(size)
        base = base or figures["rss_mib"]
        print(f"{size:>11,} {figures['lines']:>8,.0f} {figures['bytes'] / 1e6:>8.2f} {figures['seconds']:>8.1f} "
              f"{figures['rss_mib']:>12.1f} {figures['rss_mib'] / base:>10.2f}", flush=True)


if __name__ == "__main__":
    main()
