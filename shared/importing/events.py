"""The import's telemetry: its receipt as the plain summary :mod:`shared.platform.telemetry` emits,
with the rejected lines counted per reason code (built from the layouts' names only)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import Final

from shared.importing.reports import Receipt
from shared.platform import telemetry
from shared.records.layouts import LAYOUTS
from shared.records.record import LineError

#: The field labels a reason code may name: the layouts' own (shared/records/layouts.py), never text from the file.
_FIELDS: Final = frozenset(
    {"record type (position 0)"}
    | {f"{spec.name} (position {spec.position})" for layout in LAYOUTS.values() for spec in layout.fields}
)
_UNKNOWN_POSITION = re.compile(r"^position \d{1,4}$")
#: Record types a reason code may name (anything else in the first column is the file's text).
_RECORD_TYPES: Final = tuple(str(record_type) for record_type in LAYOUTS)


def import_finished(receipt: Receipt, *, target: str, errors: Iterable[LineError] = ()) -> None:
    """The summary event of one import (every outcome: imported, with errors, rejected, rejected file)."""
    telemetry.import_finished(
        file=receipt.source, etag=receipt.etag, target=target, status=receipt.status, lines=receipt.lines,
        counts=receipt.counts, api_calls=int(receipt.api_calls.get("total", 0)),
        api_writes=int(receipt.api_calls.get("writes", 0)), duration_seconds=receipt.duration_seconds,
        rejected_by_reason=rejected_by_reason(errors))


def rejected_by_reason(errors: Iterable[LineError]) -> dict[str, int]:
    """Rejected lines per reason code (a line counts once per code)."""
    lines: dict[str, set[int]] = {}
    for error in errors:
        lines.setdefault(reason_code(error), set()).add(error.line)
    return dict(Counter({code: len(numbers) for code, numbers in lines.items()}).most_common())


def reason_code(error: LineError) -> str:
    """``"Employee sName (position 2)"`` for a field, ``"Employee line"`` for a whole line,
    ``"file line"`` when the line's record type is unknown. Built from the layouts' names only:
    never a value, a message of the target system, or text from the file."""
    record_type = next((known for known in _RECORD_TYPES if known.lower() == error.record_type.lower()), "file")
    field = error.field if error.field in _FIELDS or _UNKNOWN_POSITION.match(error.field) else "line"
    return f"{record_type} {field}"
