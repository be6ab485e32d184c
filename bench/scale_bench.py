"""Import at scale: peak memory and time per file size, latency and concurrency (issue 14).

    .venv/bin/python -m tools.services run -- .venv/bin/python -m bench.scale_bench \\
        --sizes 1000,10000,100000 --latency 0,20 --concurrency 1,4,16

Each import runs in a child process of its own (``intake.process`` on Azurite + the SmartAPI
sandbox, exactly as the blob trigger runs it); its peak RSS is the child's own ``VmHWM`` (``bench/memory.py``). Per
size, latency and concurrency (``WRITE_CONCURRENCY``) the table shows:

* **first import** (every line a create) — skipped above ``--first-max`` lines; the sandbox is
  then filled directly (``/_sandbox/create``, the create endpoint's own validation, no HTTP per
  record) so the re-import still finds every record;
* **re-import** of the same file (every line unchanged, no writes);
* **reads**: a child that does only the reads a re-import cannot avoid — every employee and job
  (paged) and one operation list per job, with the same concurrency: the floor of a re-import.

Of the re-import's peak RSS, ``state`` is what the importer held of the target's own state (the
stored employees and jobs, measured object by object), ``keys`` the small keys (the scan's bitmap
of key hashes and the keys it found twice, one entry per job of the file) and ``rest`` everything
else: the part the issue asks to stay within 1.2 x the RSS of a 1,000-line import.

The file is 10 % Employee, 10 % Job and 80 % Operation lines (8 operations per job, ~55 bytes a line).
The sandbox answers every API call after ``--latency`` ms (its ``latency_ms`` switch).
``--rejected`` measures the worst case for memory instead: a file whose every line is rejected
(the line errors are held until the report is written).
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from bench.memory import peak_rss_mib
from shared.importing.parsing import parse_file
from shared.platform.config import load_settings
from shared.platform.storage import blob_service
from shared.records.layouts import LAYOUTS, RecordType
from shared.targets.smarttid.connector import RESOURCE_PATH, body_value
from shared.wiring import prepare_storage

GROUP = 10  # lines per employee + job + its operations


def file_lines(size: int, group_size: int = GROUP) -> Iterator[bytes]:
    """``size`` lines in groups of an employee, a job and ``group_size`` - 2 operations of that job."""
    for i in range(size):
        group, k = divmod(i, group_size)
        if k == 0:
            line = f"Employee;E{group:07d};Bench Person {group};Benchvej {group};8000;Aarhus C;;;;PROD;Produktion"
        elif k == 1:
            line = f"Job;J{group:07d};Bench job {group};;;;Started"
        else:
            line = f"Operation;J{group:07d};{k - 1};OP{k};Operation {k - 1} of job {group};1,5"
        yield (line + "\r\n").encode()


def rejected_lines(size: int) -> Iterator[bytes]:
    """The worst case for memory: every line rejected (operations of jobs neither stored nor in the file)."""
    for i in range(size):
        yield f"Operation;X{i // 8:07d};{i % 8 + 1};OP;Operation of a job that does not exist\r\n".encode()


def write_file(size: int, folder: Path, *, rejected: bool = False) -> Path:
    path = folder / f"scale_{'rejected_' if rejected else ''}{size}.csv"
    if not path.exists():
        with path.open("wb") as out:
            out.writelines(rejected_lines(size) if rejected else file_lines(size))
    return path


def worst_case(sizes: list[int]) -> None:
    """One import per size of a file whose every line is rejected: its peak RSS (the errors are held)."""
    print(f"{'rejected lines':>14} {'MB':>6} | {'s':>7} {'RSS MiB':>7}", flush=True)
    for size in sizes:
        path = write_file(size, Path(tempfile.gettempdir()) / "timebridge-scale-bench", rejected=True)
        sandbox("/_sandbox/reset", {"seeded": False})
        upload(path, f"rejected_{size}.csv")
        run = run_child(["--child", "import", "--name", f"rejected_{size}.csv"],
                        {"MAX_FILE_BYTES": str(2**40), "IMPORT_TIME_LIMIT_SECONDS": str(7 * 86400)})
        assert run["counts"].get("rejected") == size, run
        print(f"{size:>14,} {path.stat().st_size / 1e6:>6.1f} | {run['seconds']:>7.1f} {run['rss_mib']:>7.0f}",
              flush=True)


# --- children: one import, or the unavoidable reads, in a process of its own ------------------
def deep_size(*roots: object) -> int:
    """Bytes of the objects reachable from ``roots`` (each counted once; classes, modules and
    functions not followed)."""
    seen: set[int] = set()
    total = 0
    todo = list(roots)
    while todo:
        obj = todo.pop()
        if id(obj) in seen or isinstance(obj, type | types.ModuleType | types.FunctionType):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        todo.extend(gc.get_referents(obj))
    return total


def sampled_size(mapping: dict[Any, Any], sample: int = 1000) -> int:
    """Bytes of a large dict and what it holds, from the deep size of a sample of its items (walking
    every object would itself take more memory than the import, and show in its peak RSS)."""
    items = list(itertools.islice(mapping.items(), sample))
    if not items:
        return sys.getsizeof(mapping)
    return sys.getsizeof(mapping) + deep_size(*items) * len(mapping) // len(items)


def child_import(name: str) -> dict[str, Any]:
    """One import; besides its time and peak RSS, the bytes of the target's own state it held (the
    stored employees and jobs) and of the small keys (the scan's bitmap of key hashes,
    one entry per job of the file) — the parts the issue's memory goal sets apart."""
    from shared.importing import importer as importing
    from shared.importing import passes
    from shared.wiring import build_intake

    held: dict[str, int] = {"state": 0, "keys": 0}
    run_batches, masters_planned = importing.Importer.run_batches, importing.Importer._masters_planned
    scan_file = passes.scan_file

    def measured_masters(self: importing.Importer) -> None:  # the most held: before the employees go
        held["state"] = sum(remote.nbytes() for remote in self._remote.values())  # packed records
        masters_planned(self)

    def measured_run(self: importing.Importer, *args: Any, **kwargs: Any) -> importing.ImportResult:
        result = run_batches(self, *args, **kwargs)
        held["keys"] += self._job_codes.nbytes() + sampled_size(self._jobs_waiting)
        return result

    def measured_scan(*args: Any, **kwargs: Any) -> passes.ScannedFile:
        scanned = scan_file(*args, **kwargs)
        held["keys"] += scanned.bitmap_bytes + sampled_size(scanned.duplicates)  # the scan's bitmap of key hashes
        return scanned

    importing.Importer.run_batches = measured_run  # type: ignore[method-assign]
    importing.Importer._masters_planned = measured_masters  # type: ignore[method-assign]
    passes.scan_file = measured_scan
    import shared.importing.intake as intake_module

    setattr(intake_module, "scan_file", measured_scan)  # noqa: B010 - the name intake imported

    started = time.perf_counter()
    receipt = build_intake(load_settings()).process(name)
    seconds = time.perf_counter() - started
    assert receipt is not None
    return {"seconds": seconds, "counts": receipt.counts, "calls": receipt.api_calls.get("total", 0),
            "writes": receipt.api_calls.get("writes", 0), "status": receipt.status,
            "state_mib": held["state"] / 2**20, "keys_mib": held["keys"] / 2**20}


def child_reads(size: int, concurrency: int) -> dict[str, Any]:
    from shared.targets.factory import connector_factory

    connector = connector_factory(load_settings())()
    started = time.perf_counter()
    employees = connector.list_records(RecordType.EMPLOYEE)
    jobs = connector.list_records(RecordType.JOB)
    codes = [f"J{group:07d}" for group in range((size + GROUP - 1) // GROUP) if group * GROUP + 1 < size]
    def operations_of(code: str) -> int:
        return len(connector.list_records(RecordType.OPERATION, job_code=code))

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        operations = sum(pool.map(operations_of, codes))
    seconds = time.perf_counter() - started
    connector.close()
    return {"seconds": seconds, "calls": connector.calls.total,
            "held": len(employees) + len(jobs), "operations": operations}


def run_child(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "bench.scale_bench", *args], env={**os.environ, **env},
                          capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"child {args} failed:\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# --- the parent: set up each case, run the children, print the table ----------------------------
def sandbox(path: str, body: dict[str, Any]) -> None:
    base = os.environ["SMARTTID_SANDBOX_URL"]
    response = httpx.post(f"{base}{path}", json=body, timeout=600)
    response.raise_for_status()


def fill_sandbox(path: Path) -> None:
    """Create every record of the file in the sandbox directly (in file order, 10,000 lines at a time)."""
    with path.open("rb") as data:
        while chunk := b"".join(line for _, line in zip(range(10_000), data, strict=False)):
            parsed = parse_file(partial(list, [chunk]), fold_codes=True)
            assert not parsed.errors, parsed.errors[:3]
            for record_type in RecordType:
                layout = LAYOUTS[record_type]
                bodies = [{name: body_value(layout.field(name), value) for name, value in record.values.items()}
                          for record in parsed.records if record.record_type is record_type]
                if bodies:
                    sandbox("/_sandbox/create", {"resource": RESOURCE_PATH[record_type], "bodies": bodies})


def upload(path: Path, name: str) -> None:
    settings = load_settings()
    service = blob_service(settings)
    prepare_storage(settings)
    with path.open("rb") as data:
        service.get_blob_client(settings.input_container, name).upload_blob(data, overwrite=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--latency", default="0", help="ms per API call, comma-separated")
    parser.add_argument("--concurrency", default="4", help="WRITE_CONCURRENCY values, comma-separated")
    parser.add_argument("--first-max", type=int, default=100_000, help="largest file imported first (else filled)")
    parser.add_argument("--no-first", action="store_true", help="re-import only (the sandbox is filled)")
    parser.add_argument("--rejected", action="store_true", help="only the worst case: every line rejected")
    parser.add_argument("--no-reads", action="store_true", help="skip the reads-only child (no ratio)")
    parser.add_argument("--child", choices=["import", "reads"])
    parser.add_argument("--name", default="")
    parser.add_argument("--size", type=int, default=0)
    args = parser.parse_args()
    if args.child:
        result = child_import(args.name) if args.child == "import" else child_reads(args.size, int(args.concurrency))
        result["rss_mib"] = peak_rss_mib()
        print(json.dumps(result))
        return

    folder = Path(tempfile.gettempdir()) / "timebridge-scale-bench"
    folder.mkdir(exist_ok=True)
    if args.rejected:
        worst_case([int(s) for s in args.sizes.split(",")])
        return
    print(f"{'lines':>9} {'MB':>6} {'ms':>3} {'conc':>4} | {'first s':>8} {'lines/s':>7} {'RSS MiB':>7} | "
          f"{'re-imp s':>8} {'RSS MiB':>7} {'state':>6} {'keys':>5} {'rest':>5} {'calls':>7} | {'reads s':>7} | "
          f"{'re/reads':>8}", flush=True)
    for size in [int(s) for s in args.sizes.split(",")]:
        path = write_file(size, folder)
        megabytes = path.stat().st_size / 1e6
        for latency in [float(x) for x in args.latency.split(",")]:
            for concurrency in [int(x) for x in args.concurrency.split(",")]:
                # the whole file in one run, whatever its size (the limits are what the figures decide)
                env = {"WRITE_CONCURRENCY": str(concurrency), "MAX_FILE_BYTES": str(2**40),
                       "IMPORT_TIME_LIMIT_SECONDS": str(7 * 86400)}
                sandbox("/_sandbox/reset", {"seeded": False})
                first_cells = f"{'-':>8} {'-':>7} {'-':>7}"
                if size <= args.first_max and not args.no_first:
                    sandbox("/_sandbox/switches", {"latency_ms": latency})
                    upload(path, f"first_{size}.csv")
                    first = run_child(["--child", "import", "--name", f"first_{size}.csv"], env)
                    assert first["counts"].get("created") == size, first
                    first_cells = f"{first['seconds']:>8.1f} {size / first['seconds']:>7.0f} {first['rss_mib']:>7.0f}"
                else:
                    fill_sandbox(path)
                    sandbox("/_sandbox/switches", {"latency_ms": latency})
                upload(path, f"again_{size}.csv")
                again = run_child(["--child", "import", "--name", f"again_{size}.csv"], env)
                assert again["counts"].get("unchanged") == size and again["writes"] == 0, again
                reads = {"seconds": float("nan")} if args.no_reads else run_child(
                    ["--child", "reads", "--size", str(size), "--concurrency", str(concurrency)], env)
                rest = again["rss_mib"] - again["state_mib"] - again["keys_mib"]
                print(f"{size:>9,} {megabytes:>6.1f} {latency:>3.0f} {concurrency:>4} | {first_cells} | "
                      f"{again['seconds']:>8.1f} {again['rss_mib']:>7.0f} {again['state_mib']:>6.0f} "
                      f"{again['keys_mib']:>5.0f} {rest:>5.0f} {again['calls']:>7} | {reads['seconds']:>7.1f} | "
                      f"{again['seconds'] / reads['seconds']:>8.2f}", flush=True)


if __name__ == "__main__":
    main()
