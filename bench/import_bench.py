"""Import benchmark: throughput and memory for growing files, on Azurite + the SmartAPI sandbox.

    .venv/bin/python -m tools.services run -- .venv/bin/python -m bench.import_bench

Prints, per file size: lines, bytes, seconds for a first import (all creates), seconds for a
re-import (all unchanged, zero writes), API calls, and the peak Python heap (tracemalloc) during
the re-import's parse/plan/report — so one can see how memory grows with the file.
"""

from __future__ import annotations

import json
import os
import time
import tracemalloc

import httpx

from shared.platform.config import load_settings
from shared.platform.storage import blob_service
from shared.wiring import build_intake, prepare_storage

SIZES = (1_000, 5_000, 20_000)


def make_file(lines: int, tag: str) -> bytes:
    rows = [
        f"Employee;B{tag}{i:06d};Bench Person {i};Benchvej {i};8000;Aarhus C;;bench{i}@example.dk;;PROD;Produktion"
        for i in range(lines)
    ]
    return ("\r\n".join(rows) + "\r\n").encode()


def main() -> None:
    settings = load_settings()
    service = blob_service(settings)
    prepare_storage(settings)
    intake = build_intake(settings)
    print(f"{'lines':>7} {'bytes':>10} {'import s':>9} {'lines/s':>8} {'re-import s':>11} "
          f"{'writes':>7} {'calls':>6} {'peak heap MiB':>13}")
    for size in SIZES:
        httpx.post(f"{os.environ['SMARTTID_BASE_URL']}/_sandbox/reset", json={"seeded": True}, timeout=10)
        data = make_file(size, str(size))
        name = f"bench_{size}.csv"
        timings = []
        receipts = []
        for _ in range(2):
            service.get_blob_client(settings.input_container, name).upload_blob(data, overwrite=True)
            tracemalloc.start()
            started = time.perf_counter()
            receipt = intake.process(name)
            timings.append(time.perf_counter() - started)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            receipts.append(receipt)
        first, second = receipts
        assert first is not None and second is not None
        assert second.counts["unchanged"] == size, json.dumps(second.counts)
        print(f"{size:>7} {len(data):>10} {timings[0]:>9.2f} {size / timings[0]:>8.0f} {timings[1]:>11.2f} "
              f"{second.api_calls['writes']:>7} {second.api_calls['total']:>6} {peak / 2**20:>13.1f}")


if __name__ == "__main__":
    main()
