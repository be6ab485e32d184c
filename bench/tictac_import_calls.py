"""Figures, never assertions: Tic-Tac API calls per import of a realistic file.

The design note's reference company (§3): 50 employees, 200 jobs, 800 operations (4 per job).
Three imports against the Tic-Tac sandbox (over a real socket, Azurite for the cross-references
and the budget):

1. **first load** into an empty company — everything created;
2. **first sync** of a company already set up by hand (users and projects carry the ERP codes,
   activities the operations' names), 10 % of the lines changed (names of users and projects,
   10 % of the operations completed) — activities linked by name;
3. **steady state**: the next file with another 10 % changed — activities found through the
   cross-references.

Run: ``.venv/bin/python -m tools.services run -- .venv/bin/python -m bench.tictac_import_calls``
"""

from __future__ import annotations

import os
import uuid

import httpx
from pydantic import SecretStr

from shared.importing.importer import Importer
from shared.importing.parsing import parse_file
from shared.platform.config import Settings
from shared.platform.storage import ensure_tables, table_service
from shared.targets.budget import CallBudget
from shared.targets.tictac.client import TicTacClient
from shared.targets.tictac.connector import TicTacConnector
from shared.targets.tictac.xref import CrossRefs

EMPLOYEES, JOBS, OPS_PER_JOB = 50, 200, 4


def control(path: str, body: object) -> object:
    response = httpx.post(f"{os.environ['TICTAC_SANDBOX_URL']}/_sandbox/{path}", json=body, timeout=30)
    response.raise_for_status()
    return response.json()


def erp_file(changed: int) -> bytes:
    """The ERP file; every 10th line (shifted by ``changed``) carries a new description."""
    lines = []
    for n in range(EMPLOYEES):
        suffix = " Jr" if (n + changed) % 10 == 0 and changed else ""
        lines.append(f"Employee;E{n:03};Person{n} Family{n}{suffix};;;;070{n:07};p{n}@example.se;;Avd {n % 5}")
    for j in range(JOBS):
        suffix = f" v{changed}" if (j + changed) % 10 == 0 and changed else ""
        lines.append(f"Job;J{j:04};Project {j}{suffix};;;;Started")
        for k in range(OPS_PER_JOB):
            hit = (j * OPS_PER_JOB + k + changed) % 10 == 0 and changed
            suffix = f" v{changed}" if hit and changed > 1 else ""  # renamed (once linked)
            done = "1" if hit and changed == 1 else "0"  # completed
            lines.append(f"Operation;J{j:04};{(k + 1) * 10};OP{k};Step {k}{suffix};;ERP-{j}-{k};;;;;;{done}")
    return "\n".join(lines).encode()


def run(settings: Settings, xref_table: str, budget_key: str, data: bytes) -> tuple[dict[str, int], dict[str, int]]:
    client = TicTacClient(os.environ["TICTAC_BASE_URL"], SecretStr(os.environ["TICTAC_API_CODE"]))
    ensure_tables(table_service(settings), (xref_table, "benchbudget"))  # the local set-up infra/ does in Azure
    budget = CallBudget.connect(settings, budget_key, 100_000, table_name="benchbudget")
    connector = TicTacConnector(client, CrossRefs.connect(settings, xref_table), budget=budget)
    try:
        result = Importer(connector, concurrency=4, target_name="Tic-Tac").run(parse_file(lambda: [data]))
    finally:
        connector.close()
    return result.line_counts(), dict(sorted(client.calls.counts.items()))


def main() -> None:
    settings = Settings()
    print(f"file: {EMPLOYEES} employees, {JOBS} jobs, {JOBS * OPS_PER_JOB} operations "
          f"({EMPLOYEES + JOBS + JOBS * OPS_PER_JOB} lines)\n")

    control("reset", {"seeded": False})
    control("limit", {"limit": 100_000})  # the figures, not the sandbox's limit
    counts, calls = run(settings, f"benchx{uuid.uuid4().hex[:8]}", uuid.uuid4().hex, erp_file(0))
    print(f"1. first load into an empty company: {sum(calls.values())} calls {counts}\n   {calls}")

    control("reset", {"seeded": False})
    control("limit", {"limit": 100_000})
    control("rows", {"table": "users", "rows": [
        {"userName": f"p{n}examplese", "firstName": f"Person{n}", "lastName": f"Family{n}",
         "emailAdress": f"p{n}@example.se", "employeeNumber": f"E{n:03}", "department": f"Avd {n % 5}"}
        for n in range(EMPLOYEES)]})
    ids = control("rows", {"table": "projects", "rows": [
        {"name": f"Project {j}", "projectNumber": f"J{j:04}"} for j in range(JOBS)]})["ids"]  # type: ignore[index]
    control("rows", {"table": "activities", "rows": [
        {"projid": projid, "name": f"Step {k}"} for projid in ids for k in range(OPS_PER_JOB)]})
    xref = f"benchx{uuid.uuid4().hex[:8]}"
    counts, calls = run(settings, xref, uuid.uuid4().hex, erp_file(1))
    print(f"2. first sync, 10 % changed, activities linked by name: {sum(calls.values())} calls {counts}\n   {calls}")
    counts, calls = run(settings, xref, uuid.uuid4().hex, erp_file(2))
    print(f"3. steady state, another 10 % changed (cross-references): {sum(calls.values())} calls {counts}\n"
          f"   {calls}")
    counts, calls = run(settings, xref, uuid.uuid4().hex, erp_file(2))
    print(f"4. the same file again: {sum(calls.values())} calls {counts}\n   {calls}")


if __name__ == "__main__":
    main()
