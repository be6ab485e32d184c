"""What an import leaves behind for the administrator: a JSON receipt and a readable error report."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.importing.personal_data import CPR_FIELD, WITHHELD
from shared.platform.clock import now_iso
from shared.platform.safe_text import json_visible, visible
from shared.records.record import LineError

ENCODING_NAMES = {"utf-8": "UTF-8", "windows-1252": "Windows-1252",
                  "mixed": "UTF-8, some lines Windows-1252 (see the receipt)"}


class ImportStatus(StrEnum):
    """Every status an import receipt (and its telemetry event) can have — the one list."""

    #: every line applied (created, updated or unchanged)
    IMPORTED = "imported"
    #: some lines applied, some rejected (the error report lists them)
    IMPORTED_WITH_ERRORS = "imported-with-errors"
    #: every line rejected
    REJECTED = "rejected"
    #: the file as a whole could not be read (too large, not a CSV, …): it is in ``error`` with a reason
    REJECTED_FILE = "rejected-file"
    #: the file waits behind an earlier file of the same target (a call budget's queue)
    QUEUED = "queued"
    #: nothing applied yet: every line waits for the target's call budget or the next run
    DEFERRED = "deferred"
    #: some lines applied, the rest wait
    PARTIALLY_APPLIED = "partially-applied"
    #: a resumption of waiting lines (the lines of a deferred file were sent, some or all)
    RESUMED = "resumed"


class Receipt(BaseModel):
    """One per input file, stored next to the archived copy; its presence marks the file as done."""

    model_config = ConfigDict(validate_assignment=True)

    source: str
    etag: str
    status: ImportStatus | Literal[""]  # "" only before the outcome is known
    received_at: str
    folder: str = ""  # where this file's outputs are (``<name or safe form>/<etag>``)
    encoding: str | None = None  # utf-8 | windows-1252 | mixed
    windows_1252_lines: str = ""  # the lines read as Windows-1252 ("3, 7-9"), when not all or none
    lines: int = 0
    counts: dict[str, int] = Field(default_factory=dict)
    api_calls: dict[str, Any] = Field(default_factory=dict)
    duration_seconds: float = 0.0
    notes: list[str] = Field(default_factory=list)
    outputs: dict[str, str] = Field(default_factory=dict)
    #: lines waiting for the target's call budget: how many, until when, where they are kept
    deferred: dict[str, Any] = Field(default_factory=dict)
    finished_at: str = ""

    def to_json(self) -> bytes:
        self.finished_at = self.finished_at or now_iso()
        return json_visible(json.dumps(self.model_dump(mode="json"), indent=2, ensure_ascii=False)).encode("utf-8")


def describe_error(source: str, error: LineError) -> str:
    """One error as a sentence: where (file, line, field), what is wrong, what to do."""
    where = f"{source}, line {error.line}"
    if error.record_type:
        where += f" ({error.record_type})"
    if error.field:
        value = f' "{error.value}"' if error.value else ""
        if error.value and error.field.startswith(CPR_FIELD + " "):
            value = f" {WITHHELD}"  # a CPR number is never shown
        what = f"field {error.field}{value} {error.reason}"
    else:
        what = error.reason
    what, action = what.rstrip(" ."), error.action.rstrip(" .")  # never a doubled full stop
    return visible(f"{where}: {what}. What to do: {action}.")  # values and target messages escaped


def error_report(
    receipt: Receipt, errors: Iterable[LineError], rejected_name: str | None, formula_lines: list[int] | None = None
) -> bytes:
    """The human-readable report for the error container (UTF-8 with BOM so Notepad shows æøå).

    Text from the file, its name and the target is escaped visibly (:func:`shared.platform.safe_text.visible`)
    so no value can forge a report line. ``formula_lines``: rejected lines with a field a spreadsheet
    would run as a formula."""
    return b"".join(error_report_chunks(receipt, errors, rejected_name, formula_lines))


def error_report_chunks(
    receipt: Receipt, errors: Iterable[LineError], rejected_name: str | None, formula_lines: list[int] | None = None
) -> Iterator[bytes]:
    """:func:`error_report` in pieces of about 64 KiB, for an upload that does not hold the whole report."""
    counts = receipt.counts
    lines = [
        "TimeBridge import report",
        "",
        f"File:      {visible(receipt.source)}",
        f"Received:  {receipt.received_at}",
        f"Encoding:  {ENCODING_NAMES.get(receipt.encoding or '', receipt.encoding or 'unknown')}",
        "Lines:     " + ", ".join(f"{k} {counts.get(k, 0)}" for k in ("created", "updated", "unchanged", "rejected")),
        "",
    ]
    if rejected_name:
        lines += [
            f'The rejected lines are in "{visible(rejected_name)}" next to this report. Correct them as described',
            "below and upload that file to the input container again; lines that were imported are not in it.",
            "That file is the raw input, byte for byte: open it in a text editor, or in a spreadsheet only with",
            "formulas disabled (import it as text), because a crafted value can run as a formula there.",
        ]
        if formula_lines:
            lines.append(
                "Lines with a value that starts with =, +, - or @ (a spreadsheet would treat it as a formula): "
                + ", ".join(str(number) for number in formula_lines) + "."
            )
        lines.append("")
    yield ("\n".join(lines) + "\n").encode("utf-8-sig")
    piece: list[str] = []
    size = 0
    for error in errors:
        text = describe_error(receipt.source, error) + "\n"
        piece.append(text)
        size += len(text)
        if size >= 65536:
            yield "".join(piece).encode("utf-8")
            piece, size = [], 0
    if piece:
        yield "".join(piece).encode("utf-8")


def file_rejection_report(source: str, received_at: str, reason: str, action: str,
                          target: str = "SmartTID") -> bytes:
    text = (
        "TimeBridge import report\n\n"
        f"File:      {visible(source)}\nReceived:  {received_at}\n\n"
        f"The whole file was not imported: {visible(reason)}.\nWhat to do: {visible(action)}.\n"
        f"Nothing from this file was written to {target}. The file is stored next to this report.\n"
    )
    return text.encode("utf-8-sig")
