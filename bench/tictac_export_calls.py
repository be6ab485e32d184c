"""Figures, never assertions: Tic-Tac API calls of the ledger export, per run and per day.

The design note's reference company (§3): 50 users, 200 projects with 4 activities each, all linked
to the ERP through the cross-references; a history of ``HISTORY_DAYS`` days with 3 attested
registrations per user and day. Then one simulated day at the default schedule (a run every 15
minutes, 96 runs, the sandbox's clock moved on between them): from 07:00 to 17:00 every run finds a
few new registrations; five are corrected and two deleted during the day. The day ends with the
daily reconcile (deletions).

Run: ``.venv/bin/python -m tools.services run -- .venv/bin/python -m bench.tictac_export_calls``
"""

from __future__ import annotations

import os
import random
import time
import uuid
from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any

import httpx

from shared.export.ledger_table import ExportLedger
from shared.export.protocol import Exporter
from shared.export.sent_ledger import SentLedgerSource
from shared.platform.config import Settings
from shared.platform.storage import blob_service
from shared.targets.factory import connector_factory
from shared.targets.tictac.xref import CrossRef, CrossRefs, Entity
from shared.wiring import prepare_storage

USERS, PROJECTS, ACTIVITIES = 50, 200, 4
HISTORY_DAYS = 60
PER_USER_AND_DAY = 3
RUNS_PER_DAY = 96  # EXPORT_SCHEDULE every 15 minutes
START = datetime.fromisoformat("2026-11-20T00:00:00+00:00")


def control(method: str, path: str, body: object = None) -> Any:
    response = httpx.request(method, f"{os.environ['TICTAC_SANDBOX_URL']}/_sandbox/{path}", json=body, timeout=120)
    response.raise_for_status()
    return response.json()


def entries_calls() -> int:
    return sum(n for key, n in control("GET", "calls").items() if key.startswith("GET "))


def setup(settings: Settings) -> tuple[list[str], list[tuple[str, str]]]:
    control("POST", "reset", {"seeded": False})
    control("POST", "limit", {"limit": 100_000})  # the figures, not the sandbox's limit
    control("POST", "clock", {"now": START.isoformat()})
    users = [f"user{n}" for n in range(USERS)]
    control("POST", "rows", {"table": "users", "rows": [
        {"userName": name, "firstName": f"Person{n}", "lastName": f"Family{n}", "employeeNumber": f"E{n:03}"}
        for n, name in enumerate(users)]})
    projids = control("POST", "rows", {"table": "projects", "rows": [
        {"name": f"Project {j}", "projectNumber": f"J{j:04}"} for j in range(PROJECTS)]})["ids"]
    actids = control("POST", "rows", {"table": "activities", "rows": [
        {"projid": projid, "name": f"Step {k}", "type": "WORKHOURS"} for projid in projids
        for k in range(ACTIVITIES)]})["ids"]
    activities = [(projids[i // ACTIVITIES], actid) for i, actid in enumerate(actids)]
    refs = [CrossRef("tictac", Entity.USER, (f"E{n:03}",), name) for n, name in enumerate(users)]
    refs += [CrossRef("tictac", Entity.PROJECT, (f"J{j:04}",), projid) for j, projid in enumerate(projids)]
    refs += [CrossRef("tictac", Entity.ACTIVITY, (f"J{i // ACTIVITIES:04}", str((i % ACTIVITIES + 1) * 10)), actid,
                      erp_values={"sOperationCode": f"OP{i % ACTIVITIES}", "sERPReference": f"ERP-{i}"})
             for i, actid in enumerate(actids)]
    CrossRefs.connect(settings, settings.xref_table).put_many(refs)
    return users, activities


def registrations(users: list[str], activities: list[tuple[str, str]], day: date, count: int,
                  changed: datetime, rng: random.Random) -> list[dict[str, Any]]:
    rows = []
    for _ in range(count):
        projid, actid = rng.choice(activities)
        rows.append({"type": "TicTacTime", "userid": rng.choice(users), "projid": projid, "actid": actid,
                     "date": day.isoformat(), "hours": rng.choice([0.5, 1, 2, 2.5, 4, 7.5]), "attested": True,
                     "changed": changed.isoformat()})
    return rows


def main() -> None:
    suffix = uuid.uuid4().hex[:8]
    settings = Settings().model_copy(update={
        "output_container": f"bench-output-{suffix}", "export_state_container": f"bench-state-{suffix}",
        "export_ledger_table": f"benchledger{suffix}", "xref_table": f"benchxref{suffix}",
        "budget_table": f"benchbudget{suffix}", "target_system": "tictac"})
    os.environ["TICTAC_DAILY_CALL_BUDGET"] = "100000"  # Tic-Tac's own settings are app settings too
    service = blob_service(settings)
    prepare_storage(settings)
    rng = random.Random(10)
    users, activities = setup(settings)
    history = []
    for back in range(HISTORY_DAYS, 0, -1):
        day = START - timedelta(days=back)
        history += registrations(users, activities, day.date(), USERS * PER_USER_AND_DAY, day + timedelta(hours=17),
                                 rng)
    rowids = control("POST", "rows", {"table": "entries", "rows": history})["ids"]
    print(f"company: {USERS} users, {PROJECTS} projects × {ACTIVITIES} activities; history {len(history):,} "
          f"registrations over {HISTORY_DAYS} days\n")

    def now() -> datetime:
        return datetime.fromisoformat(control("POST", "clock", {})["now"])

    exporter = Exporter(settings, service, ExportLedger.connect(settings), connector_factory(settings), clock=now,
                        source=SentLedgerSource)
    before, started = entries_calls(), time.monotonic()
    receipt = exporter.run()
    print(f"first run (whole window): {entries_calls() - before} calls, "
          f"{receipt.counts['lines'] if receipt else 0:,} lines, {time.monotonic() - started:.1f} s\n")

    per_run: list[int] = []
    durations: list[float] = []
    kinds: Counter[str] = Counter()
    lines = 0
    new_per_run = round(USERS * PER_USER_AND_DAY / 40)  # 07:00-17:00: 40 runs
    for slot in range(1, RUNS_PER_DAY + 1):
        control("POST", "clock", {"advance_seconds": 15 * 60})
        moment = now()
        if 28 <= slot < 68:
            control("POST", "rows", {"table": "entries", "rows": registrations(
                users, activities, moment.date(), new_per_run, moment, rng)})
        if slot in (40, 50, 60, 62, 66):
            control("PATCH", f"entries/{rng.choice(rowids)}", {"hours": 3.25})
        if slot in (45, 55):
            control("DELETE", f"entries/{rowids.pop(rng.randrange(len(rowids)))}")
        before, started = entries_calls(), time.monotonic()
        receipt = exporter.run()
        durations.append(time.monotonic() - started)
        per_run.append(entries_calls() - before)
        if receipt is not None:
            lines += receipt.counts["lines"]
            kinds.update(line["reason"] for line in receipt.lines)
    day_total = sum(per_run)
    # the next day's reconcile finds the deletions missed once; the one after reverses them
    print(f"one day, {RUNS_PER_DAY} runs every 15 minutes:")
    print(f"  calls per run: {dict(sorted(Counter(per_run).items()))} (calls: runs)")
    print(f"  calls per day: {day_total} ({lines:,} lines written: {dict(sorted(kinds.items()))})")
    print(f"  with TICTAC_DAILY_CALL_BUDGET=400: {400 - day_total} calls left for imports")
    median = sorted(durations)[len(durations) // 2]
    print(f"  one run took {min(durations):.2f}-{max(durations):.2f} s (median {median:.2f} s)")
    # the day's last run was its reconcile (it missed the deletions once); the next day's reverses them
    for n in (1, 2):
        control("POST", "clock", {"advance_seconds": 24 * 3600})
        before = entries_calls()
        receipt = exporter.run()
        reasons = dict(Counter(line["reason"] for line in receipt.lines)) if receipt else {}
        print(f"the daily reconcile {n} day(s) later: {entries_calls() - before} calls, lines {reasons}")


if __name__ == "__main__":
    main()
