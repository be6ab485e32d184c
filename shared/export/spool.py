"""The ledger file built on disk, so an export run's memory does not grow with its entries.

Each entry is rendered to its line the moment it is read (``ledger_format.render_line``) and
appended to a temporary file of its kind; what stays in memory per entry is its id, where its
line lies and its employee — 32 bytes in typed arrays, instead of the whole API row.
:meth:`LedgerSpool.write` then copies the lines of the entries to export into one file in the
order of :func:`shared.export.ledger_format.render` (time-ledger lines, then job-ledger lines,
each by id) and computes its size and MD5 on the way. The result is byte for byte what ``render``
gives for the same entries.
"""

from __future__ import annotations

import base64
import hashlib
import sys
import tempfile
import zlib
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import IO, Any, NamedTuple

from shared.export.ledger_format import (
    JOB_LEDGER_COLUMNS,
    JOB_LEDGER_RECORD,
    TIME_LEDGER_COLUMNS,
    TIME_LEDGER_RECORD,
    LedgerFile,
    encode_line,
    render_line,
)
from shared.export.ledger_table import EntryKind, SortedIds
from shared.platform.config import ExportEncoding

BOM = b"\xef\xbb\xbf"
COPY_CHUNK = 1024 * 1024
_RECORDS = {EntryKind.TIME: (TIME_LEDGER_RECORD, TIME_LEDGER_COLUMNS),
            EntryKind.JOB: (JOB_LEDGER_RECORD, JOB_LEDGER_COLUMNS)}


class PreparedLine(NamedTuple):
    """One entry's rendered line and what the spool keeps of it."""

    kind: EntryKind
    entry_id: int
    employee: str
    data: bytes
    notes: tuple[str, ...]


class _Lines:
    """The rendered lines of one kind: a temporary file and, per line, id, offset, length, employee."""

    def __init__(self) -> None:
        self.file: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        self.ids = array("q")
        self.offsets = array("q")
        self.lengths = array("l")
        self.employees = array("l")
        self.size = 0

    def add(self, entry_id: int, data: bytes, employee: int) -> None:
        self.file.write(data)
        self.ids.append(entry_id)
        self.offsets.append(self.size)
        self.lengths.append(len(data))
        self.employees.append(employee)
        self.size += len(data)

    def order(self) -> Iterator[int]:
        """Positions by id; of several lines with one id (the same entry read twice) the first."""
        positions = array("l", range(len(self.ids)))
        if any(a > b for a, b in pairwise(self.ids)):  # read out of order (several employees)
            positions = array("l", sorted(positions, key=self.ids.__getitem__))
        last = None
        for position in positions:
            if self.ids[position] != last:
                last = self.ids[position]
                yield position

    def close(self) -> None:
        self.file.close()


@dataclass
class SpooledFile:
    """The written ledger file (a temporary file, rewound) and what the manifest keeps of it."""

    file: IO[bytes]
    size: int
    md5: str
    time_ids: Sequence[int]
    job_ids: Sequence[int]
    notes: list[str] = field(default_factory=list)
    #: employee code → the job-ledger ids of the file that are the employee's
    job_ids_by_employee: dict[str, Sequence[int]] = field(default_factory=dict)
    #: employee code → the highest time-ledger id of the file that is the employee's
    time_marks: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, rendered: LedgerFile) -> SpooledFile:
        """A file rendered in memory (``ledger_format.render``), as a spooled file."""
        file: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        file.write(rendered.content)
        file.seek(0)
        return cls(file, len(rendered.content), hashlib.md5(rendered.content).hexdigest(), rendered.time_ids,
                   rendered.job_ids, list(rendered.notes))

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> SpooledFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LedgerSpool:
    """Collects ledger entries as rendered lines on disk (see the module docstring)."""

    def __init__(self, *, encoding: ExportEncoding, decimal_separator: str) -> None:
        self.encoding = encoding
        self.decimal_separator = decimal_separator
        self._lines = {kind: _Lines() for kind in EntryKind}
        self._codes: list[str] = []
        self._code_index: dict[str, int] = {}
        #: notes of single entries (odd values, replaced characters), kept for the entries written
        self._notes: dict[tuple[EntryKind, int], list[str]] = {}

    def add(self, kind: EntryKind, row: dict[str, Any]) -> None:
        self.append(self.prepare(kind, row))

    def prepare(self, kind: EntryKind, row: dict[str, Any]) -> PreparedLine:
        """The entry's line, rendered (pure: safe in any thread, e.g. as rows arrive)."""
        record, columns = _RECORDS[kind]
        entry_id = int(row["ID"])
        notes: list[str] = []
        line = render_line(record, columns, row, self.decimal_separator, notes, encoding=self.encoding)
        data = encode_line(line, self.encoding, f"{record} {entry_id}", notes)
        return PreparedLine(kind, entry_id, str(row.get("EmployeeCode") or ""), data, tuple(notes))

    def append(self, line: PreparedLine) -> None:
        if line.notes:
            self._notes[(line.kind, line.entry_id)] = list(line.notes)
        index = self._code_index.setdefault(line.employee, len(self._codes))
        if index == len(self._codes):
            self._codes.append(line.employee)
        self._lines[line.kind].add(line.entry_id, line.data, index)

    def ids(self, kind: EntryKind) -> SortedIds:
        """Every id read of ``kind`` (to look up in the export ledger)."""
        return SortedIds(self._lines[kind].ids)

    def write(self, leave_out: dict[EntryKind, SortedIds | set[int]]) -> SpooledFile:
        """The file of every entry read except those in ``leave_out`` (already exported)."""
        out: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - handed over in the SpooledFile
        digest = hashlib.md5()
        size = 0

        def emit(data: bytes) -> None:
            nonlocal size
            out.write(data)
            digest.update(data)
            size += len(data)

        if self.encoding is ExportEncoding.UTF8_BOM:
            emit(BOM)
        written: dict[EntryKind, array[int]] = {}
        notes: list[str] = []
        by_employee: dict[str, array[int]] = {}
        marks: dict[str, int] = {}
        for kind in (EntryKind.TIME, EntryKind.JOB):
            lines, skip = self._lines[kind], leave_out.get(kind, set())
            lines.file.flush()
            ids = array("q")
            for position in lines.order():
                entry_id = lines.ids[position]
                if entry_id in skip:
                    continue
                lines.file.seek(lines.offsets[position])
                emit(lines.file.read(lines.lengths[position]))
                ids.append(entry_id)
                notes += self._notes.get((kind, entry_id), ())
                code = self._codes[lines.employees[position]]
                if kind is EntryKind.JOB:
                    by_employee.setdefault(code, array("q")).append(entry_id)
                elif code:
                    marks[code] = max(marks.get(code, entry_id), entry_id)
            written[kind] = ids
        out.flush()
        out.seek(0)
        return SpooledFile(out, size, digest.hexdigest(), written[EntryKind.TIME], written[EntryKind.JOB], notes,
                           {code: ids for code, ids in by_employee.items() if code}, marks)

    def close(self) -> None:
        for lines in self._lines.values():
            lines.close()

    def __enter__(self) -> LedgerSpool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def md5_of(stream: IO[bytes]) -> tuple[int, str]:
    """Size and MD5 of ``stream`` from its current position to its end (read in chunks)."""
    digest = hashlib.md5()
    size = 0
    while chunk := stream.read(COPY_CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()


#: The prefix of packed ids (zlib-compressed 8-byte little-endian integers, base64).
PACKED = "z:"


def packed_ids(ids: Sequence[int]) -> str:
    """Ids as text without a Python object per id: 8-byte little-endian integers, compressed
    (consecutive ids, the usual case, shrink to almost nothing), in base64."""
    packed = ids if isinstance(ids, array) and ids.typecode == "q" else array("q", ids)
    if sys.byteorder != "little":  # pragma: no cover - Azure's hosts are little-endian
        packed = array("q", packed)
        packed.byteswap()
    return PACKED + base64.b64encode(zlib.compress(packed.tobytes())).decode("ascii")


def unpacked_ids(value: str | Iterable[int]) -> array[int]:
    """The ids of :func:`packed_ids` (also a plain list of ids, as manifests of earlier versions hold)."""
    if not isinstance(value, str):
        return array("q", (int(entry_id) for entry_id in value))
    if not value.startswith(PACKED):
        raise ValueError("not a packed id list")
    ids = array("q", zlib.decompress(base64.b64decode(value[len(PACKED):])))
    if sys.byteorder != "little":  # pragma: no cover
        ids.byteswap()
    return ids
