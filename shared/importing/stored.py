"""The target's stored records of one type, as the import plan compares against them, held compactly.

A re-import reads every stored employee and job once and keeps them while it plans: with many
records in the target that is most of an import's memory. Each record is kept here as one bytes
object (its id, its values in the layout's field order, its field-name set as an index into a
short shared list, how it was matched), under its folded key, instead of an object and a dict per
record and an object per value — a few hundred bytes a record instead of about 1.5 KiB
(``bench/memory_table.py``). A record is unpacked into a :class:`RemoteRecord` (the same values)
when the plan looks it up; the records are fed in as they are read, so the list is never held whole.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator

from shared.records.layouts import LAYOUTS, RecordType
from shared.records.values import Value
from shared.targets.base import RemoteRecord

#: A one-field key (an employee's or a job's code) is held as the value itself, not a 1-tuple.
_Key = Value | tuple[Value, ...]


class StoredRecords:
    """Stored records of one type by (folded) key; a later record with the same key replaces the earlier one."""

    def __init__(self, record_type: RecordType) -> None:
        self._names = tuple(spec.name for spec in LAYOUTS[record_type].fields)
        self._positions = {name: i for i, name in enumerate(self._names)}
        self._rows: dict[_Key, bytes] = {}
        #: the distinct field-name sets of the answers (one list's rows share theirs)
        self._present: list[frozenset[str]] = []
        self._present_at: dict[frozenset[str], int] = {}

    def __len__(self) -> int:
        return len(self._rows)

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
        packed = (remote.id, at, remote.matched_by, extra or None, *values)
        self._rows[key[0] if len(key) == 1 else key] = pickle.dumps(packed, pickle.HIGHEST_PROTOCOL)

    def get(self, key: tuple[Value, ...]) -> RemoteRecord | None:
        packed = self._rows.get(key[0] if len(key) == 1 else key)
        return None if packed is None else self._unpack(packed)

    def values(self) -> Iterator[RemoteRecord]:
        """Every record, in the order they were added (a replaced one at its first place)."""
        return map(self._unpack, self._rows.values())

    def _unpack(self, packed: bytes) -> RemoteRecord:
        remote_id, at, matched_by, extra, *values = pickle.loads(packed)  # bytes made by add()
        fields = {name: value for name, value in zip(self._names, values, strict=False) if value is not None}
        if extra:
            fields.update(extra)
        return RemoteRecord(id=remote_id, values=fields, present=self._present[at], matched_by=matched_by)
