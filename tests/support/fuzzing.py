"""Fuzzed input files and the promise they are checked against: every non-blank physical line is
applied or reported, never both, and every accepted value can be sent to the target.

Used by the property-based tests (bounded, in CI) and by ``bench/fuzz_import.py`` (a million inputs).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable

from shared.errors import UnreadableFileError
from shared.importing.parsing import BOM, ParsedFile, parse_file, physical_lines
from shared.importing.passes import MASTERS, OPERATIONS, scan_file
from shared.records.layouts import LAYOUTS, RecordType
from shared.records.record import Record
from shared.targets.smarttid.connector import body_value

#: Pieces hostile or careless ERPs produce; a fuzzed file is a random sequence of them.
FRAGMENTS: tuple[bytes, ...] = (
    b"Employee", b"Job", b"Operation", b"employee", b"JOB", b"Jobb", b"", b";", b";;", b";;;;;;;;", b"\r\n", b"\n",
    b"\r", b'"', b'""', b'"a;b"', b'"two\nlines"', b"E1", b"e1", b"J1", b"j1", b"10", b"10,5", b"1.25", b"-3",
    b"2147483648", b"9" * 40, b"1" * 4400, b"01-01-0001", b"21-11-2026", b"2026-02-30", b"0", b"1", b"yes",
    b"Started", b"Template", b"TEMPLATE1", "Søren Ærø".encode(), "Søren Ærø".encode("cp1252"), b"\x81", b"\x9d",
    b"\xc3", b"\xff\xfe", BOM, "😀".encode() * 21, "١٢٣".encode(), b"\x1c", b"\x1b[31m", b"\x7f", b"\t", b" ",
    "\u202e".encode(), b"\xe2\x80\xa8", b"x" * 60, b"=HYPERLINK()", b"+45", b"@", b"\\", b"'",
)


def random_file(rng: random.Random, max_pieces: int = 40) -> bytes:
    pieces = [rng.choice(FRAGMENTS) if rng.random() < 0.9 else rng.randbytes(rng.randint(1, 4))
              for _ in range(rng.randint(1, max_pieces))]
    return b"".join(pieces)


def parse_chunked(data: bytes, chunk: int = 7) -> ParsedFile:
    return parse_file(lambda: (data[i : i + chunk] for i in range(0, len(data), chunk)), fold_codes=True)


def unaccounted(data: bytes, parsed: ParsedFile) -> list[int]:
    """Non-blank physical lines that are neither part of an accepted record nor of a reported error."""
    applied = {line for record in parsed.records for first in record.lines for line in parsed.span(first)}
    reported = {line for error in parsed.errors for line in parsed.span(error.line)}
    return [
        line.number for line in physical_lines([data])
        if line.content.strip(b" \t;") and line.number not in applied | reported
    ]


def problems(data: bytes, chunk: int = 7) -> list[str]:
    """What breaks the promise for ``data`` (an empty list when nothing does)."""
    try:
        parsed = parse_chunked(data, chunk)
    except UnreadableFileError:
        return []  # the whole file is reported (stored in the error container with its reason)
    found = [f"line {n} neither imported nor reported" for n in unaccounted(data, parsed)]
    firsts = [line for record in parsed.records for line in record.lines]
    both = set(firsts) & {error.line for error in parsed.errors}
    found += [f"line {n} both accepted and rejected" for n in sorted(both)]
    if parsed.lines_read != len(set(firsts) | {error.line for error in parsed.errors}):
        found.append("lines_read does not match the records and errors")
    for record in parsed.records:
        layout = LAYOUTS[record.record_type]  # every accepted value must encode into a request body
        json.dumps({name: body_value(layout.field(name), value) for name, value in record.values.items()})
    return found


def run_many(inputs: Iterable[bytes]) -> tuple[int, int, int]:
    """``(inputs tried, unhandled exceptions, inputs with lines neither imported nor reported)``."""
    tried = crashed = lost = 0
    for data in inputs:
        tried += 1
        try:
            if problems(data):
                lost += 1
        except Exception:
            crashed += 1
    return tried, crashed, lost


def in_passes(data: bytes, chunk: int, unchecked: frozenset[RecordType], bitmap: int = 0,
              size: int = 3) -> tuple[ParsedFile, list[Record]]:
    """``data`` read as an import reads it: the scan, then the batches of employees and jobs, then of
    operations (``bitmap``: the scan's ``size_hint``; 1 makes most keys share a bit)."""
    scanned = scan_file(lambda: (data[i : i + chunk] for i in range(0, len(data), chunk)), fold_codes=True,
                        unchecked=unchecked, size_hint=bitmap)
    records = [record for wanted in (MASTERS, OPERATIONS) for batch in scanned.batches(wanted, size=size)
               for record in batch]
    assert scanned.parsed.records == []
    return scanned.parsed, records


def pass_differences(data: bytes, chunk: int, unchecked: frozenset[RecordType], bitmap: int = 0) -> list[str]:
    """How reading ``data`` in passes differs from parsing it whole (an empty list when it does not):
    the same records (values, lines, merged the same way), the same errors and the same facts."""
    try:
        whole = parse_chunked(data, chunk)
    except UnreadableFileError as exc:
        try:
            in_passes(data, chunk, unchecked, bitmap)
        except UnreadableFileError as again:
            return [] if (again.reason, again.action) == (exc.reason, exc.action) else [f"unreadable: {again}"]
        return [f"read in passes, but parse_file: {exc}"]
    parsed, records = in_passes(data, chunk, unchecked, bitmap)
    found: list[str] = []

    def differ(what: str, passes: object, expected: object) -> None:
        if passes != expected:
            found.append(f"{what}: {passes!r} != {expected!r}")

    def shape(records: Iterable[Record]) -> list[tuple[list[int], RecordType, object, object]]:
        return sorted(((r.lines, r.record_type, r.key, list(r.values.items())) for r in records),
                      key=lambda r: r[0])

    differ("records", shape(records), shape(whole.records))
    differ("errors", sorted(parsed.errors, key=lambda e: e.line), whole.errors)
    differ("lines_read", parsed.lines_read, whole.lines_read)
    differ("spans", parsed.spans, whole.spans)
    differ("encoding", parsed.encoding, whole.encoding)
    differ("fallback_lines", parsed.fallback_lines, whole.fallback_lines)
    differ("rejected_keys", parsed.rejected_keys, whole.rejected_keys)
    differ("ignored_positions", parsed.ignored_positions, whole.ignored_positions)
    return found
