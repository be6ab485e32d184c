"""Peak memory per file size, as total peaks: first import and re-import of the 20/20/60 mix (issue 22).

    .venv/bin/python -m tools.services run -- .venv/bin/python -m bench.memory_table \\
        --sizes 1000,100000,1000000 --first-writes 30000

The file is 20 % Employee, 20 % Job and 60 % Operation lines (per group of five lines: an employee,
a job and three operations of that job). Each import runs in a child process of its own
(``intake.process`` on Azurite + the SmartAPI sandbox, as the blob trigger runs it); its peak RSS
is the child's own ``VmHWM`` (``bench/memory.py``), the whole process, nothing subtracted.

* **first import**: every line a create. A large file takes long against the sandbox, so with
  ``--first-writes N`` the child stops after N writes (whatever the size) and reports the peak
  reached so far: the growth per write is (that peak − the 1k peak) ÷ (its writes − the 1k writes).
* **re-import**: the sandbox holds every record of the file (filled directly, no HTTP per record),
  and the file is imported again: every line unchanged, no writes. The importer holds the stored
  employees and jobs while it plans; ``state`` is what that held (the packed records' bytes as
  allocated, when the employees and jobs are planned), beside the peak as its share, and per
  stored record.

The ratios are to the 1k-line peak of the same kind (first or re-import) in the same run.
Figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.memory import peak_rss_mib
from bench.scale_bench import file_lines, fill_sandbox, sampled_size, sandbox, upload

GROUP = 5  # an employee, a job and three operations


def mix_lines(size: int) -> Iterator[bytes]:
    """The 20/20/60 mix: ``scale_bench``'s lines in groups of five."""
    return file_lines(size, GROUP)


def mix_file(size: int, folder: Path) -> Path:
    path = folder / f"mix_{size}.csv"
    if not path.exists():
        with path.open("wb") as out:
            out.writelines(mix_lines(size))
    return path


def stored_records(size: int) -> int:
    """Employees + jobs of the file (what the target holds and the importer reads whole)."""
    groups, rest = divmod(size, GROUP)
    return 2 * groups + min(rest, 2)


# --- the child: one import in a process of its own ------------------------------------------
def state_bytes(importer: Any) -> int:
    """Bytes of the target's state the importer held (the stored employees and jobs)."""
    total = 0
    for held in importer._remote.values():
        if isinstance(held, dict):
            total += sampled_size(held)
        else:  # packed records (shared/importing/stored.py)
            total += held.nbytes()
    codes = getattr(importer, "_stored_job_codes", None)
    if isinstance(codes, dict):
        total += sampled_size(codes)
    return total


def child(name: str, marks: list[int]) -> dict[str, Any]:
    from shared.importing import importer as importing
    from shared.targets.smarttid import connector as smarttid
    from shared.wiring import build_intake

    held = {"state": 0}
    run_batches, masters_planned = importing.Importer.run_batches, importing.Importer._masters_planned

    def measured_run(self: importing.Importer, *args: Any, **kwargs: Any) -> importing.ImportResult:
        result = run_batches(self, *args, **kwargs)
        held["state"] = max(held["state"], state_bytes(self))
        return result

    def measured_masters(self: importing.Importer) -> None:  # the most held: before the employees go
        held["state"] = max(held["state"], state_bytes(self))
        masters_planned(self)

    importing.Importer.run_batches = measured_run  # type: ignore[method-assign]
    importing.Importer._masters_planned = measured_masters  # type: ignore[method-assign]
    started = time.perf_counter()
    peaks: dict[int, float] = {}
    if marks:
        create = smarttid.SmartTidConnector.create
        lock, writes = threading.Lock(), [0]

        def counted(self: smarttid.SmartTidConnector, *args: Any, **kwargs: Any) -> None:
            create(self, *args, **kwargs)
            with lock:
                writes[0] += 1
                if writes[0] in marks:
                    peaks[writes[0]] = peak_rss_mib()
                if writes[0] == marks[-1]:  # the peak so far, then out at once (the rest is not needed)
                    print(json.dumps({"seconds": time.perf_counter() - started, "writes": writes[0],
                                      "complete": False, "state_mib": 0.0, "rss_mib": peak_rss_mib(),
                                      "peaks": peaks}), flush=True)
                    os._exit(0)

        smarttid.SmartTidConnector.create = counted  # type: ignore[method-assign]
    receipt = build_intake(_settings()).process(name)
    assert receipt is not None
    return {"seconds": time.perf_counter() - started, "writes": receipt.api_calls.get("writes", 0),
            "complete": True, "counts": receipt.counts, "state_mib": held["state"] / 2**20,
            "rss_mib": peak_rss_mib(), "peaks": peaks}


def _settings() -> Any:
    from shared.platform.config import load_settings

    # no time limit in the bench (a re-import of 1M lines may take longer than the function's)
    return load_settings().model_copy(update={"import_time_limit_seconds": 7 * 86400})


# --- the parent ---------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,100000,1000000")
    parser.add_argument("--first-writes", default="",
                        help="the peak after these many writes (comma-separated): a first import of a larger file "
                             "stops after the last (none: run it to the end); the growth per write is the slope "
                             "between the first and the last")
    parser.add_argument("--no-first", action="store_true", help="re-imports only")
    parser.add_argument("--no-reimport", action="store_true", help="first imports only")
    parser.add_argument("--child", default="")
    parser.add_argument("--marks", default="")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, [int(m) for m in args.marks.split(",") if m])))
        return

    folder = Path(tempfile.gettempdir()) / "timebridge-scale-bench"
    folder.mkdir(exist_ok=True)
    env = {"MAX_FILE_BYTES": str(140 * 2**20)}
    print(f"{'lines':>9} | {'first: writes':>13} {'s':>6} {'peak MiB':>8} {'x 1k':>5} {'KiB/write':>9} | "
          f"{'re-import: s':>12} {'peak MiB':>8} {'x 1k':>5} {'state MiB':>9} {'share':>5} {'KiB/rec':>7}",
          flush=True)
    base: dict[str, Any] = {}
    for size in [int(s) for s in args.sizes.split(",")]:
        path = mix_file(size, folder)
        first_cells = f"{'-':>13} {'-':>6} {'-':>8} {'-':>5} {'-':>9}"
        sandbox("/_sandbox/reset", {"seeded": False})
        filled = False
        if not args.no_first:
            upload(path, f"first_{size}.csv")
            marks = [int(m) for m in args.first_writes.split(",") if m and int(m) < size]
            first = run_child_import(f"first_{size}.csv", marks, env)
            filled = first["complete"]
            base.setdefault("first", first)
            peaks = {int(k): v for k, v in first["peaks"].items()}
            growth = ((peaks[marks[-1]] - peaks[marks[0]]) * 1024 / (marks[-1] - marks[0])
                      if len(marks) > 1 and len(peaks) == len(marks) else float("nan"))
            mark = "" if first["complete"] else "*"
            first_cells = (f"{first['writes']:>12,}{mark or ' '} {first['seconds']:>6.0f} {first['rss_mib']:>8.1f} "
                           f"{first['rss_mib'] / base['first']['rss_mib']:>5.2f} {growth:>9.3f}")
        if args.no_reimport:
            print(f"{size:>9,} | {first_cells} |", flush=True)
            continue
        if not filled:
            sandbox("/_sandbox/reset", {"seeded": False})
            fill_sandbox(path)
        upload(path, f"again_{size}.csv")
        again = run_child_import(f"again_{size}.csv", [], env)
        assert again["counts"].get("unchanged") == size and again["writes"] == 0, again
        base.setdefault("again", again)
        per_record = again["state_mib"] * 1024 / stored_records(size)
        print(f"{size:>9,} | {first_cells} | {again['seconds']:>12.0f} {again['rss_mib']:>8.1f} "
              f"{again['rss_mib'] / base['again']['rss_mib']:>5.2f} {again['state_mib']:>9.1f} "
              f"{again['state_mib'] / again['rss_mib']:>5.0%} {per_record:>7.3f}", flush=True)
    if args.first_writes:
        last = args.first_writes.split(",")[-1]
        print(f"* the first import stopped after {last} writes: its peak so far; KiB/write: the growth of the peak "
              f"between {args.first_writes.replace(',', ' and ')} writes", flush=True)


def run_child_import(name: str, marks: list[int], env: dict[str, str]) -> dict[str, Any]:
    return run_child_module("bench.memory_table", ["--child", name, "--marks", ",".join(map(str, marks))], env)


def run_child_module(module: str, args: list[str], env: dict[str, str]) -> dict[str, Any]:
    import subprocess

    done = subprocess.run([sys.executable, "-m", module, *args], env={**os.environ, **env},
                          capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"child {args} failed:\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


if __name__ == "__main__":
    main()
