"""Parser speed: the intake's real read path against bare ``csv.reader`` over the same file.

    .venv/bin/python -m bench.parse_bench [--lines 1000000] [--repeat 3]

The file is 20 % Employee, 20 % Job and 60 % Operation lines (per employee: one job with three
operations), written once to a temporary folder. Both sides read it from disk in 4 MiB chunks (the
blob download's chunk size) in this one process, alternately, ``--repeat`` times; the table shows
the median of each side and their ratio — so both sides of the ratio come from the same run on
the same (shared) machine — by the clock and by this process's CPU time (``time.process_time``, the
read-ahead thread's included): on a machine shared with other work the clock also counts the time
the process waited for a core, so the CPU ratio is the steadier one:

* **csv.reader**: the bytes decoded as UTF-8 and split by the standard ``csv`` reader
  (``;``-separated), nothing else;
* **intake**: what an import of a SmartTID file reads before and while it writes
  (``shared.importing.intake.read_file``): the scan (every line; employees and jobs checked, the
  operations keyed), then the batches of employees and jobs, then the batches of operations (each
  line checked), exactly as ``Importer.run_batches`` takes them;
* **parse_file**: the whole file parsed into records at once (what a Tic-Tac import or dry
  run reads, up to 8 MiB; the validate drop zone and the CLI read a SmartTID file as the intake does).

The goal (issue 22) is a ratio of at least 0.2 for the intake. Figures, never assertions.
"""

from __future__ import annotations

import argparse
import csv
import io
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

CHUNK = 4 * 1024 * 1024
GOAL = 0.2


def file_lines(size: int) -> Iterator[bytes]:
    """``size`` lines: per group of five an employee, a job and three of its operations."""
    for i in range(size):
        group, k = divmod(i, 5)
        if k == 0:
            line = (f"Employee;E{group:07d};Bench Person {group};Benchvej {group % 200};8000;Aarhus C;;"
                    f"person{group}@example.dk;;PROD;Produktion")
        elif k == 1:
            line = f"Job;J{group:07d};Bench job {group};;01-12-2026;31-12-2026;Started;;;{group % 50}"
        else:
            line = f"Operation;J{group:07d};{k - 1};OP{k};Operation {k - 1} of job {group};1,5;;;;;;0"
        yield (line + "\r\n").encode()


def write_file(size: int) -> Path:
    path = Path(tempfile.gettempdir()) / "timebridge-parse-bench" / f"mix_{size}.csv"
    path.parent.mkdir(exist_ok=True)
    if not path.exists():
        with path.open("wb") as out:
            out.writelines(file_lines(size))
    return path


def opener(path: Path) -> Callable[[], Iterator[bytes]]:
    def chunks() -> Iterator[bytes]:
        with path.open("rb") as source:
            while chunk := source.read(CHUNK):
                yield chunk

    return chunks


def bare_csv(path: Path) -> int:
    rows = 0
    with path.open("rb") as source:
        for _ in csv.reader(io.TextIOWrapper(source, encoding="utf-8", newline=""), delimiter=";"):
            rows += 1
    return rows


def intake(path: Path) -> int:
    """The read path of ``IntakeService._import`` for SmartTID: ``read_file``, then the batches."""
    from shared.importing.intake import read_file
    from shared.importing.passes import MASTERS, OPERATIONS
    from shared.platform.config import Settings

    class Reader:  # what read_file asks of the connector
        codes_case_insensitive = True
        inline_children = False

    settings = Settings.model_construct(target_system=Settings.model_fields["target_system"].default)
    parsed, batches = read_file(settings, Reader(), opener(path), path.stat().st_size)  # type: ignore[arg-type]
    records = sum(len(batch) for wanted in (MASTERS, OPERATIONS) for batch in batches(wanted))
    assert not parsed.errors, parsed.errors[:3]
    return records


def whole(path: Path) -> int:
    from shared.importing.parsing import parse_file

    parsed = parse_file(opener(path), fold_codes=True)
    assert not parsed.errors, parsed.errors[:3]
    return len(parsed.records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-whole", action="store_true", help="skip parse_file (memory grows with the file)")
    args = parser.parse_args()
    path = write_file(args.lines)
    sides: dict[str, Callable[[Path], int]] = {"csv.reader": bare_csv, "intake": intake}
    if not args.no_whole:
        sides["parse_file"] = whole
    seconds: dict[str, list[float]] = {name: [] for name in sides}
    cpu: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(args.repeat):
        for name, side in sides.items():
            started, started_cpu = time.perf_counter(), time.process_time()
            count = side(path)
            seconds[name].append(time.perf_counter() - started)
            cpu[name].append(time.process_time() - started_cpu)
            assert count == args.lines, (name, count)
    base, base_cpu = statistics.median(seconds["csv.reader"]), statistics.median(cpu["csv.reader"])
    print(f"{args.lines:,} lines, {path.stat().st_size / 1e6:.1f} MB (20 % Employee, 20 % Job, 60 % Operation); "
          f"median of {args.repeat}")
    print(f"{'side':<11} {'s':>7} {'lines/s':>10} {'ratio':>6} {'cpu s':>7} {'cpu ratio':>9}")
    for name, times in seconds.items():
        median, median_cpu = statistics.median(times), statistics.median(cpu[name])
        print(f"{name:<11} {median:>7.2f} {args.lines / median:>10,.0f} {base / median:>6.3f} {median_cpu:>7.2f} "
              f"{base_cpu / median_cpu:>9.3f}")
    for kind, ratio in (("clock", base / statistics.median(seconds["intake"])),
                        ("CPU", base_cpu / statistics.median(cpu["intake"]))):
        print(f"parser goal ({kind}): intake >= {GOAL} x csv.reader: {ratio:.3f} x "
              f"({'met' if ratio >= GOAL else 'not met'})")


if __name__ == "__main__":
    main()
