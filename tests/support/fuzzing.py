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
from shared.records.layouts import LAYOUTS
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
