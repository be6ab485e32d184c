"""``timebridge match FILE``: the matching readiness report for a local file, before the first import.

Reads the target once (within a Tic-Tac budget) and lists, per kind, the target records matched by
code, by cross-reference and by name, the lines that would create a record, the target records
without the ERP's code or not in the file, and duplicates — each with what to change
(:mod:`shared.importing.readiness`). Exit 0 when ready, 1 when not; 3 / 4 when it could not be made.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.platform.safe_text import visible
from tools.cli_support import OK, REJECTED, CliError

CHUNK = 256 * 1024


@dataclass
class MatchOutcome:
    data: dict[str, Any]
    text: str
    exit_code: int


def run_match(file: Path) -> MatchOutcome:
    import json

    from shared.errors import UnreadableFileError
    from shared.importing.passes import read_for_import
    from shared.importing.readiness import FOR_READINESS, readiness
    from shared.targets.registry import target_spec
    from tools.cli_support import CONFIGURATION, load_settings
    from tools.cli_validate import _connect

    settings = load_settings()
    target = target_spec(settings.target_system).display_name
    if file.stat().st_size > settings.max_file_bytes:
        raise CliError(f"{visible(file.name)} is {file.stat().st_size:,} bytes; the limit is "
                       f"{settings.max_file_bytes:,} bytes (MAX_FILE_BYTES)", "split the file into parts below the "
                       "limit", REJECTED, "file-too-large")

    def chunks() -> Iterator[bytes]:
        with file.open("rb") as handle:
            while chunk := handle.read(CHUNK):
                yield chunk

    connector, problem = _connect(settings, file.name)
    if connector is None:
        assert problem is not None
        raise CliError(problem.reason, problem.what_to_do, CONFIGURATION, problem.code)
    try:
        try:
            parsed, batches = read_for_import(chunks, fold=connector.codes_case_insensitive, target=target,
                                              size=file.stat().st_size, whole=True, why_whole=FOR_READINESS)
        except UnreadableFileError as exc:
            raise CliError(f"{visible(file.name)} cannot be imported: {exc.reason}", exc.action, REJECTED,
                           "file-unreadable") from None
        report = readiness(connector, parsed, batches, source=file.name, target=target,
                           concurrency=settings.write_concurrency)
    finally:
        connector.close()
    return MatchOutcome(json.loads(report.to_json()), report.to_text().rstrip("\n"), OK if report.ready else REJECTED)
