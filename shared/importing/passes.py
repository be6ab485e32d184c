"""A file of any size, read in passes: memory does not grow with the number of lines.

The file lives in blob storage and can be read again, so instead of holding every record it is
streamed more than once:

1. **scan** (:func:`scan_file`): every line is read (and keyed; the intake leaves every check to
   the batches, so each line is checked once; the usual line's key is hashed from its key fields
   alone, without a record: :func:`~shared.importing.parsing.read_key_hashes`); the facts about
   the file (lines read, encoding, spans) are kept, and of each record one bit of a bitmap of key
   hashes — to find the keys that occur on more than one line;
2. **batches** (:meth:`ScannedFile.batches`): the file is read again for some record types
   (employees and jobs first, operations second), and the records come in batches of a bounded
   size, in file order (the lines of the other types are counted a window at a time, not one by
   one); the line errors and rejected keys of the lines the scan did not check join the scan's
   facts. A key that occurs on several lines is merged in file order, as
   :func:`shared.importing.parsing.parse_file` does, and comes once: at its last line (at the end of
   the pass when its last line is rejected).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass

from shared.errors import UnreadableFileError
from shared.importing.parsing import ParsedFile, merge, parse_file, read_key_hashes, read_records
from shared.platform.memory import keep_large_blocks_apart
from shared.records.layouts import RecordType
from shared.records.record import Record, fold_key

#: Records per batch: enough for the writes of one batch to keep every worker busy (at most 32), small
#: enough that a batch's records, plans and outcomes — and the one read ahead — stay small. Measured
#: (bench/memory_table.py, total peaks): 2,000 → 500 took a 1,000,000-line first import at its 100,000th
#: write from 86.3 to 79.9 MiB and a 100,000-line re-import from 86.2 to 82.3 MiB, no slower; 200 gained
#: nothing more.
BATCH_SIZE = 500

MASTERS = frozenset({RecordType.EMPLOYEE, RecordType.JOB})
OPERATIONS = frozenset({RecordType.OPERATION})


@dataclass
class ScannedFile:
    """What the scan learned (``parsed``: errors and facts, no records) and how to read the records."""

    parsed: ParsedFile
    open_stream: Callable[[], Iterable[bytes]]
    target: str
    #: hash of (type, key) → the last line of that key, for the keys that may occur on more than one line
    duplicates: dict[int, int]
    #: record types whose lines the scan did not check: their errors come with their batches
    unchecked: frozenset[RecordType] = frozenset()
    #: bytes of the scan's bitmap of key hashes (released after the scan; for the benchmark)
    bitmap_bytes: int = 0

    def batches(self, wanted: frozenset[RecordType], *, size: int | None = None,
                group: Callable[[Record], Hashable] | None = None) -> Iterator[list[Record]]:
        """The records of the ``wanted`` types in batches of about ``size``, in file order; ``group``:
        a batch is only cut between records of different groups (an operation's job), so one job's
        operations come in one batch when they stand together in the file."""
        size = size or BATCH_SIZE
        scratch = ParsedFile(fold_codes=self.parsed.fold_codes)  # the facts about the file are the scan's
        # the lines the scan did not check are checked now: their errors go with the scan's
        checked = self.parsed if wanted & self.unchecked else scratch
        waiting: dict[int, dict[tuple[RecordType, tuple[object, ...]], Record]] = {}
        batch: list[Record] = []
        noted = self.duplicates.get
        for record in read_records(self.open_stream(), scratch, self.target, wanted, checked=checked):
            slot = scratch.slot(record.record_type, record.key)
            digest = hash(slot)
            last = noted(digest)
            if last is None:  # the usual record: a key on one line only
                if len(batch) >= size and (group is None or group(record) != group(batch[-1])):
                    yield batch
                    batch = []
                batch.append(record)
                continue
            same = waiting.setdefault(digest, {})
            if slot in same:
                merge(same[slot], record)
            else:
                same[slot] = record
            if record.line != last:
                continue
            for one in list(waiting.pop(digest).values()):
                if len(batch) >= size and (group is None or group(one) != group(batch[-1])):
                    yield batch
                    batch = []
                batch.append(one)
        for same in waiting.values():  # keys whose last line was rejected here (not by the unchecking scan)
            batch.extend(same.values())
        if batch:
            yield batch


    def for_import(self, wanted: frozenset[RecordType]) -> Iterator[list[Record]]:
        """The batches an import takes: operations are cut only between jobs."""
        fold = self.parsed.fold_codes
        return read_ahead(self.batches(wanted, group=None if wanted != OPERATIONS else (
            lambda record: fold_key(record.key[:1]) if fold else record.key[:1])))


def read_ahead(batches: Iterable[list[Record]]) -> Iterator[list[Record]]:
    """``batches``, with the next one read (parsed) in a thread while the current one is imported:
    the file's parsing overlaps the target's calls. At most one batch is read ahead; an error
    while reading comes out where that batch would have."""
    ahead: queue.Queue[tuple[list[Record] | None, BaseException | None]] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def hand_over(item: tuple[list[Record] | None, BaseException | None]) -> bool:
        while not stop.is_set():
            try:
                ahead.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False  # the consumer stopped early

    def produce() -> None:
        try:
            for batch in batches:
                if not hand_over((batch, None)):
                    return
            hand_over((None, None))
        except BaseException as exc:  # handed to the consumer, which raises it
            hand_over((None, exc))

    reader = threading.Thread(target=produce, name="import-read-ahead", daemon=True)
    reader.start()
    try:
        while True:
            batch, error = ahead.get()
            if error is not None:
                raise error
            if batch is None:
                return
            yield batch
    finally:
        stop.set()
        reader.join()


def scan_file(open_stream: Callable[[], Iterable[bytes]], *, fold_codes: bool = False,
              target: str = "SmartTID", unchecked: frozenset[RecordType] = frozenset(),
              size_hint: int = 0) -> ScannedFile:
    """Read the whole file once, keeping its errors and facts and one small key per record.

    ``unchecked``: record types whose lines are only split and keyed now and checked when their
    batches are read (the operations, most of a file: each line is checked once, not twice); their
    errors, rejected keys and ignored positions join ``parsed`` as those batches are read.

    The keys that may occur more than once are found with one bit per key hash (a bitmap of about
    one bit per byte of the file, ``size_hint``): a key whose bit is already set is noted with its
    line. A key noted although it occurs once (its bit was set by another key) only waits until its
    own line, so the bitmap saves memory without changing the outcome."""
    keep_large_blocks_apart()  # the bitmap, once freed, leaves glibc's thresholds as they were
    parsed = ParsedFile(fold_codes=fold_codes)
    bits = 1 << max(6, (size_hint - 1).bit_length()) if size_hint > 0 else 1 << 16
    seen = bytearray(bits // 8)
    mask = bits - 1
    duplicates: dict[int, int] = {}
    for digest, line in read_key_hashes(open_stream(), parsed, target, keys_only=unchecked):
        bit = digest & mask
        if seen[bit >> 3] & (1 << (bit & 7)):
            duplicates[digest] = line
        else:
            seen[bit >> 3] |= 1 << (bit & 7)
    return ScannedFile(parsed, open_stream, target, duplicates, unchecked, len(seen))


#: How an import reads a file's records: the batches of the given record types, in file order.
Batches = Callable[[frozenset[RecordType]], Iterable[list[Record]]]


def in_memory(parsed: ParsedFile) -> Batches:
    """The batches of a file parsed whole (:func:`parse_file`): one batch per pass."""

    def batches(wanted: frozenset[RecordType]) -> Iterator[list[Record]]:
        records = [record for record in parsed.records if record.record_type in wanted]
        if records:
            yield records

    return batches


#: The largest file read whole (a target whose job create carries the job's operations, Tic-Tac: the
#: plan needs every operation of a new job before it writes the job). Measured: parsing a file whole
#: peaks at about 30 times its size (3.5 MB → 85 MiB, 11.8 MB → 350 MiB), so 8 MiB (about 140,000
#: lines) stays near 250 MiB; the largest realistic Tic-Tac company (2,000 users, 2,000 projects with
#: 10 activities) is about 1.5 MB, and a file beyond the limit would take Tic-Tac's 500 calls a day
#: more than 200 days to apply.
WHOLE_FILE_LIMIT = 8 * 1024 * 1024


#: Why a file is read whole, as the refusal of a larger one says it.
FOR_INLINE_CHILDREN = "a project is created with its activities in one call"


def read_for_import(stream: Callable[[], Iterable[bytes]], *, fold: bool, target: str, size: int = 0,
                    whole: bool = False, why_whole: str = FOR_INLINE_CHILDREN) -> tuple[ParsedFile, Batches]:
    """The file as the import, the dry run and the CLI read it: scanned once (each line only keyed),
    then its records in batches, each line checked as its batch is read, so memory does not grow with
    the file. ``whole``: parsed whole, for a target whose job create carries the job's operations —
    then at most :data:`WHOLE_FILE_LIMIT` bytes, else :class:`UnreadableFileError` (the file is refused
    before anything is written; ``why_whole`` says why it is read whole)."""
    if not whole:
        scanned = scan_file(stream, fold_codes=fold, target=target, unchecked=MASTERS | OPERATIONS,
                            size_hint=size)
        return scanned.parsed, scanned.for_import

    def limited() -> Iterator[bytes]:
        read = 0
        for chunk in stream():
            read += len(chunk)
            if read > WHOLE_FILE_LIMIT:
                raise _too_large_to_read_whole(target, max(read, size), why_whole)
            yield chunk

    if size > WHOLE_FILE_LIMIT:
        raise _too_large_to_read_whole(target, size, why_whole)
    parsed = parse_file(limited, fold_codes=fold, target=target)
    return parsed, in_memory(parsed)


def _too_large_to_read_whole(target: str, size: int, why: str) -> UnreadableFileError:
    return UnreadableFileError(
        f"the file is {size:,} bytes or more; here TimeBridge reads a file whole ({why}), and at most "
        f"{WHOLE_FILE_LIMIT:,} bytes (about {WHOLE_FILE_LIMIT // 60:,} lines)",
        f"split the file into parts of at most {WHOLE_FILE_LIMIT:,} bytes, or send only the records that changed",
    )
