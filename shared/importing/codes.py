"""Many codes held compactly: (folded) code → the code as stored, with no Python object per code.

The import keeps, for the operations that follow, the code under which each job of the file is in
the target (written or unchanged). A first import of a million lines has 200,000 jobs: a dict of
strings costs about 150 bytes a job (the entry, the folded key and the code, each an object), this
table about 30 — the codes' UTF-8 bytes one after another in one ``bytearray``, their ends and
hashes in arrays, and an open-addressing index of 4-byte slots (``bench/memory_table.py``).

A lookup is exact: a candidate found by its hash is compared with the code itself.
"""

from __future__ import annotations

from array import array

#: The index is grown (doubled) when it is more than this full: a miss probes few slots.
_MAX_LOAD = 0.5


class CodeTable:
    """(Folded) code → code as stored; ``fold``: the key is the code casefolded (codes ignore case).
    Adding a key again replaces its code."""

    def __init__(self, *, fold: bool) -> None:
        self._fold = fold
        self._bytes = bytearray()
        self._ends = array("Q")  # code i is _bytes[_ends[i - 1]:_ends[i]] (from 0 for the first)
        self._hashes = array("q")  # hash of code i's key
        self._slots = array("i", bytes(4 * 8))  # index + 1 of a code, 0: empty
        self._mask = 7

    def __len__(self) -> int:
        return len(self._ends)

    def nbytes(self) -> int:
        """Bytes of the table's contents (for the benchmarks)."""
        return (len(self._bytes) + self._ends.itemsize * len(self._ends) + self._hashes.itemsize * len(self._hashes)
                + self._slots.itemsize * len(self._slots))

    def get(self, key: str) -> str | None:
        """The code stored under ``key`` (a folded code when the table folds)."""
        _, at = self._find(key, hash(key))
        return self._code(at - 1) if at else None

    def add(self, code: str) -> None:
        """Hold ``code`` under its key (the code itself, casefolded when the table folds)."""
        key = code.casefold() if self._fold else code
        digest = hash(key)
        slot, at = self._find(key, digest)
        if at and self._code(at - 1) == code:
            return
        self._slots[slot] = self._append(code, digest)  # new, or the same key spelled otherwise: replaced
        if not at and len(self._ends) > _MAX_LOAD * (self._mask + 1):
            self._grow()

    def _find(self, key: str, digest: int) -> tuple[int, int]:
        """The slot of ``key`` and its code's index + 1, or the empty slot where it would go and 0."""
        slot = digest & self._mask
        while at := self._slots[slot]:
            if self._hashes[at - 1] == digest:
                held = self._code(at - 1)
                if (held.casefold() if self._fold else held) == key:
                    return slot, at
            slot = (slot + 1) & self._mask
        return slot, 0

    def _append(self, code: str, digest: int) -> int:
        self._bytes += code.encode("utf-8", "surrogatepass")
        self._ends.append(len(self._bytes))
        self._hashes.append(digest)
        return len(self._ends)  # index + 1

    def _code(self, index: int) -> str:
        start = self._ends[index - 1] if index else 0
        return self._bytes[start:self._ends[index]].decode("utf-8", "surrogatepass")

    def _grow(self) -> None:
        old = self._slots  # a replaced code is no longer indexed: it stays out
        self._mask = 2 * (self._mask + 1) - 1
        self._slots = array("i", bytes(4 * (self._mask + 1)))
        for at in old:
            if at:
                slot = self._hashes[at - 1] & self._mask
                while self._slots[slot]:
                    slot = (slot + 1) & self._mask
                self._slots[slot] = at
