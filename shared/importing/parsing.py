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
  (:mod:`shared.importing.values`). Blank lines (only spaces, tabs and ``;``) are ignored; a NUL byte makes
  the whole file unreadable.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from shared.errors import FieldValueError, UnreadableFile
from shared.importing.layouts import LAYOUTS, Layout, RecordType
from shared.importing.values import Value, convert
from shared.platform.safe_text import visible

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
            raise UnreadableFile(
                "the file contains binary data (NUL bytes), so it is not a CSV text file",
                "export the file from the ERP as semicolon-separated text (CSV) and upload it again",
            )
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


class _Feed:
    """Decoded physical lines for the ``csv`` reader, remembering which lines the current record used."""

    def __init__(self, chunks: Iterable[bytes], parsed: ParsedFile) -> None:
        self._lines = physical_lines(chunks)
        self._parsed = parsed
        self.last = 0  # the last physical line handed to the reader
        self.texts: list[str] = []  # the decoded lines of the current record
        self.problems: list[tuple[int, str]] = []  # undecodable lines of the current record
        self._encodings: set[str] = set()

    def start_record(self) -> int:
        self.texts.clear()
        self.problems.clear()
        return self.last + 1

    def __iter__(self) -> Iterator[str]:
        for line in self._lines:
            text, encoding, problem = decode_line(line.content)
            self.last = line.number
            if problem:
                self.problems.append((line.number, problem))
            elif not line.content.isascii():
                self._encodings.add(encoding)
                if encoding == WINDOWS_1252:
                    self._parsed.fallback_lines.append(line.number)
            self.texts.append(text)
            yield text + line.ending.decode("ascii")

    @property
    def encoding(self) -> str:
        if self._encodings == {WINDOWS_1252}:
            return WINDOWS_1252
        return MIXED if len(self._encodings) > 1 else UTF8


def fold_key(key: tuple[Value, ...]) -> tuple[Value, ...]:
    return tuple(value.casefold() if isinstance(value, str) else value for value in key)


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
    keys and ignored positions of the lines read into records go (default ``parsed``)."""
    feed = _Feed(chunks, parsed)
    sink = checked or parsed
    reader = csv.reader(feed, delimiter=";", quotechar='"', strict=True)
    first = True
    first_text = ""  # the first line with data: named when no line has a ";"
    separated = False  # a line with a ";" was read (a line without one is rejected alone)
    while True:
        start = feed.start_record()
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            first = False
            separated = separated or any(";" in text for text in feed.texts)
            parsed.lines_read += 1
            parsed.errors.append(_csv_error(start, feed, str(exc)))
            _remember_span(parsed, start, feed.last)
            continue
        if feed.last == start and not feed.texts[0].strip(BLANK):
            continue  # a blank line: nothing but spaces, tabs and separators (any other character is reported)
        if first:
            first, first_text = False, feed.texts[0]
        separated = separated or len(fields) > 1
        parsed.lines_read += 1
        _remember_span(parsed, start, feed.last)
        if wanted is not None or keys_only:
            layout = _layout_for(fields[0].strip())
            if wanted is not None and (layout is None or layout.record_type not in wanted):
                continue
            if layout is not None and layout.record_type in keys_only:
                keyed = _key_record(start, layout, fields, target)
                if keyed is not None:
                    yield keyed
                continue
        record = _parse_record(start, feed, fields, sink, target)
        if record is not None:
            yield record
    if first:
        raise UnreadableFile(
            "the file is empty (it has no lines with data)",
            "check the ERP export; upload a file with at least one Employee, Job or Operation line",
        )
    if not separated:
        raise _unseparated_file(first_text)
    parsed.encoding = feed.encoding


def _key_record(number: int, layout: Layout, fields: list[str], target: str) -> Record | None:
    """The line's key only, unchecked otherwise (None when a key field is empty or not valid)."""
    values: dict[str, Value] = {}
    for name in layout.key:
        spec = layout.field(name)
        text = fields[spec.position].strip() if spec.position < len(fields) else ""
        if not text:
            return None
        try:
            values[name] = convert(spec, text, target)
        except FieldValueError:
            return None
    return Record(layout.record_type, tuple(values[name] for name in layout.key), values, [number])


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


def _unseparated_file(first_text: str) -> UnreadableFile:
    """No line of the file has a ``;``: the file cannot be read (each line alone would say the same)."""
    looks = (f"the first holds nothing but the control character(s) {_control_names(first_text)}"
             if _only_control(first_text) else f"the first looks separated by {_separator_guess(first_text)}")
    return UnreadableFile(
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


def _parse_record(number: int, feed: _Feed, fields: list[str], parsed: ParsedFile,
                  target: str = "SmartTID") -> Record | None:
    type_text = fields[0].strip()
    layout = _layout_for(type_text)
    record_type = layout.record_type if layout else shown(type_text)
    whole_line = [
        LineError(number, record_type, "", "", problem if line == number else f"line {line}: {problem}",
                  "save the file as UTF-8 (or remove the character) in the ERP, then upload the line again")
        for line, problem in feed.problems
    ]
    whole_line += _swallowed_record(number, feed, record_type)
    if layout is None and len(fields) == 1:  # no ";" on this line: the other lines may well be fine
        parsed.errors.extend([*whole_line, _unseparated_line(number, fields[0])])
        return None
    if layout is None:
        parsed.errors.extend([*whole_line, LineError(
            number, record_type, "record type (position 0)", shown(visible(type_text)),
            "is not a known record type",
            "start the line with Employee, Job or Operation")])
        return None
    values: dict[str, Value] = {}
    errors: list[LineError] = list(whole_line)
    for position, text in enumerate(fields):
        control = _control_character(text)
        if control is not None:
            errors.append(LineError(
                number, layout.record_type, _label(layout, position), shown(visible(text)),
                f"contains the control character {control}", "remove the character in the ERP and upload the "
                "line again"))
    for spec in layout.fields:
        text = fields[spec.position].strip() if spec.position < len(fields) else ""
        if not text:
            if spec.name in layout.key:
                errors.append(
                    LineError(
                        number,
                        layout.record_type,
                        f"{spec.name} (position {spec.position})",
                        "",
                        "is empty, but it identifies the record",
                        f"fill in {spec.name}; every {layout.record_type} line needs it"
                    )
                )
            continue
        try:
            values[spec.name] = convert(spec, text, target)
        except FieldValueError as exc:
            errors.append(LineError(number, layout.record_type, f"{spec.name} (position {spec.position})",
                                    shown(text), exc.reason, exc.action))
    extra = [pos for pos in range(len(layout.fields) + 1, len(fields)) if fields[pos].strip()]
    if extra:
        parsed.ignored_positions.setdefault(layout.record_type, set()).update(extra)
    if errors:
        parsed.errors.extend(errors)
        if all(name in values for name in layout.key):
            parsed.rejected_keys.setdefault(parsed.slot(layout.record_type, tuple(values[n] for n in layout.key)),
                                            number)
        return None
    key = tuple(values[name] for name in layout.key)
    return Record(layout.record_type, key, values, [number])


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


_LAYOUT_OF = {record_type.value.lower(): layout for record_type, layout in LAYOUTS.items()}


def _layout_for(type_text: str) -> Layout | None:
    return _LAYOUT_OF.get(type_text.lower())
