"""Import while SmartTID fails: seconds and SmartAPI calls until every line is applied or reported.

    .venv/bin/python -m tools.services run -- .venv/bin/python -m bench.outage_bench [--lines N]

Scenarios (sandbox on loopback, Azurite; HTTP_MAX_ATTEMPTS as configured, default 5):

* ``down``: 503 for every request (the login included), N new employees;
* ``writes-down``: every ``POST /employees`` answers 503, reads work, N new employees;
* ``flaky``: N/2 new jobs with one operation each, 20 % of all requests answered 503 at random
  (needs the sandbox's ``fault_rate`` switch), and the same file without faults.

Figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import time
import uuid

import httpx

from shared.platform.config import load_settings
from shared.platform.storage import blob_service
from shared.wiring import build_intake, prepare_storage


def employees(lines: int, tag: str) -> bytes:
    return "\r\n".join(f"Employee;O{tag}{i:05d};Outage Person {i}" for i in range(lines)).encode()


def jobs_with_operations(lines: int, tag: str) -> bytes:
    rows = []
    for i in range(lines // 2):
        rows.append(f"Job;F{tag}{i:05d};Flaky job {i};;;;Planned")
        rows.append(f"Operation;F{tag}{i:05d};10;CUT;Cutting")
    return "\r\n".join(rows).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1000)
    parser.add_argument("--only", choices=["down", "writes-down", "flaky"], action="append")
    args = parser.parse_args()
    settings = load_settings()
    service = blob_service(settings)
    prepare_storage(settings)
    intake = build_intake(settings)
    control = os.environ["SMARTTID_BASE_URL"] + "/_sandbox"

    def run(label: str, data: bytes, *setup: tuple[str, dict[str, object]]) -> None:
        httpx.post(f"{control}/reset", json={"seeded": True}, timeout=10).raise_for_status()
        for path, body in setup:
            httpx.post(f"{control}/{path}", json=body, timeout=10).raise_for_status()
        name = f"outage_{uuid.uuid4().hex[:6]}.csv"
        service.get_blob_client(settings.input_container, name).upload_blob(data, overwrite=True)
        started = time.perf_counter()
        receipt = intake.process(name)
        seconds = time.perf_counter() - started
        calls = httpx.get(f"{control}/calls", timeout=10).json()
        assert receipt is not None
        print(f"  {label:<44} {receipt.lines:>6} lines {seconds:>8.1f} s {sum(calls.values()):>7} calls   "
              f"{receipt.counts}")

    scenarios = args.only or ["down", "writes-down", "flaky"]
    print(f"HTTP_MAX_ATTEMPTS={settings.http_max_attempts}, WRITE_CONCURRENCY={settings.write_concurrency}")
    if "down" in scenarios:
        run("503 for everything", employees(args.lines, "d"),
            ("faults", {"method": "*", "path": "/", "status": 503, "times": 10**9}))
    if "writes-down" in scenarios:
        run("every POST /employees answers 503", employees(args.lines, "w"),
            ("faults", {"method": "POST", "path": "/employees", "status": 503, "times": 10**9}))
    if "flaky" in scenarios:
        run("jobs + operations, no faults", jobs_with_operations(args.lines, "n"))
        run("jobs + operations, 20 % of requests 503", jobs_with_operations(args.lines, "f"),
            ("switches", {"fault_rate": 0.2}))


if __name__ == "__main__":
    main()
