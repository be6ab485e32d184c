"""Parse an incoming file (a stream of bytes) into records and line errors.

Reading, in one streaming pass with constant memory besides the parsed records:

* **Physical lines** end in CRLF, LF or a lone CR (classic Mac files). Line numbers are the
  physical line numbers a text editor shows; a record that spans lines (a quoted field with a line
  break) is reported by its first line.
* **Encoding per line**: each physical line is read as UTF-8 (a BOM at the start is skipped); a
  line that is not valid UTF-8 is read as Windows-1252 and the receipt lists it. A line that is
  neither (bytes 0x81, 0x8D, 0x8F, 0x90, 0x9D are undefined in Windows-1252) is rejected with the
  byte and its column, never imported with a replacement character.
* **CSV**: the decoded lines go through the standard ``csv`` reader (``;``-separated, fields may be
  double-quoted, ``""`` inside quotes is a quote, quoted fields may hold line breaks). A quoting
  error rejects that record; an unterminated quote is one error for the lines it swallowed.
* **Values**: control characters other than tab (and line breaks inside quoted fields) are
  rejected with their position; every value is checked against its parameter's SQL type
  (:mod:`shared.records.values`). Blank lines (only spaces, tabs and ``;``) are ignored; a NUL byte makes
  the whole file unreadable.

How fast: the stream is decoded and split into lines a window (about :data:`WINDOW` bytes) at a
time. A *plain* window (valid UTF-8, no quote) whose lines each start with a record type as the
file spells it (``Operation;``) is read at once by the passes of an import
(:mod:`shared.importing.passes`): the lines of the types a pass does not want are counted without a
step each, a wanted line is checked by :meth:`_Checks.quick` (only its fields that are not empty
are looked at; a line it is not sure of goes to :meth:`_Checks.record`), and the scan hashes each
line's key from its key fields alone (:func:`read_key_hashes`). Every other line — and every line
of :func:`parse_file`, the reference the quick ways are tested against — is read one by one.
"""

from __future__ import annotations

import csv
import difflib
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import compress, repeat
from operator import itemgetter
from typing import Any, cast

from shared.errors import FieldValueError, UnreadableFileError
from shared.platform.safe_text import visible
from shared.records.layouts import LAYOUTS, FieldKind, FieldSpec, Layout, RecordType
from shared.records.record import LineError, Record, fold_key
from shared.records.values import Value, convert

#: The record types a line may start with, as the messages name them.
RECORD_TYPE_NAMES = ("Employee", "Job", "Operation")

UTF8 = "utf-8"
WINDOWS_1252 = "windows-1252"
MIXED = "mixed"
BOM = b"\xef\xbb\xbf"
#: A line made of these characters only is blank (spreadsheets write empty rows as ``;;;;``).
BLANK = " \t;"
#: The longest field we read (characters). The csv module's default limit is 128 Ki characters;
#: the only unbounded parameter (a job's sRemark) never needs more than this.
FIELD_LIMIT = 1024 * 1024

_LINE_END = re.compile(rb"\r\n|\r|\n")
#: Unicode's control characters (category Cc: U+0000-U+001F, U+007F-U+009F) except tab, CR and LF.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_STARTS_RECORD = re.compile(r"^\s*(?:employee|job|operation)\s*;", re.IGNORECASE)

csv.field_size_limit(FIELD_LIMIT)


@dataclass
class ParsedFile:
    encoding: str = UTF8  # utf-8 | windows-1252 | mixed (some lines each)
    records: list[Record] = field(default_factory=list)
    errors: list[LineError] = field(default_factory=list)
    lines_read: int = 0  # non-blank records (a record spanning lines counts once)
    ignored_positions: dict[RecordType, set[int]] = field(default_factory=dict)
    #: records whose key could be read but whose line was rejected (so dependants can say why)
    rejected_keys: dict[tuple[RecordType, tuple[Value, ...]], int] = field(default_factory=dict)
    #: physical lines that were read as Windows-1252
    fallback_lines: list[int] = field(default_factory=list)
    #: first line → last line, for records that span several physical lines
    spans: dict[int, int] = field(default_factory=dict)
    #: codes compare without regard to case (the target's rule): ``a360`` and ``A360`` are one record
    fold_codes: bool = False

    def slot(self, record_type: RecordType, key: tuple[Value, ...]) -> tuple[RecordType, tuple[Value, ...]]:
        """The identity of a record in this file: its type and key, folded when codes ignore case."""
        return record_type, fold_key(key) if self.fold_codes else key

    @property
    def rejected_lines(self) -> set[int]:
        return {error.line for error in self.errors}

    def span(self, line: int) -> range:
        return range(line, self.spans.get(line, line) + 1)


@dataclass(frozen=True)
class PhysicalLine:
    number: int
    content: bytes  # without the line ending (and without the BOM on line 1)
    ending: bytes  # b"\r\n", b"\n", b"\r" or b"" (the last line)
    raw: bytes  # exactly the bytes of the file, line ending (and BOM) included


def physical_lines(chunks: Iterable[bytes]) -> Iterator[PhysicalLine]:
    """Split a byte stream into physical lines (CRLF, LF or lone CR), whatever the chunk sizes.

    Each chunk is scanned once; the unfinished line is carried as a list of pieces, so a long line
    arriving in many small chunks costs linear time.
    """
    carry: list[bytes] = []
    number = 0
    cr_pending = False  # the previous chunk ended in CR: its LF may start this chunk
    for chunk in chunks:
        if b"\x00" in chunk:
            raise _binary_file(b"".join(carry) + chunk if number == 0 else b"")
        start = 0
        if cr_pending and chunk:
            cr_pending = False
            ending = b"\r\n" if chunk.startswith(b"\n") else b"\r"
            start = len(ending) - 1
            number += 1
            yield _line(number, b"".join(carry), ending)
            carry = []
        for match in _LINE_END.finditer(chunk, start):
            carry.append(chunk[start : match.start()])
            start = match.end()
            if match.group() == b"\r" and start == len(chunk):
                cr_pending = True
                break
            number += 1
            yield _line(number, b"".join(carry), match.group())
            carry = []
        if start < len(chunk):
            carry.append(chunk[start:])
    if cr_pending or any(carry):
        yield _line(number + 1, b"".join(carry), b"\r" if cr_pending else b"")


def _line(number: int, content: bytes, ending: bytes) -> PhysicalLine:
    raw = content + ending
    if number == 1:
        content = content.removeprefix(BOM)
    return PhysicalLine(number, content, ending, raw)


def split_lines(chunks: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    """``(line_number, content)`` per physical line, without line endings."""
    for line in physical_lines(chunks):
        yield line.number, line.content


def decode_line(content: bytes) -> tuple[str, str, str | None]:
    """``(text, encoding, problem)``: UTF-8, else Windows-1252; ``problem`` names an undecodable byte."""
    try:
        return content.decode(UTF8), UTF8, None
    except UnicodeDecodeError:
        pass
    try:
        return content.decode("cp1252"), WINDOWS_1252, None
    except UnicodeDecodeError as exc:
        byte = content[exc.start]
        problem = (
            f"byte 0x{byte:02X} at column {exc.start + 1} is neither UTF-8 nor a Windows-1252 character "
            "(the line was saved in another encoding, or is damaged)"
        )
        return content.decode("cp1252", errors="replace"), WINDOWS_1252, problem


#: The decoded text of a stream is split in windows of about this many bytes (whole lines), so a large
#: chunk (a blob download's are 4 MiB) is never held as one string and one list of lines.
WINDOW = 256 * 1024
_LINE_END_TEXT = re.compile(r"(\r\n|\r|\n)")

#: A decoded physical line: ``(number, text, ending, problem)`` (``problem``: an undecodable byte).
DecodedLine = tuple[int, str, str, str | None]


#: What a binary file that is not CSV usually is, by its first bytes.
_SIGNATURES = ((b"PK\x03\x04", "an Excel workbook (.xlsx) or another ZIP archive"),
               (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an Excel 97-2003 workbook (.xls)"),
               (b"%PDF", "a PDF document"))


def _binary_file(head: bytes = b"") -> UnreadableFileError:
    """``head``: the file's first bytes, when the NUL byte is in them (a workbook is named as one)."""
    what = next((name for signature, name in _SIGNATURES if head.startswith(signature)), "")
    if what:
        return UnreadableFileError(
            f"the file is {what}, not semicolon-separated text (CSV)",
            "save it as CSV with ';' between the fields (in Excel: Save As > CSV UTF-8, with ';' as the list "
            "separator) or export the CSV from the ERP directly, then upload it again",
        )
    return UnreadableFileError(
        "the file contains binary data (NUL bytes), so it is not a CSV text file",
        "export the file from the ERP as semicolon-separated text (CSV) and upload it again",
    )


def _complete(data: bytes, start: int, stop: int) -> int:
    """Where the complete lines of ``data[start:stop]`` end: after its last line ending, but before a
    CR at ``stop`` (its LF may follow); ``start`` when no line is complete."""
    last = max(data.rfind(b"\n", start, stop), data.rfind(b"\r", start, stop))
    if last == stop - 1 and data[last] == 13:  # CR
        last = max(data.rfind(b"\n", start, last), data.rfind(b"\r", start, last))
    return last + 1 if last >= start else start


#: A window of decoded lines: ``(number, plain, lines)``: the number of the line before its first, its
#: lines' texts when it is plain (valid UTF-8 as a whole, no quote, no line longer than a field may be;
#: else None), and its lines as :data:`DecodedLine`.
_Window = tuple[int, list[str] | None, Iterable[DecodedLine]]


def _decoded_windows(chunks: Iterable[bytes], parsed: ParsedFile, encodings: set[str]) -> Iterator[_Window]:
    """The physical lines of a byte stream, decoded, window by window: what :func:`physical_lines`
    and :func:`decode_line` give line by line (the BOM skipped, a NUL byte makes the file
    unreadable), the Windows-1252 lines listed in ``parsed.fallback_lines`` and the encodings of
    the non-ASCII lines added to ``encodings``.

    Fast for the usual file: the complete lines of a window of the stream are decoded and split at
    once (a window that is not valid UTF-8 is decoded line by line), and its lines handed out by
    iterators written in C (no Python code runs per line)."""
    number = 0
    carry: list[bytes] = []  # the unfinished line, in pieces (a long line in many chunks costs linear time)
    for chunk in chunks:
        if b"\x00" in chunk:
            raise _binary_file(b"".join(carry) + chunk if number == 0 else b"")
        if b"\n" not in chunk and b"\r" not in chunk and not (carry and carry[-1].endswith(b"\r")):
            if chunk:
                carry.append(chunk)
            continue
        data = b"".join([*carry, chunk]) if carry else chunk
        start = 0
        while True:
            stop = min(len(data), start + WINDOW)
            end = _complete(data, start, stop)
            if end == start:
                if stop == len(data):
                    break
                end = _complete(data, start, len(data))  # a line longer than a window
                if end == start:
                    break
            window, number = _window_lines(data[start:end], number, parsed, encodings)
            yield window
            start = end
        carry = [data[start:]] if start < len(data) else []
    if carry:
        rest = b"".join(carry)
        content, ending = (rest[:-1], "\r") if rest.endswith(b"\r") else (rest, "")
        if number == 0:
            content = content.removeprefix(BOM)
        text, problem = _decode_one(content, number + 1, parsed, encodings)
        yield number, None, ((number + 1, text, ending, problem),)


def _window_lines(window: bytes, number: int, parsed: ParsedFile, encodings: set[str]) -> tuple[_Window, int]:
    """The lines of ``window`` (whole lines, each with its ending), numbered after ``number``, and the
    last line's number."""
    if number == 0:
        window = window.removeprefix(BOM)
    try:
        text = window.decode(UTF8)
    except UnicodeDecodeError:
        decoded: list[DecodedLine] = []
        start, first = 0, number
        for match in _LINE_END.finditer(window):
            number += 1
            line, problem = _decode_one(window[start : match.start()], number, parsed, encodings)
            start = match.end()
            decoded.append((number, line, match.group().decode("ascii"), problem))
        return (first, None, decoded), number
    if not text.isascii():
        encodings.add(UTF8)
    plain = '"' not in text and len(text) <= FIELD_LIMIT
    texts = []
    if "\r" not in text:
        ending = "\n"
    elif "\n" not in text:
        ending = "\r"
    elif len(texts := text.split("\r\n")) - 1 == text.count("\r") == text.count("\n"):
        ending = "\r\n"
    else:  # line endings of more than one kind
        pieces = _LINE_END_TEXT.split(text)
        count = len(pieces) // 2
        texts = pieces[0::2]
        texts.pop()  # the empty rest after the last line ending
        lines = zip(range(number + 1, number + count + 1), texts, pieces[1::2], repeat(None))
        return (number, texts if plain else None, lines), number + count
    texts = texts or text.split(ending)
    texts.pop()  # the empty rest after the last line ending
    count = len(texts)
    lines = zip(range(number + 1, number + count + 1), texts, repeat(ending), repeat(None))
    return (number, texts if plain else None, lines), number + count


def _decode_one(content: bytes, number: int, parsed: ParsedFile, encodings: set[str]) -> tuple[str, str | None]:
    text, encoding, problem = decode_line(content)
    if problem is None and not content.isascii():
        encodings.add(encoding)
        if encoding == WINDOWS_1252:
            parsed.fallback_lines.append(number)
    return text, problem


class _Feed:
    """The lines the ``csv`` reader reads for one record: its first line, handed over (:meth:`start`),
    then as many more of the stream's lines as a quoted field spans — from the current window's
    ``lines``, then from the windows after it (``lines`` is then a later window's); remembers the
    lines it used."""

    def __init__(self, windows: Iterator[_Window]) -> None:
        self._windows = windows
        self.lines: Iterator[DecodedLine] = iter(())
        self._first: str | None = None
        self.last = 0  # the last physical line handed to the reader
        self.texts: list[str] = []  # the decoded lines of the current record
        self.problems: list[tuple[int, str]] = []  # undecodable lines of the current record

    def enter(self, lines: Iterable[DecodedLine]) -> Iterator[DecodedLine]:
        """The lines of a window, to be read one by one (the reader may read on into later windows)."""
        self.lines = iter(lines)
        return self.lines

    def start(self, number: int, text: str, ending: str, problem: str | None) -> None:
        self._first = text + ending
        self.last = number
        self.texts = [text]
        self.problems = [(number, problem)] if problem else []

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        if self._first is not None:
            first, self._first = self._first, None
            return first
        line = next(self.lines, None)
        while line is None:  # the window's last line was read: on into the next (StopIteration: the file's end)
            self.lines = iter(next(self._windows)[2])
            line = next(self.lines, None)
        number, text, ending, problem = line
        self.last = number
        self.texts.append(text)
        if problem:
            self.problems.append((number, problem))
        return text + ending


def encoding_of(encodings: set[str]) -> str:
    """The file's encoding, from the encodings of its non-ASCII lines."""
    if encodings == {WINDOWS_1252}:
        return WINDOWS_1252
    return MIXED if len(encodings) > 1 else UTF8


def parse_file(open_stream: Callable[[], Iterable[bytes]], *, fold_codes: bool = False,
               target: str = "SmartTID") -> ParsedFile:
    """Parse the file in one streaming pass (``open_stream`` is called once), keeping every record.

    Lines with the same key are merged in file order; ``fold_codes`` makes keys that differ only in
    case the same record (the first line's spelling is kept). ``target`` names the target system in
    the value errors ("Tic-Tac allows at most 50"). For files of any size see :func:`scan_file`.
    """
    parsed = ParsedFile(fold_codes=fold_codes)
    by_key: dict[tuple[RecordType, tuple[Value, ...]], Record] = {}
    for record in read_records(open_stream(), parsed, target):
        slot = parsed.slot(record.record_type, record.key)
        if slot in by_key:
            merge(by_key[slot], record)
        else:
            by_key[slot] = record
            parsed.records.append(record)
    return parsed


def merge(existing: Record, later: Record) -> None:
    """A later line with the same key: its values win, the key keeps the first line's spelling."""
    key_names = LAYOUTS[existing.record_type].key
    existing.values.update((k, v) for k, v in later.values.items() if k not in key_names)
    existing.lines.extend(later.lines)


def read_records(chunks: Iterable[bytes], parsed: ParsedFile, target: str = "SmartTID",
                 wanted: frozenset[RecordType] | None = None, *, keys_only: frozenset[RecordType] = frozenset(),
                 checked: ParsedFile | None = None) -> Iterator[Record]:
    """Every valid line as a record of its own (not merged), in file order; line errors, counts and
    the other facts about the file go into ``parsed`` (whose ``records`` stay empty).

    ``wanted``: only lines of these record types are read into records (the others are only split).
    ``keys_only``: lines of these types are not checked; a record with only its key comes for each
    line whose key can be read (a later pass checks them). ``checked``: where the errors, rejected
    keys and ignored positions of the lines read into records go (default ``parsed``).

    A line without a quote (most lines) is one record, split at its semicolons exactly as the
    ``csv`` reader would split it; a line with a quote, an undecodable byte or more characters than
    a field may hold goes through the ``csv`` reader, which reads as many lines as its quoted fields
    span.

    With ``wanted`` (a pass over some record types), a plain window of lines that each start with a
    record type as the file usually spells it (``Operation;``) is read at once: the lines of the
    other types are counted, not looked at one by one, and each wanted line is checked by
    :meth:`_Checks.quick` (what :meth:`_Checks.record` gives, without its per-field steps for the
    usual line). :func:`parse_file` reads every window line by line: the reference the quick ways
    are tested against."""
    return cast(Iterator[Record], _read(chunks, parsed, target, wanted, keys_only, checked, hashes=False))


def read_key_hashes(chunks: Iterable[bytes], parsed: ParsedFile, target: str = "SmartTID", *,
                    keys_only: frozenset[RecordType] = frozenset()) -> Iterator[tuple[int, int]]:
    """``(digest, line)`` for each record :func:`read_records` (``keys_only``) gives, in file order:
    ``digest`` is ``hash(parsed.slot(record.record_type, record.key))``; facts and errors go into
    ``parsed`` as there. In a plain window of lines that each start with a record type as the file
    usually spells it, a keyed line's digest is computed from its key fields alone (no record is
    built; the same values: the same conversions, the same folding), a checked line's from the
    record :meth:`_Checks.quick` gives."""
    return cast(Iterator[tuple[int, int]], _read(chunks, parsed, target, None, keys_only, None, hashes=True))


#: How the file usually spells the start of a line of each record type.
_PREFIXES = tuple(f"{record_type.value};" for record_type in LAYOUTS)


def _read(chunks: Iterable[bytes], parsed: ParsedFile, target: str, wanted: frozenset[RecordType] | None,
          keys_only: frozenset[RecordType], checked: ParsedFile | None,
          hashes: bool) -> Iterator[Record | tuple[int, int]]:
    """:func:`read_records`, or (``hashes``) :func:`read_key_hashes`."""
    encodings: set[str] = set()
    windows = _decoded_windows(chunks, parsed, encodings)
    feed = _Feed(windows)
    reader = csv.reader(feed, delimiter=";", quotechar='"', strict=True)
    checks = _Checks(checked or parsed, target, wanted, keys_only)
    kits, selective = checks.kits, wanted is not None or bool(keys_only)
    unwanted = tuple(f"{name};" for name, kit in kits.items() if not kit.wanted)  # as the file usually spells them
    wanted_prefixes = tuple(f"{name};" for name, kit in kits.items() if kit.wanted)
    # when every line is only keyed, a line without a quote is split only as far as its key
    split_at = max(kit.key_end for kit in kits.values()) if all(kit.keys_only for kit in kits.values()) else -1
    # which plain windows are read at once: in a pass over some types, and when keys are hashed
    at_once = hashes or (wanted is not None and not keys_only)
    first = True
    first_text = ""  # the first line with data: named when no line has a ";"
    separated = False  # a line with a ";" was read (a line without one is rejected alone)
    for before, plain, window in windows:
        if plain is not None and at_once and not first and all(map(str.startswith, plain, repeat(_PREFIXES))):
            # every line starts with a record type's usual spelling: none is blank, each has a ";"
            parsed.lines_read += len(plain)
            separated = True
            yield from (checks.plain_hashes(before, plain, split_at, parsed) if hashes
                        else checks.plain_records(before, plain, wanted_prefixes))
            continue
        lines = feed.enter(window)
        while True:
            for number, text, ending, problem in lines:
                quoted = problem is not None or '"' in text or len(text) > FIELD_LIMIT
                if not quoted:
                    if not first and text.startswith(unwanted):  # a line of a type not wanted is only counted
                        parsed.lines_read += 1
                        separated = True  # it starts with "Type;"
                        continue
                    if not text.strip(BLANK):
                        continue  # a blank line: only spaces, tabs and separators (any other character is reported)
                    if wanted is not None and not first:
                        head, semicolon, _ = text.partition(";")
                        kit = kits.get(head) or checks.kit_of(head)
                        if kit is None or not kit.wanted:
                            parsed.lines_read += 1
                            separated = separated or bool(semicolon)
                            continue
                    fields = text.split(";", split_at)
                    last = number
                else:
                    feed.start(number, text, ending, problem)
                    try:
                        fields = next(reader)
                    except StopIteration:  # never: the reader was handed a line
                        break
                    except csv.Error as exc:
                        first = False
                        separated = separated or ";" in text
                        parsed.lines_read += 1
                        parsed.errors.append(_csv_error(number, feed, str(exc)))
                        _remember_span(parsed, number, feed.last)
                        continue
                    last = feed.last
                    if last == number and not text.strip(BLANK):
                        continue
                if first:
                    first, first_text = False, text
                separated = separated or len(fields) > 1
                parsed.lines_read += 1
                if last > number:
                    parsed.spans[number] = last
                head = fields[0]
                kit = kits.get(head) or checks.kit_of(head)
                if selective:
                    if wanted is not None and (kit is None or not kit.wanted):
                        continue
                    if kit is not None and kit.keys_only:
                        keyed = checks.key(number, kit, fields)
                        if keyed is not None:
                            yield (hash(parsed.slot(keyed.record_type, keyed.key)), number) if hashes else keyed
                        continue
                whole_line: list[LineError] = []
                if quoted:
                    record_type = kit.layout.record_type if kit else shown(head.strip())
                    whole_line = [
                        LineError(number, record_type, "", "", trouble if line == number else f"line {line}: {trouble}",
                                  "save the file as UTF-8 (or remove the character) in the ERP, then upload the line "
                                  "again")
                        for line, trouble in feed.problems
                    ]
                    whole_line += _swallowed_record(number, feed, record_type)
                if kit is None and len(fields) == 1:  # no ";" on this line: the other lines may well be fine
                    checks.sink.errors.extend([*whole_line, _unseparated_line(number, fields[0])])
                    continue
                if kit is None:
                    type_text = head.strip()
                    guess = difflib.get_close_matches(type_text.capitalize(), RECORD_TYPE_NAMES, n=1, cutoff=0.6)
                    checks.sink.errors.extend([*whole_line, LineError(
                        number, shown(type_text), "record type (position 0)", shown(visible(type_text)),
                        f"is not a known record type{f' (did you mean {guess[0]}?)' if guess else ''}",
                        "start the line with Employee, Job or Operation")])
                    continue
                record = checks.record(number, kit, fields, whole_line, ";".join(fields) if quoted else text)
                if record is not None:
                    yield (hash(parsed.slot(record.record_type, record.key)), number) if hashes else record
            if feed.lines is lines:
                break
            lines = feed.lines  # the reader read on into a later window: the rest of that one, line by line
    if first:
        raise UnreadableFileError(
            "the file is empty (it has no lines with data)",
            "check the ERP export; upload a file with at least one Employee, Job or Operation line",
        )
    if not separated:
        raise _unseparated_file(first_text)
    parsed.encoding = encoding_of(encodings)


#: How a field is checked: ``(name, position, text_kind, max_length, converted, spec)``; ``converted``
#: holds the values of this read already converted, by their text (a conversion depends on the text
#: only, so a text seen before is not converted again; values are immutable).
_FieldCheck = tuple[str, int, bool, int | None, dict[str, Value], FieldSpec]
#: Values converted per field at most: a cache, bounded.
CONVERTED_LIMIT = 4096
#: The kinds of field whose values are never texts (so a key folded for case keeps them as they are).
_NEVER_TEXT = frozenset({FieldKind.DATE, FieldKind.FLAG, FieldKind.INTEGER, FieldKind.DECIMAL})
#: The length limit :meth:`_Checks.quick` compares with where a field has none of its own.
_NO_LIMIT = FIELD_LIMIT + 1


class _Converted(dict[str, Value]):
    """The values of one field converted in one read, by their text: ``converted[text]`` is the value
    (:func:`~shared.records.values.convert`, which raises :class:`FieldValueError`), converted once
    and kept while fewer than :data:`CONVERTED_LIMIT` are."""

    __slots__ = ("spec", "target")

    def __init__(self, spec: FieldSpec, target: str) -> None:
        super().__init__()
        self.spec = spec
        self.target = target

    def __missing__(self, text: str) -> Value:
        value = convert(self.spec, text, self.target)
        if len(self) < CONVERTED_LIMIT:
            self[text] = value
        return value


@dataclass
class _Kit:
    """A layout as one read checks it."""

    layout: Layout
    checks: list[_FieldCheck]  # in position order: the field at position p is checks[p - 1]
    key_checks: list[_FieldCheck]
    wanted: bool
    keys_only: bool
    key_of: Callable[[dict[str, Value]], Any]  # the key's value (one field) or values (more)
    key_end: int  # the position after the last key field
    width: int = field(init=False)  # the most fields a line of the layout has (its record type included)
    #: what :meth:`_Checks.quick` reads at once: ``key_end``, ``width``; per field in position order its name,
    #: its length limit when it is text (else :data:`_NO_LIMIT`), and None when it is text (its own value),
    #: else its converted values; ``key_of``, whether the key is one field, the record type
    quick: tuple[int, int, tuple[str, ...], tuple[int, ...], tuple[_Converted | None, ...],
                 Callable[[dict[str, Value]], Any], bool, RecordType] = field(init=False)
    # the usual key, read at once by the scan: a text at position 1 (code_limit: its length limit, 0 when the key
    # is not usual), then (``then``) a value at position 2 that is never a text, by its text
    record_type: RecordType = field(init=False)
    code_limit: int = 0
    then: _Converted | None = None

    def __post_init__(self) -> None:
        self.record_type = self.layout.record_type
        self.width = len(self.checks) + 1
        self.quick = (self.key_end, self.width, tuple(check[0] for check in self.checks),
                      tuple((check[3] or _NO_LIMIT) if check[2] else _NO_LIMIT for check in self.checks),
                      tuple(None if check[2] else cast(_Converted, check[4]) for check in self.checks),
                      self.key_of, len(self.key_checks) == 1, self.record_type)
        first, *rest = self.key_checks
        if first[1] == 1 and first[2] and first[3] and (
                not rest or (len(rest) == 1 and rest[0][1] == 2 and rest[0][5].kind in _NEVER_TEXT)):
            self.code_limit = first[3]
            self.then = cast(_Converted, rest[0][4]) if rest else None


class _Checks:
    """The checks of one read (:func:`read_records`): values converted and checked, errors into ``sink``."""

    def __init__(self, sink: ParsedFile, target: str, wanted: frozenset[RecordType] | None,
                 keys_only: frozenset[RecordType]) -> None:
        self.sink = sink
        self.target = target
        self.kits: dict[str, _Kit] = {}
        for record_type, layout in LAYOUTS.items():
            checks: list[_FieldCheck] = [
                (spec.name, spec.position, spec.kind is FieldKind.TEXT, spec.max_length, _Converted(spec, target),
                 spec)
                for spec in layout.fields]
            assert [check[1] for check in checks] == list(range(1, len(checks) + 1))
            key_checks = [checks[layout.field(name).position - 1] for name in layout.key]
            self.kits[record_type.value] = _Kit(layout, checks, key_checks, wanted is None or record_type in wanted,
                                                record_type in keys_only, itemgetter(*layout.key),
                                                max(check[1] for check in key_checks) + 1)
        self._folded = {name.lower(): kit for name, kit in self.kits.items()}
        #: the scan's way with the usual key (:meth:`plain_hashes`), by the line's first field
        self._keying = {name: (kit, kit.code_limit if kit.keys_only else 0, kit.key_end, kit.then, kit.record_type)
                        for name, kit in self.kits.items()}

    def kit_of(self, head: str) -> _Kit | None:
        """The layout of a line whose first field is ``head`` (its case and surrounding spaces ignored)."""
        return self._folded.get(head.strip().lower())

    def convert(self, check: _FieldCheck, text: str) -> Value:
        """``text`` (stripped, not empty) as the field's value; raises :class:`FieldValueError`."""
        _, _, text_kind, max_length, converted, spec = check
        if text_kind:
            if (max_length is None or len(text) <= max_length) and (text.isascii() or max(text) <= "\uffff"):
                return text  # as convert() returns it: within its length (no character counts two)
        else:
            value = converted.get(text)
            if value is not None:
                return value
        value = convert(spec, text, self.target)
        if not text_kind and len(converted) < CONVERTED_LIMIT:
            converted[text] = value
        return value

    def key(self, number: int, kit: _Kit, fields: list[str]) -> Record | None:
        """The line's key only, unchecked otherwise (None when a key field is empty or not valid)."""
        values = self._key_values(kit, fields)
        return None if values is None else Record(kit.layout.record_type, tuple(values.values()), values, [number])

    def key_hash(self, kit: _Kit, fields: list[str], fold: bool) -> int | None:
        """``hash(slot)`` of the record :meth:`key` gives for the line (``fold``: as
        :meth:`ParsedFile.slot` folds codes), without building it; None when it gives none."""
        values = self._key_values(kit, fields)
        if values is None:
            return None
        key = tuple(values.values())
        return hash((kit.layout.record_type, fold_key(key) if fold else key))

    def _key_values(self, kit: _Kit, fields: list[str]) -> dict[str, Value] | None:
        """The values of the line's key fields (None when one is empty or not valid)."""
        values: dict[str, Value] = {}
        for check in kit.key_checks:
            text = fields[check[1]].strip() if check[1] < len(fields) else ""
            if not text:
                return None
            if check[2] and (check[3] is None or len(text) <= check[3]) and text.isascii():
                values[check[0]] = text
            elif text in check[4]:
                values[check[0]] = check[4][text]
            else:
                try:
                    values[check[0]] = self.convert(check, text)
                except FieldValueError:
                    return None
        return values

    def plain_records(self, before: int, plain: list[str], wanted: tuple[str, ...]) -> Iterator[Record]:
        """The records of a plain window's lines (``plain``: their texts, numbered after ``before``) whose
        record types are ``wanted`` (as the file usually spells them, ``"Job;"``); every line starts with
        a record type so spelled."""
        kits = self.kits
        for number, text in compress(enumerate(plain, before + 1), map(str.startswith, plain, repeat(wanted))):
            fields = text.split(";")
            record = self.quick(number, kits[fields[0]], fields, text)
            if record is not None:
                yield record

    def plain_hashes(self, before: int, plain: list[str], split_at: int,
                     parsed: ParsedFile) -> Iterator[tuple[int, int]]:
        """``(hash(slot), line)`` per record of a plain window's lines (as :meth:`plain_records`), the usual
        key hashed from its key fields alone: an ASCII code within its length, then a value converted
        before (any other key as :meth:`key` reads it); ``split_at``: how far a line is split; the slot
        is ``parsed``'s (its codes folded when it folds them)."""
        keying, fold = self._keying, parsed.fold_codes
        for number, text in enumerate(plain, before + 1):
            fields = text.split(";", split_at)
            usual, code_limit, key_end, then, type_of = keying[fields[0]]
            if code_limit and len(fields) >= key_end:
                code = fields[1].strip()
                if code and len(code) <= code_limit and code.isascii():
                    if fold:
                        code = code.casefold()
                    if then is None:
                        yield hash((type_of, (code,))), number
                        continue
                    value = then.get(fields[2].strip())
                    if value is not None:
                        yield hash((type_of, (code, value))), number
                        continue
            if usual.keys_only:
                digest = self.key_hash(usual, fields, fold)
                if digest is not None:
                    yield digest, number
                continue
            record = self.quick(number, usual, fields, text)
            if record is not None:
                yield hash(parsed.slot(record.record_type, record.key)), number

    def quick(self, number: int, kit: _Kit, fields: list[str], line: str) -> Record | None:
        """What :meth:`record` gives for a line without a quote or an undecodable byte (``line``;
        ``fields``: its fields), in fewer steps for the usual line — printable, no character that
        counts two, within the layout, every text within its length, every value valid, the key
        given: only its fields that are not empty are looked at. Any other line is left to
        :meth:`record`."""
        key_end, width, names, limits, converters, key_of, one_field, record_type = kit.quick
        if key_end <= len(fields) <= width and line.isprintable():
            if not line.isascii() and max(line) > "\uffff":  # a character that counts two
                return self.record(number, kit, fields, [], line)
            # printable: " " is its only white space, so a field has some to strip only next to a ";" or at the end
            texts = fields[1:] if " ;" not in line and "; " not in line and line[-1] != " " else [
                *map(str.strip, fields[1:])]
            values: dict[str, Value] = {}
            try:
                for name, limit, converted, text in compress(zip(names, limits, converters, texts, strict=False),
                                                             texts):
                    if converted is None:  # a text: its own value
                        if len(text) > limit:
                            break
                        values[name] = text
                    else:
                        values[name] = converted[text]
                else:
                    key = key_of(values)
                    return Record(record_type, (key,) if one_field else key, values, [number])
            except (FieldValueError, KeyError):  # a value not valid, a key field empty: record() says so
                pass
        return self.record(number, kit, fields, [], line)

    def record(self, number: int, kit: _Kit, fields: list[str], whole_line: list[LineError],
               line: str) -> Record | None:
        """The line checked: its record, or None and its errors in ``sink`` (``line``: the fields joined)."""
        layout = kit.layout
        errors = whole_line
        if not line.isprintable() and _CONTROL.search(line):  # printable: no control character (quick)
            for position, text in enumerate(fields):
                control = _control_character(text)
                if control is not None:
                    errors.append(LineError(
                        number, layout.record_type, _label(layout, position), shown(visible(text)),
                        f"contains the control character {control}", "remove the character in the ERP and upload "
                        "the line again"))
        values: dict[str, Value] = {}
        count = len(fields)
        key_names = layout.key
        for check, raw in zip(kit.checks, fields[1:], strict=False):  # a field beyond the layout is not checked
            text = raw.strip()
            if not text:
                if check[0] in key_names:
                    errors.append(_empty_key(number, layout, check[5]))
                continue
            # the usual values without a call: a text within its length (ASCII), a value converted before
            if check[2]:
                if (check[3] is None or len(text) <= check[3]) and text.isascii():
                    values[check[0]] = text
                    continue
            elif text in check[4]:
                values[check[0]] = check[4][text]
                continue
            try:
                values[check[0]] = self.convert(check, text)
            except FieldValueError as exc:
                errors.append(LineError(number, layout.record_type, f"{check[0]} (position {check[1]})",
                                        shown(text), exc.reason, exc.action))
        if count <= kit.key_end:  # a key field beyond the line's last
            errors += [_empty_key(number, layout, check[5]) for check in kit.key_checks if check[1] >= count]
        if count > len(kit.checks) + 1:
            extra = [pos for pos in range(len(kit.checks) + 1, count) if fields[pos].strip()]
            if extra:
                self.sink.ignored_positions.setdefault(layout.record_type, set()).update(extra)
        if errors:
            sink = self.sink
            sink.errors.extend(errors)
            if all(name in values for name in layout.key):
                sink.rejected_keys.setdefault(sink.slot(layout.record_type, tuple(values[n] for n in layout.key)),
                                              number)
            return None
        key = kit.key_of(values)
        return Record(layout.record_type, key if len(layout.key) > 1 else (key,), values, [number])


def _empty_key(number: int, layout: Layout, spec: FieldSpec) -> LineError:
    return LineError(number, layout.record_type, f"{spec.name} (position {spec.position})", "",
                     "is empty, but it identifies the record", f"fill in {spec.name}; every {layout.record_type} "
                     "line needs it")


def _remember_span(parsed: ParsedFile, start: int, last: int) -> None:
    if last > start:
        parsed.spans[start] = last


def _csv_error(start: int, feed: _Feed, message: str) -> LineError:
    record_type = shown(feed.texts[0].split(";", 1)[0].strip()) if feed.texts else ""
    if message == "unexpected end of data":
        reason = (
            f"a quoted field starts here and its closing quote (\") is missing, so lines {start} to {feed.last} "
            "(the end of the file) were not imported"
            if feed.last > start else "a quoted field starts here and its closing quote (\") is missing"
        )
        action = 'close the quoted field with " (write "" for a quote inside it), then upload the lines again'
    elif message.startswith("field larger than field limit"):
        reason = f"a field is longer than {FIELD_LIMIT:,} characters"
        action = "check the ERP export; a field this long is not a value TimeBridge can import"
    else:
        reason = (
            'a quote (") inside a quoted field must be doubled (""), and a quoted field must end right before '
            "the next ; or the end of the line"
        )
        action = 'write "" for a quote inside a quoted field, or leave the field unquoted'
    return LineError(start, record_type, "", "", reason, action)


def _separator_guess(text: str) -> str:
    return "commas" if "," in text else "tabs" if "\t" in text else "no separator we recognise"


def _unseparated_file(first_text: str) -> UnreadableFileError:
    """No line of the file has a ``;``: the file cannot be read (each line alone would say the same)."""
    looks = (f"the first holds nothing but the control character(s) {_control_names(first_text)}"
             if _only_control(first_text) else f"the first looks separated by {_separator_guess(first_text)}")
    if first_text.lstrip().startswith(("{", "[")):
        return UnreadableFileError("the file looks like JSON, not semicolon-separated text (CSV)",
                              "export the file from the ERP as CSV with ';' between the fields and upload it again")
    return UnreadableFileError(
        f"no line has semicolons ({looks}), so the file is not semicolon-separated",
        "export the file with ';' as the field separator and upload it again",
    )


def _unseparated_line(number: int, text: str) -> LineError:
    """A line without ``;`` (rejected alone); a line of nothing but control characters names them."""
    if _only_control(text):
        return LineError(number, "", "", "",
                         f"the line holds nothing but the control character(s) {_control_names(text)}",
                         "remove the line (or the character) in the ERP, then upload the file again")
    reason = f"the line has no semicolons (it looks separated by {_separator_guess(text)})"
    if (control := _control_character(text)) is not None:
        reason += f" and contains the control character {control.replace(' of the field', ' of the line')}"
    return LineError(number, "", "", "", reason,
                     "write the line with ';' between the fields (as the file's other lines), then upload it again")


def _control_names(text: str) -> str:
    """``"U+001C, U+0007"``: the control characters in ``text``, each once."""
    return ", ".join(dict.fromkeys(f"U+{ord(char):04X}" for char in text if _CONTROL.match(char)))


def _only_control(text: str) -> bool:
    """True when ``text`` holds a control character and nothing else besides spaces and tabs."""
    rest = text.strip(BLANK)
    return bool(rest) and all(_CONTROL.match(char) for char in rest)



def _label(layout: Layout, position: int) -> str:
    if position == 0:
        return "record type (position 0)"
    if position <= len(layout.fields):
        return f"{layout.fields[position - 1].name} (position {position})"
    return f"position {position}"


def _swallowed_record(number: int, feed: _Feed, record_type: str) -> list[LineError]:
    """A quoted field whose closing quote is missing swallows the lines after it until the next quote:
    when a swallowed line starts like a record of its own, the record is rejected instead."""
    for offset, text in enumerate(feed.texts[1:], start=1):
        if _STARTS_RECORD.match(text):
            return [LineError(
                number, record_type, "", "",
                f"a quoted field on this line is not closed before line {number + offset}, which starts a new "
                f"record (lines {number} to {feed.last} were read as one record)",
                'close the quoted field with " (write "" for a quote inside it), then upload the lines again'
            )]
    return []


def _control_character(text: str) -> str | None:
    """``"U+001C at character 5"`` for the first control character (tab and line breaks allowed)."""
    found = _CONTROL.search(text)
    if found is None:
        return None
    return f"U+{ord(found.group()):04X} at character {found.start() + 1} of the field"


def shown(text: str, limit: int = 120) -> str:
    """A value as a report shows it: long values are cut, with their length."""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} characters)"
