"""The target's stored records of one type, as the import plan compares against them, held compactly.

A re-import reads every stored employee and job once and keeps them while it plans: with many
records in the target that is most of an import's memory. The records are held with no Python object
per record: each is pickled (its id, its values in the layout's field order, its field-name set as an
index into a short shared list, how it was matched, and its key when that is not the one its own key
fields give) and the pickles are laid one after another in one ``bytearray``, their ends in an array;
the keys are found through an open-addressing index of 4-byte slots over their hashes, as
:class:`shared.importing.codes.CodeTable` finds codes. About 0.11 KiB a stored record instead of 0.25
with a dict of one ``bytes`` object per record, and 1.5 KiB with an object per record and per value
(``bench/memory_table.py``). A record is unpacked into a :class:`RemoteRecord` (the same values) when
the plan looks it up; the records are fed in as they are read, so the list is never held whole.

A lookup is exact: a record found by its key's hash is unpacked and its key compared with the key
asked for (as a dict compares them)."""

from __future__ import annotations

import pickle
import sys
from array import array
from collections.abc import Iterator, Sequence
from typing import Any

from shared.records.layouts import LAYOUTS, RecordType
from shared.records.record import fold_key
from shared.records.values import Value
from shared.targets.base import RemoteRecord

#: A one-field key (an employee's or a job's code) is held as the value itself, not a 1-tuple.
_Key = Value | tuple[Value, ...]

#: The index is grown (doubled) when it is more than this full: a miss probes few slots.
_MAX_LOAD = 0.5
#: The low bits of a key's hash kept per record (to find its slot again when the index grows, and to
#: pass over most other keys without unpacking them)
_HASH_BITS = 0xFFFF_FFFF
#: The opcode ``pickle.dumps(..., 5)`` puts after the protocol (``PROTO`` 5) for all but the tiniest
#: pickles, followed by the frame's 8-byte length
_FRAME = pickle.FRAME[0]
#: The ends of the records are 4 bytes each until the records take this many bytes, then 8
_WIDE_FROM = 2**32


class StoredRecords:
    """Stored records of one type by (folded) key; a later record with the same key replaces the earlier one."""

    def __init__(self, record_type: RecordType, *, fold: bool = False) -> None:
        layout = LAYOUTS[record_type]
        self._names = tuple(spec.name for spec in layout.fields)
        self._positions = {name: i for i, name in enumerate(self._names)}
        #: ``fold``: the keys are usually the stored key fields casefolded (the key of a record that
        #: is its fields' is not kept apart: see :meth:`_key_of`)
        self._fold = fold
        self._key_at = tuple(self._positions[name] for name in layout.key)
        self._bytes = bytearray()
        # record i is _bytes[_ends[i - 1]:_ends[i]] (from 0 for the first); 4-byte ends up to 4 GiB
        self._ends = array("I")
        self._hashes = array("I")  # the low bits of the hash of record i's key
        self._slots = array("i", bytes(4 * 8))  # index + 1 of a record, 0: empty
        self._mask = 7
        #: the records replaced by a later one with the same key (rare): index → the later one's pickle
        self._replaced: dict[int, bytes] = {}
        #: the distinct field-name sets of the answers (one list's rows share theirs)
        self._present: list[frozenset[str]] = []
        self._present_at: dict[frozenset[str], int] = {}

    def __len__(self) -> int:
        return len(self._ends)

    def nbytes(self) -> int:
        """Bytes the held records take, as allocated (for the benchmarks)."""
        return (sum(map(sys.getsizeof, (self._bytes, self._ends, self._hashes, self._slots)))
                + sum(map(sys.getsizeof, self._replaced.values())) + sys.getsizeof(self._replaced))

    def add(self, key: tuple[Value, ...], remote: RemoteRecord) -> None:
        at = self._present_at.get(remote.present)
        if at is None:
            at = self._present_at[remote.present] = len(self._present)
            self._present.append(remote.present)
        values: list[Value | None] = [None] * len(self._names)  # None: no value (a Value is never None)
        extra: dict[str, Value] = {}
        for name, value in remote.values.items():
            position = self._positions.get(name)
            if position is None:
                extra[name] = value
            else:
                values[position] = value
        while values and values[-1] is None:
            values.pop()
        held = key[0] if len(key) == 1 else key
        kept = None if _same(held, self._key_of(values)) else held  # None: the key is the record's own
        row = _pack((kept, remote.id, at, remote.matched_by, extra or None, *values))
        digest = hash(held)
        slot, index, _ = self._find(held, digest)
        if index:  # the same key again: the later record, at the earlier one's place
            self._replaced[index - 1] = row
            return
        self._bytes += row
        if len(self._bytes) >= _WIDE_FROM and self._ends.typecode == "I":
            self._ends = array("Q", self._ends)
        self._ends.append(len(self._bytes))
        self._hashes.append(digest & _HASH_BITS)
        self._slots[slot] = len(self._ends)
        if len(self._ends) > _MAX_LOAD * (self._mask + 1):
            self._grow()

    def get(self, key: tuple[Value, ...]) -> RemoteRecord | None:
        held = key[0] if len(key) == 1 else key
        _, _, unpacked = self._find(held, hash(held))
        return None if unpacked is None else self._record(unpacked)

    def values(self) -> Iterator[RemoteRecord]:
        """Every record, in the order they were added (a replaced one at its first place)."""
        return (self._record(self._unpack(index)) for index in range(len(self._ends)))

    def _find(self, key: _Key, digest: int) -> tuple[int, int, tuple[Any, ...] | None]:
        """The slot of ``key``, its record's index + 1 and the record unpacked, or the empty slot where
        it would go, 0 and None."""
        low = digest & _HASH_BITS
        slot = digest & self._mask
        while index := self._slots[slot]:
            if self._hashes[index - 1] == low:
                unpacked = self._unpack(index - 1)
                if (self._key_of(unpacked[5:]) if unpacked[0] is None else unpacked[0]) == key:
                    return slot, index, unpacked
            slot = (slot + 1) & self._mask
        return slot, 0, None

    def _key_of(self, values: Sequence[Value | None]) -> _Key:
        """The key of a record with ``values`` (in the layout's order, None: no value) as the import
        makes it (:func:`shared.importing.plan.stored_key`, folded when the table folds)."""
        key = tuple(value if at < len(values) and (value := values[at]) is not None else "" for at in self._key_at)
        if self._fold:
            key = fold_key(key)
        return key[0] if len(key) == 1 else key

    def _unpack(self, index: int) -> tuple[Any, ...]:
        row: bytes | bytearray | None = self._replaced.get(index) if self._replaced else None
        if row is None:
            row = self._bytes[self._ends[index - 1] if index else 0:self._ends[index]]
        unpacked: tuple[Any, ...] = pickle.loads(row)  # bytes made by _pack()
        return unpacked

    def _record(self, unpacked: tuple[Any, ...]) -> RemoteRecord:
        _, remote_id, at, matched_by, extra, *values = unpacked
        fields = {name: value for name, value in zip(self._names, values, strict=False) if value is not None}
        if extra:
            fields.update(extra)
        return RemoteRecord(id=remote_id, values=fields, present=self._present[at], matched_by=matched_by)

    def _grow(self) -> None:
        self._mask = 2 * (self._mask + 1) - 1
        self._slots = array("i", bytes(4 * (self._mask + 1)))
        for index, low in enumerate(self._hashes):
            slot = low & self._mask
            while self._slots[slot]:
                slot = (slot + 1) & self._mask
            self._slots[slot] = index + 1


def _same(key: _Key, other: _Key) -> bool:
    """The same key, value by value of the same type (``1`` and ``True`` are equal, but not the same)."""
    if isinstance(key, tuple):
        return (isinstance(other, tuple) and len(key) == len(other)
                and all(type(a) is type(b) and a == b for a, b in zip(key, other, strict=True)))
    return type(key) is type(other) and key == other


def _pack(row: tuple[Any, ...]) -> bytes:
    """``row`` pickled, without the protocol and frame header (the same for every row; ``pickle.loads``
    reads the opcodes that follow without it)."""
    data = pickle.dumps(row, 5)
    return data[11:] if data[2] == _FRAME else data[2:]
