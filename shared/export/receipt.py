"""What one export run leaves beside its file: a JSON receipt (also returned by ``run_export``)."""

from __future__ import annotations

import builtins
import json
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from shared.platform.safe_text import json_visible


class ExportStatus(StrEnum):
    """Every status an export receipt can have — the one list (a run that raised has no receipt;
    its telemetry event says ``failed``)."""

    #: a file with new entries
    EXPORTED = "exported"
    #: a file without entries (EXPORT_WRITE_EMPTY_FILE)
    EXPORTED_EMPTY = "exported-empty"
    #: an interrupted run, completed from its staged file
    COMPLETED_AFTER_INTERRUPTION = "completed-after-interruption"


class ExportReceipt(BaseModel):
    run_id: str
    file: str  # "<container>/<file name>"
    status: ExportStatus
    started_at: str
    finished_at: str = ""
    duration_seconds: float = 0.0
    counts: dict[str, int] = Field(default_factory=dict)
    ids: dict[str, dict[str, int | None]] = Field(default_factory=dict)
    bytes: int = 0
    md5: str = ""
    encoding: str = ""
    decimal_separator: str = ""
    marked_transferred: int = 0
    #: Job-ledger entries of this file deleted in SmartTID after the file was written (not marked).
    deleted_in_smarttid: list[int] = Field(default_factory=list)
    api_calls: dict[str, Any] = Field(default_factory=dict)
    recovered_runs: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    #: Tic-Tac: every line of the file → ``{"line", "record", "rowid", "version", "reason"}``.
    lines: list[dict[str, Any]] = Field(default_factory=list)
    #: Tic-Tac: what the run read and did not export (``held``, ``left_out``, ``pending``, ``read``, ``guard``).
    source: dict[str, Any] = Field(default_factory=dict)

    def to_json(self) -> builtins.bytes:  # ``bytes`` is also a field here
        return json_visible(json.dumps(self.model_dump(mode="json"), indent=2, ensure_ascii=False)).encode("utf-8")

    def summary(self) -> str:
        """A few lines for a console (the demo script prints this)."""
        time_n = self.counts.get("time_ledger_entries", 0)
        job_n = self.counts.get("job_ledger_entries", 0)
        lines = [
            f"Export {self.run_id}: {self.status}",
            (f"  file:    {self.file} ({self.bytes:,} bytes, {self.encoding}, decimal separator "
             f"'{self.decimal_separator}')"),
            (f"  entries: {time_n} time ledger, {job_n} job ledger"
             + ("" if self.source else f" ({self.marked_transferred} marked transferred in SmartTID)")),
            f"  API:     {self.api_calls.get('total', 0)} calls in {self.duration_seconds:.2f} s",
        ]
        if self.source:
            read = self.source.get("read", {})
            left_out = sum(len(ids) for ids in self.source.get("left_out", {}).values())
            lines.append(f"  Tic-Tac: read {read.get('rows', 0)} rows ({read.get('kind', '')}); "
                         f"{len(self.source.get('held', []))} held, {len(self.source.get('pending', []))} pending, "
                         f"{left_out} cost/mileage/sale rows left out")
            if self.source.get("guard"):
                lines.append(f"  reconcile stopped: {self.source['guard']}")
        if self.deleted_in_smarttid:
            lines.append(f"  deleted in SmartTID after export: {self.deleted_in_smarttid}")
        if self.recovered_runs:
            lines.append(f"  first completed the interrupted run(s): {', '.join(self.recovered_runs)}")
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


def id_range(ids: Sequence[int]) -> dict[str, int | None]:
    return {"first": min(ids) if ids else None, "last": max(ids) if ids else None}
