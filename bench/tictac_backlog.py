"""Figures, never assertions: how much of the daily call budget a Tic-Tac backlog uses.

A file far beyond the budget (new users with a department, new projects, new activities) is
imported once; then the ``resume_deferred`` timer runs every 15 simulated minutes (the budget's
clock is moved on, nothing waits for real) until nothing waits any more. Every run's calls are
recorded at its simulated moment; the bench prints the calls made in each whole day the backlog
lasted (from the first import) as a share of TICTAC_DAILY_CALL_BUDGET — the goal is at least 90 % —,
the share of the backlog's minutes during which the budget was at least 90 % in use (a call holds it
until the end of its minute + 24 h, as the budget counts), and how long the backlog took.

Run: ``.venv/bin/python -m tools.services run -- .venv/bin/python -m bench.tictac_backlog [--budget 100]``
"""

from __future__ import annotations

import argparse
import os
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from pydantic import SecretStr

from shared.importing.deferral import Deferrals
from shared.importing.intake import Intake
from shared.importing.resume import resume_deferred
from shared.platform.clock import iso
from shared.platform.config import Settings
from shared.platform.storage import blob_service, ensure_containers, ensure_tables, table_service
from shared.targets.base import Connector
from shared.targets.budget import CallBudget, budget_id
from shared.targets.tictac.client import TicTacClient
from shared.targets.tictac.connector import TicTacConnector
from shared.targets.tictac.xref import CrossRefs

START = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
STEP = timedelta(minutes=15)  # RESUME_SCHEDULE every 15 minutes
WINDOW = timedelta(hours=24)


def control(method: str, path: str, body: object = None) -> Any:
    response = httpx.request(method, f"{os.environ['TICTAC_SANDBOX_URL']}/_sandbox/{path}", json=body, timeout=60)
    response.raise_for_status()
    return response.json()


def api_calls() -> int:
    return sum(control("GET", "calls").values())


def erp_file(employees: int, jobs: int, operations: int) -> bytes:
    lines = [f"Employee;B{n:04};Person{n} Family{n};;;;;p{n}@example.dk;;Avd {n % 4}" for n in range(employees)]
    for j in range(jobs):
        lines.append(f"Job;BJ{j:03};Project {j};;;;Started")
        lines += [f"Operation;BJ{j:03};{(k + 1) * 10};OP{k};Step {k}" for k in range(operations)]
    return "\n".join(lines).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=100, help="TICTAC_DAILY_CALL_BUDGET (default 100)")
    parser.add_argument("--employees", type=int, default=60)
    parser.add_argument("--jobs", type=int, default=40)
    parser.add_argument("--operations", type=int, default=3, help="per job")
    args = parser.parse_args()

    suffix = uuid.uuid4().hex[:8]
    settings = Settings().model_copy(update={
        "input_container": f"bench-in-{suffix}", "archive_container": f"bench-archive-{suffix}",
        "error_container": f"bench-error-{suffix}", "xref_table": f"benchxref{suffix}",
        "budget_table": f"benchbudget{suffix}", "target_system": "tictac"})
    os.environ["TICTAC_DAILY_CALL_BUDGET"] = str(args.budget)  # Tic-Tac's own settings are app settings too
    service = blob_service(settings)
    ensure_containers(service, (settings.input_container, settings.archive_container, settings.error_container))
    ensure_tables(table_service(settings), (settings.xref_table, settings.budget_table))  # infra/'s, in Azure
    control("POST", "reset", {"seeded": False})
    control("POST", "limit", {"limit": 1_000_000})  # TimeBridge's budget is the limit measured here
    code = SecretStr(os.environ["TICTAC_API_CODE"])
    moment = [START]

    def factory() -> Connector:
        client = TicTacClient(os.environ["TICTAC_BASE_URL"], code, clock=lambda: moment[0])
        budget = CallBudget.connect(settings, budget_id("tictac", code), args.budget, table_name=settings.budget_table,
                                    clock=lambda: moment[0])
        return TicTacConnector(client, CrossRefs.connect(settings, settings.xref_table), budget=budget)

    data = erp_file(args.employees, args.jobs, args.operations)
    lines = data.count(b"\n") + 1
    service.get_blob_client(settings.input_container, "backlog.csv").upload_blob(data, overwrite=True)
    calls: list[tuple[datetime, int]] = []
    before = api_calls()
    receipt = Intake(settings, service, factory).process("backlog.csv")
    calls.append((moment[0], api_calls() - before))
    print(f"file: {lines} lines ({args.employees} employees, {args.jobs} jobs, {args.jobs * args.operations} "
          f"operations); TICTAC_DAILY_CALL_BUDGET={args.budget}")
    print(f"import at {iso(moment[0])}: {calls[-1][1]} calls, {receipt.counts if receipt else {}}")
    deferrals = Deferrals(service, settings.archive_container, "tictac")
    runs = 0
    while deferrals.entries() and runs < 96 * 60:
        moment[0] += STEP
        runs += 1
        before = api_calls()
        resume_deferred(settings, service, factory)
        made = api_calls() - before
        if made:
            calls.append((moment[0], made))
    end = moment[0]
    total = sum(n for _, n in calls)
    print(f"backlog done at {iso(end)} ({(end - START) / timedelta(hours=1):.1f} h, {runs} resume runs, "
          f"{len(calls) - 1} of them made calls): {total} calls in all")
    # (a) calls per day, days counted from the first import, for every whole day the backlog lasted
    days = int((end - START) / WINDOW)
    per_day = [sum(n for when, n in calls if START + k * WINDOW <= when < START + (k + 1) * WINDOW)
               for k in range(days)]
    if per_day:
        print("calls per day while the backlog lasted: " + ", ".join(f"{n} ({n / args.budget:.0%})" for n in per_day)
              + " of the budget (goal: at least 90 %)")
    else:
        print("the backlog was done within 24 hours: no whole day to measure (raise the file size)")
    # (b) the budget in use over time: a call occupies it from its moment until the end of its minute + 24 h
    minute = timedelta(minutes=1)
    occupied_until = [(when, when - timedelta(seconds=when.second, microseconds=when.microsecond) + minute + WINDOW,
                       n) for when, n in calls]
    samples, busy, gaps, gap, at = 0, 0, [], timedelta(0), START
    while at < end:
        in_use = sum(n for since, until, n in occupied_until if since <= at < until)
        samples += 1
        if in_use >= 0.9 * args.budget:
            busy += 1
            gap = timedelta(0)
        else:
            gap += minute
            gaps.append(gap)
        at += minute
    print(f"the budget was at least 90 % in use during {busy / samples:.1%} of the backlog's minutes; the longest "
          f"stretch below that: {max(gaps, default=timedelta(0))} (RESUME_SCHEDULE runs every {STEP})")


if __name__ == "__main__":
    main()
