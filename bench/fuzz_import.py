"""Fuzz the import: a million hostile inputs through the parser and the request encoding, and (with
services running) a few hundred hostile files through the real function.

    .venv/bin/python -m bench.fuzz_import                      # 1,000,000 inputs, parser level
    .venv/bin/python -m bench.fuzz_import --inputs 20000 --workers 2
    .venv/bin/python -m tools.services run -- .venv/bin/python -m bench.fuzz_import --files 300

Prints: inputs tried, unhandled exceptions (must be 0), inputs with lines neither imported nor
reported (must be 0); for files: files tried, functions that raised, files without a receipt or left
in the input container, receipts whose counts do not add up. Exits non-zero when a figure that must
be 0 is not.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from concurrent.futures import ProcessPoolExecutor

from tests.support.fuzzing import random_file, run_many


def _batch(seed: int, count: int) -> tuple[int, int, int]:
    rng = random.Random(seed)
    return run_many(random_file(rng) for _ in range(count))


def fuzz_inputs(total: int, workers: int, seed: int) -> int:
    started = time.perf_counter()
    size = 10_000
    jobs = [(seed + n, min(size, total - start)) for n, start in enumerate(range(0, total, size))]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(_batch, *zip(*jobs, strict=True)))
    tried, crashed, lost = (sum(column) for column in zip(*results, strict=True))
    seconds = time.perf_counter() - started
    print(f"inputs tried:                              {tried:>12,}")
    print(f"unhandled exceptions:                      {crashed:>12,}  (must be 0)")
    print(f"inputs with lines neither imported nor reported: {lost:>6,}  (must be 0)")
    print(f"time:                                      {seconds:>12.1f} s ({tried / seconds:,.0f} inputs/s)")
    return int(crashed + lost)


def fuzz_files(count: int, seed: int) -> int:
    import httpx

    from shared.importing.intake import FileRun
    from shared.platform.config import load_settings
    from shared.platform.storage import blob_service
    from shared.wiring import prepare_storage
    from tests.functions_host import trigger_import

    settings = load_settings()
    service = blob_service(settings)
    prepare_storage(settings)
    httpx.post(f"{os.environ['SMARTTID_BASE_URL']}/_sandbox/reset", json={"seeded": True}, timeout=10)
    rng = random.Random(seed)
    raised = missing = left = uneven = 0
    started = time.perf_counter()
    for n in range(count):
        name = f"fuzz/{seed}/{n}.csv"
        data = random_file(rng, max_pieces=200)
        etag = service.get_blob_client(settings.input_container, name).upload_blob(data, overwrite=True)["etag"]
        try:
            trigger_import(service, settings.input_container, name)
        except Exception:  # counted: the figure must be 0
            raised += 1
            continue
        receipt_blob = service.get_blob_client(settings.archive_container, FileRun(name, etag).receipt)
        if not receipt_blob.exists():
            missing += 1
            continue
        receipt = json.loads(receipt_blob.download_blob().readall())
        if receipt["status"] != "rejected-file" and sum(receipt["counts"].values()) != receipt["lines"]:
            uneven += 1
        if service.get_blob_client(settings.input_container, name).exists():
            left += 1
    seconds = time.perf_counter() - started
    print(f"files tried:                               {count:>12,}")
    print(f"function raised:                           {raised:>12,}  (must be 0)")
    print(f"files without a receipt:                   {missing:>12,}  (must be 0)")
    print(f"files left in the input container:         {left:>12,}  (must be 0)")
    print(f"receipts whose counts do not add up:       {uneven:>12,}  (must be 0)")
    print(f"time:                                      {seconds:>12.1f} s")
    return raised + missing + left + uneven


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inputs", type=int, default=1_000_000, help="parser-level inputs (0 to skip)")
    parser.add_argument("--files", type=int, default=0, help="files through the function (needs the services)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=20261123)
    args = parser.parse_args()
    failures = 0
    if args.inputs:
        failures += fuzz_inputs(args.inputs, args.workers, args.seed)
    if args.files:
        failures += fuzz_files(args.files, args.seed)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
