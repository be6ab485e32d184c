"""Peak memory of the dry run (issue 21): the validate drop zone and ``timebridge validate``.

    .venv/bin/python -m tools.services run -- .venv/bin/python -m bench.dropzone_memory \\
        --sizes 15000000,67108864

Per file size (bytes; 67,108,864 is the default MAX_FILE_BYTES, 64 MiB) one file is written once:
10 % Employee, 10 % Job and 80 % Operation lines (as ``bench/scale_bench.py``), with one group in
50 rejected (an Operation of a job that is neither stored nor in the file, and an Employee name one
character too long) — 1,000s of problems, so the report's cap is reached. The SmartAPI sandbox is
reset to empty, so every readable line is a create (the reads are the employee and job lists).

Each dry run runs in a fresh child process: the drop zone exactly as its blob trigger runs it
(``DropZone.process`` on Azurite + the sandbox: download, plan, report.txt and report.json stored),
and the CLI (``run_validate``, as ``timebridge validate FILE`` runs it, problems and a summary). The
figure is the child's whole peak RSS (``VmHWM``, bench/memory.py): interpreter, libraries and all,
nothing subtracted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.memory import peak_rss_mib

GROUP = 10  # lines per employee + job + its operations
REJECTED_EVERY = 50  # one group in this many has two rejected lines


def group_lines(group: int) -> list[str]:
    bad = group % REJECTED_EVERY == REJECTED_EVERY - 1
    name = "N" * 51 if bad else f"Bench Person {group}"  # sName allows 50 characters
    lines = [f"Employee;E{group:07d};{name};Benchvej {group};8000;Aarhus C;;;;PROD;Produktion",
             f"Job;J{group:07d};Bench job {group};;;;Started"]
    for k in range(2, GROUP):
        job = f"X{group:07d}" if bad and k == 2 else f"J{group:07d}"  # a job neither stored nor in the file
        lines.append(f"Operation;{job};{k - 1};OP{k};Operation {k - 1} of job {group};1,5")
    return lines


def write_file(size: int, folder: Path) -> Path:
    """A file of at most ``size`` bytes (whole groups of lines), written once."""
    path = folder / f"dropzone_{size}.csv"
    if path.exists():
        return path
    written, group = 0, 0
    with path.open("wb") as out:
        while True:
            chunk = "".join(line + "\r\n" for line in group_lines(group)).encode()
            if written + len(chunk) > size:
                break
            out.write(chunk)
            written += len(chunk)
            group += 1
    return path


def child(kind: str, arg: str) -> dict[str, Any]:
    started = time.perf_counter()
    if kind == "dropzone":
        from shared.platform.config import load_settings
        from shared.wiring import build_drop_zone

        report = build_drop_zone(load_settings()).process(arg)
        assert report is not None and not report.file_problem, report and report.file_problem
        counts = dict(report.counts)
    else:
        from tools.cli_validate import DEFAULT_LIMIT, run_validate

        outcome = run_validate(Path(arg), offline=False, all_lines=False, limit=DEFAULT_LIMIT)
        counts = dict(outcome.data["summary"])
    return {"seconds": time.perf_counter() - started, "counts": counts}


def run_child(kind: str, arg: str, env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "bench.dropzone_memory", "--child", kind, "--arg", arg],
                          env={**os.environ, **env}, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"child {kind} failed:\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="15000000,67108864", help="file sizes in bytes, comma-separated")
    parser.add_argument("--only", choices=["dropzone", "cli"], default=None)
    parser.add_argument("--child", choices=["dropzone", "cli"])
    parser.add_argument("--arg", default="")
    args = parser.parse_args()
    if args.child:
        result = child(args.child, args.arg)
        result["rss_mib"] = peak_rss_mib()
        print(json.dumps(result))
        return

    from bench.scale_bench import sandbox
    from shared.platform.config import load_settings
    from shared.platform.storage import blob_service
    from shared.wiring import prepare_storage

    folder = Path(tempfile.gettempdir()) / "timebridge-dropzone-bench"
    folder.mkdir(exist_ok=True)
    env = {"MAX_FILE_BYTES": str(140 * 2**20), "WRITE_CONCURRENCY": "4"}
    settings = load_settings()
    prepare_storage(settings)
    service = blob_service(settings)
    print(f"{'bytes':>11} {'MB':>6} {'lines':>9} | {'kind':>8} {'s':>6} {'peak RSS MiB':>12} | counts", flush=True)
    for size in [int(s) for s in args.sizes.split(",")]:
        path = write_file(size, folder)
        with path.open("rb") as data:
            lines = sum(1 for _ in data)
        for kind in ("dropzone", "cli"):
            if args.only and kind != args.only:
                continue
            sandbox("/_sandbox/reset", {"seeded": False})
            if kind == "dropzone":
                name = f"bench_{size}.csv"
                with path.open("rb") as data:
                    service.get_blob_client(settings.validate_container, name).upload_blob(data, overwrite=True)
                run = run_child(kind, name, env)
            else:
                run = run_child(kind, str(path), env)
            print(f"{path.stat().st_size:>11,} {path.stat().st_size / 1e6:>6.1f} {lines:>9,} | {kind:>8} "
                  f"{run['seconds']:>6.1f} {run['rss_mib']:>12.0f} | {run['counts']}", flush=True)


if __name__ == "__main__":
    main()
