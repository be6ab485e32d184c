"""Many codes held compactly: (folded) code → the code as stored, with no Python object per code.

The import keeps, for the operations that follow, the code under which each job of the file is in
the target (written or unchanged). A first import of a million lines has 200,000 jobs: a dict of
strings costs about 150 bytes a job (the entry, the folded key and the code, each an object), this
table about 18 — 200,000 codes of 8 characters take 3.4 MiB, and no more while it grows (the table
before it: 7.0 MiB, 8.4 MiB while its arrays grew; measured with tracemalloc):

* each code's UTF-8 bytes once, after a byte of its key's hash and a byte of its length, in chunks
  of 64 KiB that are never moved or copied (a chunk is filled, then the next one is started);
* an open-addressing index of 4-byte slots (where a code starts, + 1), split by its key's hash into
  256 small tables, each grown on its own (to half full when it is three quarters full): growing
  copies one small table at a time, never the whole index, so the table's peak is its size.

No hash is held: a slot's code is told apart by its hash byte first and then by the code itself
(its hash is computed again when its small table grows). A lookup is exact: a candidate is
compared with the key itself.
"""

from __future__ import annotations

from array import array

#: The index's small tables, chosen by the low byte of a key's hash.
_TABLES = 256
#: A small table is grown when it is more than this full (to half full): a miss probes few slots.
_MAX_LOAD = 0.75
#: Bytes per chunk of codes (a code never straddles two chunks).
_CHUNK_BITS = 16
_CHUNK = 1 << _CHUNK_BITS
#: The longest code held in the chunks (its length is one byte); a longer one is held apart.
_LONGEST = 255


class CodeTable:
    """(Folded) code → code as stored; ``fold``: the key is the code casefolded (codes ignore case).
    Adding a key again replaces its code."""

    def __init__(self, *, fold: bool) -> None:
        self._fold = fold
        self._chunks: list[bytearray] = []
        self._used = _CHUNK  # bytes used of the last chunk (full: the next code starts a new one)
        self._tables = [array("I", bytes(4 * 8)) for _ in range(_TABLES)]  # where a code starts + 1, 0: empty
        self._filled = array("I", bytes(4 * _TABLES))  # codes per small table
        self._count = 0
        self._long: dict[str, str] = {}  # key → code, for the codes longer than _LONGEST bytes

    def __len__(self) -> int:
        return self._count + len(self._long)

    def nbytes(self) -> int:
        """Bytes of the table's contents (for the benchmarks)."""
        return (_CHUNK * len(self._chunks) + sum(4 * len(table) for table in self._tables) + 4 * _TABLES
                + sum(len(key) + len(code) for key, code in self._long.items()))

    def get(self, key: str) -> str | None:
        """The code stored under ``key`` (a folded code when the table folds)."""
        if self._long and key in self._long:
            return self._long[key]
        digest = hash(key)
        table = self._tables[digest & (_TABLES - 1)]
        at = table[self._find(table, key, digest)]
        return self._code(at - 1) if at else None

    def add(self, code: str) -> None:
        """Hold ``code`` under its key (the code itself, casefolded when the table folds)."""
        key = code.casefold() if self._fold else code
        data = code.encode("utf-8", "surrogatepass")
        if len(data) > _LONGEST:
            self._long[key] = code
            return
        digest = hash(key)
        number = digest & (_TABLES - 1)
        table = self._tables[number]
        slot = self._find(table, key, digest)
        at = table[slot]
        if at and self._code(at - 1) == code:
            return
        table[slot] = self._append(data, digest) + 1  # new, or the same key spelled otherwise: replaced
        if not at:
            self._count += 1
            self._filled[number] += 1
            if self._filled[number] > _MAX_LOAD * len(table):
                self._tables[number] = self._grown(table, 2 * self._filled[number])

    def _find(self, table: array[int], key: str, digest: int) -> int:
        """The slot of ``key`` in ``table``, or the empty slot where it would go."""
        size = len(table)
        tag = (digest >> 8) & 0xFF
        slot = (digest >> 16) % size
        chunks = self._chunks
        while at := table[slot]:
            start = at - 1
            chunk, offset = chunks[start >> _CHUNK_BITS], start & (_CHUNK - 1)
            if chunk[offset] == tag:
                held = self._code(start)
                if (held.casefold() if self._fold else held) == key:
                    return slot
            slot = slot + 1 if slot + 1 < size else 0
        return slot

    def _append(self, data: bytes, digest: int) -> int:
        """Where the code ``data`` now starts (its hash byte, its length, its bytes)."""
        need = 2 + len(data)
        if self._used + need > _CHUNK:
            self._chunks.append(bytearray(_CHUNK))
            self._used = 0
        chunk, offset = self._chunks[-1], self._used
        chunk[offset] = (digest >> 8) & 0xFF
        chunk[offset + 1] = len(data)
        chunk[offset + 2:offset + need] = data
        self._used += need
        return ((len(self._chunks) - 1) << _CHUNK_BITS) + offset

    def _code(self, start: int) -> str:
        chunk, offset = self._chunks[start >> _CHUNK_BITS], (start & (_CHUNK - 1)) + 2
        return chunk[offset:offset + chunk[offset - 1]].decode("utf-8", "surrogatepass")

    def _grown(self, table: array[int], size: int) -> array[int]:
        """``table`` with ``size`` slots (a replaced code is no longer indexed: it stays out); each
        code's hash computed again."""
        grown = array("I", bytes(4 * size))
        for at in table:
            if at:
                held = self._code(at - 1)
                slot = (hash(held.casefold() if self._fold else held) >> 16) % size
                while grown[slot]:
                    slot = slot + 1 if slot + 1 < size else 0
                grown[slot] = at
        return grown
