"""Parse an incoming file (a stream of bytes) into records and line errors.

Decoding: UTF-8 with or without BOM; if the bytes are not valid UTF-8 the whole file is read as
Windows-1252 (the receipt says so). Lines end in CRLF or LF; blank lines are ignored; fields
are separated by ``;`` and may be double-quoted. Line numbers are physical line numbers as a text
editor shows them.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from shared.layouts import LAYOUTS, Layout, RecordType
from shared.values import FieldValueError, Value, convert

UTF8 = "utf-8"
WINDOWS_1252 = "windows-1252"


@dataclass(frozen=True)
class LineError:
    """One reason a line was rejected, in the administrator's terms."""

    line: int
    record_type: str
    field: str  # "sJobCode (position 1)", or "" when the problem is the whole line
    value: str
    reason: str
    action: str


@dataclass
class Record:
    """One employee / job / operation as the file asks it to be (only supplied fields)."""

    record_type: RecordType
    key: tuple[Value, ...]
    values: dict[str, Value]
    lines: list[int]

    @property
    def line(self) -> int:
        return self.lines[0]

    def describe(self) -> str:
        layout = LAYOUTS[self.record_type]
        key = ", ".join(f"{name} {self.values[name]}" for name in layout.key)
        return f"{self.record_type} {key}"


@dataclass
class ParsedFile:
    encoding: str
    records: list[Record] = field(default_factory=list)
    errors: list[LineError] = field(default_factory=list)
    lines_read: int = 0  # non-blank lines
    ignored_positions: dict[RecordType, set[int]] = field(default_factory=dict)
    #: records whose key could be read but whose line was rejected (so dependants can say why)
    rejected_keys: dict[tuple[RecordType, tuple[Value, ...]], int] = field(default_factory=dict)

    @property
    def rejected_lines(self) -> set[int]:
        return {error.line for error in self.errors}


class UnreadableFile(Exception):
    """The file as a whole cannot be imported (empty, binary, not ``;``-separated, too large)."""

    def __init__(self, reason: str, action: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.action = action


def split_lines(chunks: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    """Yield ``(line_number, raw_line)`` from a byte stream, without the line ending."""
    pending = b""
    number = 0
    for chunk in chunks:
        if b"\x00" in chunk:
            raise UnreadableFile(
                "the file contains binary data (NUL bytes), so it is not a CSV text file",
                "export the file from the ERP as semicolon-separated text (CSV) and upload it again",
            )
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for raw in complete:
            number += 1
            yield number, raw.removesuffix(b"\r")
    if pending:
        yield number + 1, pending.removesuffix(b"\r")


def parse_file(open_stream: Callable[[], Iterable[bytes]]) -> ParsedFile:
    """Parse the file, trying UTF-8 first and falling back to Windows-1252.

    ``open_stream`` is called once per attempt so the bytes are streamed, never held whole.
    """
    try:
        return _parse(open_stream(), UTF8)
    except UnicodeDecodeError:
        return _parse(open_stream(), WINDOWS_1252)


def _parse(chunks: Iterable[bytes], encoding: str) -> ParsedFile:
    parsed = ParsedFile(encoding=encoding)
    by_key: dict[tuple[RecordType, tuple[Value, ...]], Record] = {}
    first = True
    for number, raw in split_lines(chunks):
        if first and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        text = raw.decode(encoding, errors="strict" if encoding == UTF8 else "replace")
        if not text.strip():
            continue
        fields = next(csv.reader([text], delimiter=";", quotechar='"', strict=False))
        if first:
            first = False
            _check_separator(fields, text)
        parsed.lines_read += 1
        record = _parse_line(number, fields, parsed)
        if record is None:
            continue
        slot = (record.record_type, record.key)
        if slot in by_key:
            existing = by_key[slot]
            existing.values.update(record.values)
            existing.lines.append(number)
        else:
            by_key[slot] = record
            parsed.records.append(record)
    if first:
        raise UnreadableFile(
            "the file is empty (it has no lines with data)",
            "check the ERP export; upload a file with at least one Employee, Job or Operation line",
        )
    return parsed


def _check_separator(fields: list[str], text: str) -> None:
    if len(fields) > 1:
        return
    guess = "commas" if "," in text else "tabs" if "\t" in text else "no separator we recognise"
    raise UnreadableFile(
        f"the first line has no semicolons (it looks separated by {guess}), so the file is not "
        "semicolon-separated",
        "export the file with ';' as the field separator and upload it again",
    )


def _parse_line(number: int, fields: list[str], parsed: ParsedFile) -> Record | None:
    type_text = fields[0].strip()
    layout = _layout_for(type_text)
    if layout is None:
        parsed.errors.append(
            LineError(
                number,
                type_text,
                "record type (position 0)",
                type_text,
                "is not a known record type",
                "start the line with Employee, Job or Operation",
            )
        )
        return None
    values: dict[str, Value] = {}
    errors: list[LineError] = []
    for spec in layout.fields:
        text = fields[spec.position].strip() if spec.position < len(fields) else ""
        label = f"{spec.name} (position {spec.position})"
        if not text:
            if spec.name in layout.key:
                errors.append(
                    LineError(
                        number,
                        layout.record_type,
                        label,
                        "",
                        "is empty, but it identifies the record",
                        f"fill in {spec.name}; every {layout.record_type} line needs it",
                    )
                )
            continue
        try:
            values[spec.name] = convert(spec, text)
        except FieldValueError as exc:
            errors.append(LineError(number, layout.record_type, label, text, exc.reason, exc.action))
    extra = [pos for pos in range(len(layout.fields) + 1, len(fields)) if fields[pos].strip()]
    if extra:
        parsed.ignored_positions.setdefault(layout.record_type, set()).update(extra)
    if errors:
        parsed.errors.extend(errors)
        if all(name in values for name in layout.key):
            parsed.rejected_keys.setdefault((layout.record_type, tuple(values[n] for n in layout.key)), number)
        return None
    key = tuple(values[name] for name in layout.key)
    return Record(layout.record_type, key, values, [number])


def _layout_for(type_text: str) -> Layout | None:
    for record_type, layout in LAYOUTS.items():
        if record_type.value.lower() == type_text.lower():
            return layout
    return None
