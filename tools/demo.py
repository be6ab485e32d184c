"""The quick-start demo: drop the sample files into the input container and run the real functions.

Runs inside ``python -m tools.services run`` (Azurite + the SmartAPI and Tic-Tac sandboxes on
loopback): creates the containers, uploads ``samples/``, runs the import through the function
registered in ``function_app.py`` for each file, prints every receipt and error report and the
sandbox's resulting records, then runs the ledger export and prints the file it produced.

``--target tictac`` (or ``TARGET_SYSTEM=tictac``) imports the same files into the Tic-Tac sandbox
instead, prints its users, projects and activities, runs the ``resume_deferred`` timer once, then
registers hours in Tic-Tac and runs the export twice (new lines, then a correction);
``--company hand_made`` starts from a Tic-Tac set up by hand before TimeBridge (the first day).

``--file my.csv`` runs your own file instead of the samples; ``--json`` prints the raw receipts;
``--keep`` (with ``scripts/demo``) leaves Azurite and the sandboxes running on the fixed ports of
``local.settings.json.example`` and says what to try next.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent


def _heading(text: str) -> None:
    print(f"\n=== {text} " + "=" * max(0, 74 - len(text)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", choices=("smarttid", "tictac"), default=os.environ.get("TARGET_SYSTEM", "smarttid"))
    parser.add_argument("--file", type=Path, action="append", help="your own file(s) instead of the samples")
    parser.add_argument("--company", choices=("document", "hand_made"), default="document",
                        help="Tic-Tac: the document's samples, or a company set up by hand before TimeBridge")
    parser.add_argument("--json", action="store_true", help="print the raw receipts (JSON) too")
    parser.add_argument("--keep", action="store_true", help="the services stay running (scripts/demo --keep)")
    args = parser.parse_args(argv)
    target = args.target
    os.environ["TARGET_SYSTEM"] = target
    if target == "tictac" and args.company != "document":
        httpx.post(f"{os.environ['TICTAC_SANDBOX_URL']}/_sandbox/reset", json={"company": args.company},
                   timeout=10).raise_for_status()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from azure.functions.timer import TimerRequest

    import function_app
    from shared.platform.config import load_settings
    from shared.platform.storage import blob_service
    from shared.wiring import prepare_storage

    settings = load_settings()
    service = blob_service(settings)
    prepare_storage(settings)  # containers and tables (in Azure infra/ creates them)
    functions = {f.get_function_name(): f.get_user_function() for f in function_app.app.get_functions()}

    files = args.file or sorted((ROOT / "samples").glob("*.csv"))
    if not args.file:
        print("The sample files hold three deliberate mistakes, to show what a rejected line looks like: a name "
              "longer than 50 characters (employees), an operation whose job is in neither the file nor the time "
              "system (jobs), and a file in Windows-1252 rather than UTF-8 (read all the same, and said so)."
              + (" With Tic-Tac, job 1401 is rejected too: it is to be made from the Template job TEMPLATE1, which "
                 "exists in SmartTID's sample data but was never imported here." if target == "tictac" else ""))
    summary: list[str] = []
    for sample in files:
        _heading(f"import {sample.name}")
        client = service.get_blob_client(settings.input_container, sample.name)
        etag = client.upload_blob(sample.read_bytes(), overwrite=True)["etag"].strip('"')
        functions["import_file"](client=client)
        receipt_blob = service.get_blob_client(settings.archive_container, f"{sample.name}/{etag}/receipt.json")
        receipt = json.loads(receipt_blob.download_blob().readall())
        counts = ", ".join(f"{status} {n}" for status, n in receipt.get("counts", {}).items())
        summary.append(f"{sample.name}: {receipt['status']} — {counts or 'no lines'}")
        print(summary[-1])
        for note in receipt.get("notes", []):
            print(f"  note: {note}")
        if args.json:
            print(json.dumps(receipt, indent=2, ensure_ascii=False))
        report = service.get_blob_client(settings.error_container, f"{sample.name}/{etag}/errors.txt")
        if report.exists():
            print(f"--- {settings.error_container}/{report.blob_name}")
            print(report.download_blob().readall().decode("utf-8-sig"))

    _heading("input container after the import (should be empty)")
    print([blob.name for blob in service.get_container_client(settings.input_container).list_blobs()])
    _heading("in short")
    print("\n".join(summary))
    _dry_run(service, settings, functions, files[0])

    if target == "tictac":
        code = _tictac_epilogue(functions)
        _next_steps(args.keep, target)
        return code

    _heading("SmartTID sandbox records")
    state = httpx.get(f"{os.environ['SMARTTID_BASE_URL']}/_sandbox/state", timeout=10).json()
    for table in ("employees", "jobs", "joboperations"):
        print(f"{table}:")
        for row in state[table]:
            key = {k: row[k] for k in ("ID", "EmployeeCode", "Name", "JobCode", "JobDescription", "Status",
                                       "LineNumber", "OperationCode", "Description") if k in row}
            print("  " + json.dumps(key, ensure_ascii=False))

    _heading("ledger export (the export_ledger timer function)")
    functions["export_ledger"](TimerRequest(past_due=False))
    encoding = "utf-8-sig" if settings.export_encoding == "utf-8-sig" else "cp1252"
    for container, prefix in ((settings.output_container, "ledger_"), (settings.export_state_container, "receipts/")):
        files = service.get_container_client(container)
        for blob in files.list_blobs(name_starts_with=prefix):
            print(f"--- {container}/{blob.name}")
            data = files.download_blob(blob.name).readall()
            if blob.name.endswith(".json") and not args.json:
                continue  # the export's receipt: raw JSON, with --json
            print(data.decode("utf-8" if blob.name.endswith(".json") else encoding))
    _next_steps(args.keep, target)
    return 0


def _dry_run(service: Any, settings: Any, functions: dict, sample: Path) -> None:  # type: ignore[type-arg]
    """The same file once more, checked without writing: the validate drop zone, then the CLI."""
    import subprocess

    from shared.importing.intake import FileRun

    _heading(f"the validate drop zone: {sample.name} checked again, nothing written")
    client = service.get_blob_client(settings.validate_container, sample.name)
    etag = client.upload_blob(sample.read_bytes(), overwrite=True)["etag"]
    functions["validate_file"](client=client)
    report = service.get_blob_client(settings.validate_container, f"{FileRun(sample.name, etag).folder}/report.txt")
    print(report.download_blob().readall().decode("utf-8-sig"))
    _heading(f"the operator CLI: timebridge validate {sample.name}")
    command = Path(sys.executable).parent / "timebridge"
    subprocess.run([str(command) if command.exists() else sys.executable, *([] if command.exists() else
                   ["-m", "tools.timebridge"]), "validate", str(sample)], check=False)  # it says its exit code


def _next_steps(keep: bool, target: str) -> None:
    if not keep:
        return
    _heading("the services keep running: try your own file")
    flag = " --target tictac" if target == "tictac" else ""
    print(f"""  ./scripts/demo --keep --file my.csv{flag}   your file through the real functions
  eval "$(.venv/bin/python -m tools.services env)"            the settings in this shell, then:
  .venv/bin/python -m tools.timebridge validate my.csv         what the file would do (reads only)
  local.settings.json                                         written for `func start` (docs/deploying.md)
  Azure Storage Explorer: "Local storage emulator" (ports 10000-10002) shows the containers
  .venv/bin/python -m tools.services down                     stop them (their data stays in .local/)""")

def _tictac_epilogue(functions: dict) -> int:  # type: ignore[type-arg]
    from azure.functions.timer import TimerRequest

    _heading("Tic-Tac sandbox records")
    state = httpx.get(f"{os.environ['TICTAC_SANDBOX_URL']}/_sandbox/state", timeout=10).json()
    for table, fields in (("users", ("userName", "employeeNumber", "firstName", "lastName", "department")),
                          ("projects", ("projid", "projectNumber", "name", "isActive")),
                          ("activities", ("actid", "projid", "name", "isActive"))):
        print(f"{table}:")
        for row in state[table]:
            print("  " + json.dumps({k: row.get(k) for k in fields}, ensure_ascii=False))
    _heading("deferred lines (the resume_deferred timer function)")
    functions["resume_deferred"](TimerRequest(past_due=False))
    print("done; lines still waiting for the call budget stay for the next run")
    _tictac_export(functions)
    return 0


def _tictac_export(functions: dict) -> None:  # type: ignore[type-arg]
    """Hours registered and attested in Tic-Tac → the ledger file; then a correction."""
    from datetime import UTC, datetime, timedelta

    from azure.functions.timer import TimerRequest

    from shared.platform.config import load_settings
    from shared.platform.storage import blob_service
    from shared.targets.tictac.xref import CrossRefs, Entity

    settings = load_settings()
    service = blob_service(settings)
    _heading("import jobs_2026-11-21.csv again (links the activities created inline with their project)")
    sample = ROOT / "samples" / "jobs_2026-11-21.csv"
    client = service.get_blob_client(settings.input_container, sample.name)
    client.upload_blob(sample.read_bytes(), overwrite=True)
    functions["import_file"](client=client)
    refs = CrossRefs.connect(settings, settings.xref_table)
    user = refs.get("tictac", Entity.USER, ("1001",))
    project = refs.get("tictac", Entity.PROJECT, ("1400",))
    paint, pack = (refs.get("tictac", Entity.ACTIVITY, ("1400", line)) for line in ("10", "20"))
    if not (user and project and paint and pack):
        print("employee 1001 or job 1400 with operations 10 and 20 is not in Tic-Tac; no export shown")
        return
    control = os.environ["TICTAC_SANDBOX_URL"] + "/_sandbox"
    day = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    rows = [{"type": "TicTacTime", "userid": user.remote_id, "projid": project.remote_id, "actid": act.remote_id,
             "date": day, "hours": hours, "attested": True, "changed": datetime.now(UTC).isoformat()}
            for act, hours in ((paint, 7.5), (pack, 2))]
    rowids = httpx.post(f"{control}/rows", json={"table": "entries", "rows": rows}, timeout=10).json()["ids"]
    print(f"Jens Hansen registered 7,5 h on job 1400 line 10 and 2 h on line 20 ({day}), attested: rows {rowids}")
    _heading("ledger export from Tic-Tac (the export_ledger timer function)")
    functions["export_ledger"](TimerRequest(past_due=False))
    _print_new_files(service, settings, set())
    _heading("the 7,5 h are corrected to 6,5 h in Tic-Tac; the next export writes a reversal and a repost")
    seen = {blob.name for blob in service.get_container_client(settings.output_container).list_blobs()}
    httpx.patch(f"{control}/entries/{rowids[0]}", json={"hours": 6.5}, timeout=10).raise_for_status()
    functions["export_ledger"](TimerRequest(past_due=False))
    _print_new_files(service, settings, seen)


def _print_new_files(service: Any, settings: Any, seen: set[str]) -> None:
    files = service.get_container_client(settings.output_container)
    for blob in files.list_blobs(name_starts_with="ledger_"):
        if blob.name in seen:
            continue
        print(f"--- {settings.output_container}/{blob.name}")
        print(files.download_blob(blob.name).readall().decode("utf-8-sig"))
        receipt = json.loads(service.get_blob_client(settings.export_state_container,
                                                     f"receipts/{blob.name}.receipt.json").download_blob().readall())
        print("receipt lines: " + json.dumps(receipt["lines"], ensure_ascii=False))


if __name__ == "__main__":
    sys.exit(main())
