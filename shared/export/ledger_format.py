"""The outgoing ledger file: ``TimeLedgerEntry;…`` and ``JobLedgerEntry;…`` lines.

Fields follow the documented dataset order of SmartTID's *Get time ledger entry* (18 visible
fields) and *Get job ledger entry* (24 visible fields), reference §3.4 / §3.5. A field the
SmartAPI object lacks (``TaskID``, ``Setup``, …) is written empty.

Value formats: dates ``dd-mm-yyyy``; times of day and durations ``HH:MM``; hours as decimals with
the configured decimal separator and no thousands separator; flags ``1``/``0``; empty for null.
Text values that start with ``=``, ``+``, ``-``, ``@``, tab or carriage return get a leading ``'``
(spreadsheet formula injection), and the run's receipt notes each entry and column that got it; with
Windows-1252 the value is folded first (fullwidth ``＝`` → ``=``), then guarded. A text value
holding ``;``, ``"``, a line break or any other hidden character (control characters, NEL,
U+2028/2029, bidi controls: see ``shared/platform/safe_text.py``) is quoted with ``"`` and inner
quotes doubled. Lines end with CRLF; there is no header line.

Hidden characters are the target's data, so they are written unchanged (quoted, so a CSV reader
keeps them inside their field) rather than altered silently; the run's receipt notes each entry
and column that holds them, with the characters named (``U+202E``), so a person can look.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, assert_never

from shared.platform.clock import parse_timestamp
from shared.platform.config import ExportEncoding
from shared.platform.safe_text import has_hidden, hidden_characters, visible


class ColumnKind(StrEnum):
    INTEGER = "integer"
    TEXT = "text"
    DATE = "date"  # dd-mm-yyyy
    TIME = "time"  # HH:MM (time of day, or a duration stored as a time on 1900-01-01)
    DECIMAL = "decimal"
    FLAG = "flag"  # 1 / 0


@dataclass(frozen=True)
class Column:
    name: str  # the dataset column name (reference §3.4 / §3.5)
    kind: ColumnKind
    source: str | None = None  # the SmartAPI field when it is named differently

    @property
    def api_field(self) -> str:
        return self.source or self.name


T, I, D, H, N, F = (ColumnKind.TEXT, ColumnKind.INTEGER, ColumnKind.DATE, ColumnKind.TIME, ColumnKind.DECIMAL,
                    ColumnKind.FLAG)

TIME_LEDGER_RECORD = "TimeLedgerEntry"
JOB_LEDGER_RECORD = "JobLedgerEntry"

#: *Get time ledger entry*, fields 1-18 (EntryID is the SmartAPI ``ID``).
TIME_LEDGER_COLUMNS: tuple[Column, ...] = (
    Column("EntryID", I, "ID"), Column("EmployeeCode", T), Column("Name", T), Column("Date", D),
    Column("LogStart", H), Column("LogEnd", H), Column("WorkTypeCode", T), Column("BreakTime", H),
    Column("StartTime", H), Column("EndTime", H), Column("TotalTime", N), Column("WorkCalendarCode", T),
    Column("Type", T), Column("Transfered", F), Column("Remark", T), Column("DepartmentCode", T),
    Column("WorkFunctionCode", T), Column("Relative", F),
)

#: *Get job ledger entry*, fields 1-24.
JOB_LEDGER_COLUMNS: tuple[Column, ...] = (
    Column("ID", I), Column("EmployeeCode", T), Column("Date", D), Column("Name", T), Column("JobCode", T),
    Column("OperationCode", T), Column("JobOperationLineNumber", N), Column("OperationDescription", T),
    Column("ActivityCode", T), Column("ActivityDescription", T), Column("Completed", F),
    Column("WorkTypeCode", T), Column("StartTime", H), Column("EndTime", H), Column("TotalTime", N),
    Column("ERPReference", T), Column("TaskID", I), Column("WorkFunctionCode", T), Column("DistrictCode", T),
    Column("DepartmentCode", T), Column("EmployeeGroupCode", T), Column("Setup", F), Column("JournalCode", T),
    Column("DimensionCode1", T),
)

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_NEEDS_QUOTES = re.compile(r'[;"\r\n]')
_HH_MM = re.compile(r"^(\d{1,2}):(\d{2})(?::\d{2})?$")
_DD_MM_YYYY = re.compile(r"^(\d{2})-(\d{2})-(\d{4})$")
SEPARATOR = ";"
NEWLINE = "\r\n"


def text_field(value: str, encoding: ExportEncoding = ExportEncoding.UTF8_BOM) -> str:
    """A text value made safe for spreadsheets and for the ``;`` line format.

    With Windows-1252 the value is folded first (:func:`fold_text`), then guarded and quoted: a
    fullwidth ``＝`` folds to a live ``=``, so the guard must see the folded text."""
    if encoding is ExportEncoding.WINDOWS_1252:
        value = fold_text(value)[0]
    if value.startswith(FORMULA_TRIGGERS):
        value = "'" + value
    if _NEEDS_QUOTES.search(value) or has_hidden(value):
        value = '"' + value.replace('"', '""') + '"'
    return value


def is_true(raw: Any) -> bool:
    return raw in (True, 1, "1") or (isinstance(raw, str) and raw.strip().lower() == "true")


def format_value(kind: ColumnKind, raw: Any, decimal_separator: str,
                 encoding: ExportEncoding = ExportEncoding.UTF8_BOM) -> str | None:
    """The field text, or None when ``raw`` does not fit ``kind`` (the caller writes it as text)."""
    if raw is None or (raw == "" and kind is not ColumnKind.TEXT):
        return ""
    match kind:
        case ColumnKind.TEXT:
            return text_field(str(raw), encoding)
        case ColumnKind.INTEGER:
            if isinstance(raw, bool):
                return None
            try:
                number = Decimal(str(raw))
            except InvalidOperation:
                return None
            return str(int(number)) if number == number.to_integral_value() else None
        case ColumnKind.DECIMAL:
            if isinstance(raw, bool):
                return None
            try:
                number = Decimal(str(raw).strip())
            except InvalidOperation:
                return None
            if not number.is_finite():
                return None
            text = format(number.normalize(), "f")
            return text.replace(".", decimal_separator)
        case ColumnKind.FLAG:
            if isinstance(raw, str) and raw.strip().lower() in ("0", "false"):
                return "0"
            if raw in (False, 0):
                return "0"
            return "1" if is_true(raw) else None
        case ColumnKind.DATE:
            text = str(raw).strip()
            if _DD_MM_YYYY.match(text):
                return text
            moment = parse_timestamp(text)
            return moment.strftime("%d-%m-%Y") if moment else None
        case ColumnKind.TIME:
            text = str(raw).strip()
            match = _HH_MM.match(text)
            if match:
                return f"{int(match.group(1)):02d}:{match.group(2)}"
            moment = parse_timestamp(text)
            return moment.strftime("%H:%M") if moment else None
    assert_never(kind)


def render_line(record: str, columns: Iterable[Column], row: dict[str, Any], decimal_separator: str,
                notes: list[str], *, encoding: ExportEncoding) -> str:
    """One entry's line (text, before :func:`encode_line`); its notes are appended to ``notes``: a
    value that is not of its column's kind, hidden characters, and each value given the formula guard."""
    fields = [record]
    replaced = 0
    for column in columns:
        raw = original = row.get(column.api_field)
        if encoding is ExportEncoding.WINDOWS_1252 and isinstance(raw, str):
            raw, count = fold_text(raw)  # fold first, then guard and quote the folded text
            replaced += count
        text = format_value(column.kind, raw, decimal_separator, encoding)
        as_text = column.kind is ColumnKind.TEXT
        if text is None:
            notes.append(visible(f"{record} {row.get('ID')}: {column.name} value {raw!r} is not a {column.kind}; "
                                 "written as text"))
            text, as_text = text_field(str(raw), encoding), True
        if as_text and raw is not None and str(raw).startswith(FORMULA_TRIGGERS):
            notes.append(visible(f"{record} {row.get('ID')}: {column.name} starts with {str(raw)[0]!r}; written "
                                 "with a leading ' (spreadsheet formula guard)"))
        if isinstance(original, str) and (hidden := hidden_characters(original.replace("\r\n", "").replace("\n", ""))):
            notes.append(visible(f"{record} {row.get('ID')}: {column.name} holds hidden characters "
                                 f"({', '.join(hidden)}); written unchanged, quoted"))
        fields.append(text)
    if replaced:
        notes.append(_replaced_note(f"{record} {row.get('ID')}", replaced))
    return SEPARATOR.join(fields) + NEWLINE


def fold_text(text: str) -> tuple[str, int]:
    """``text`` with every character Windows-1252 cannot hold replaced by its base letter when it has
    one (``Ł`` → ``L``, ``ő`` → ``o``, fullwidth ``＝`` → ``=``), otherwise ``?``. Returns the text
    and the number replaced."""
    try:
        text.encode("cp1252")
        return text, 0
    except UnicodeEncodeError:
        pass
    out: list[str] = []
    replaced = 0
    for char in text:
        try:
            char.encode("cp1252")
            out.append(char)
            continue
        except UnicodeEncodeError:
            replaced += 1
        base = _STROKED.get(char) or "".join(
            c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c)
        )
        try:
            base.encode("cp1252")
            out.append(base or "?")
        except UnicodeEncodeError:
            out.append("?")
    return "".join(out), replaced


def fold_to_cp1252(text: str) -> tuple[bytes, int]:
    """Windows-1252 bytes of ``text`` (:func:`fold_text`). Returns the bytes and the number replaced."""
    folded, replaced = fold_text(text)
    return folded.encode("cp1252"), replaced


#: Letters with a stroke have no NFKD decomposition.
_STROKED = {"Ł": "L", "ł": "l", "Đ": "D", "đ": "d", "Ħ": "H", "ħ": "h", "Ŧ": "T", "ŧ": "t"}


def encode_line(line: str, encoding: ExportEncoding, what: str, notes: list[str]) -> bytes:
    """The line's bytes in the file's encoding; characters Windows-1252 cannot hold are folded and
    noted (``what`` names the entry, e.g. ``TimeLedgerEntry 7``). :func:`render_line` has folded
    the values already (and noted them), so this folds only what it did not render."""
    if encoding is ExportEncoding.UTF8_BOM:
        return line.encode("utf-8")
    data, replaced = fold_to_cp1252(line)
    if replaced:
        notes.append(_replaced_note(what, replaced))
    return data


def _replaced_note(what: str, replaced: int) -> str:
    return f"{what}: {replaced} character(s) that Windows-1252 cannot hold were replaced (by the base letter, or ?)"


@dataclass
class LedgerFile:
    content: bytes
    time_ids: list[int]
    job_ids: list[int]
    notes: list[str] = field(default_factory=list)


def render(
    time_entries: Iterable[dict[str, Any]],
    job_entries: Iterable[dict[str, Any]],
    *,
    encoding: ExportEncoding,
    decimal_separator: str,
) -> LedgerFile:
    """The file's bytes: time-ledger lines, then job-ledger lines, each in ID order."""
    notes: list[str] = []
    chunks: list[bytes] = [b"\xef\xbb\xbf"] if encoding is ExportEncoding.UTF8_BOM else []
    ids: dict[str, list[int]] = {TIME_LEDGER_RECORD: [], JOB_LEDGER_RECORD: []}
    for record, columns, entries in (
        (TIME_LEDGER_RECORD, TIME_LEDGER_COLUMNS, time_entries),
        (JOB_LEDGER_RECORD, JOB_LEDGER_COLUMNS, job_entries),
    ):
        for row in sorted(entries, key=lambda r: int(r["ID"])):
            line = render_line(record, columns, row, decimal_separator, notes, encoding=encoding)
            chunks.append(encode_line(line, encoding, f"{record} {row['ID']}", notes))
            ids[record].append(int(row["ID"]))
    return LedgerFile(b"".join(chunks), ids[TIME_LEDGER_RECORD], ids[JOB_LEDGER_RECORD], notes)
