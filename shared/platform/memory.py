"""Handing freed memory back to the operating system during long reads and imports.

Reading a long list means many short-lived answers (JSON text, a dict per row) parsed in several
threads; glibc's allocator keeps what they freed in its per-thread heaps, so the resident memory
of a process that holds little grows with the amount read. ``release_freed_memory`` asks glibc
to return those free pages (``malloc_trim``); elsewhere (no glibc) it does nothing.

``keep_large_blocks_apart`` fixes glibc's threshold for blocks of their own (``mmap``) and its
heaps' trim threshold at their default, 128 KiB. Left to itself, glibc raises the first to the size
of the largest such block freed (the scan's bitmap of a large file: 8 MiB) and the second to twice
that, so every later large block (a growing array, a chunk of the file) is carved out of the heaps
and what it leaves behind stays resident. Sampled twice a second up to the 100,000th write of a
1,000,000-line first import (``bench/memory_table.py``'s child): resident 73.0–78.9 MiB with them
raised (glibc's heaps grew to 33 MiB, 15 MiB of it free; with the earlier code table, 0.9 MiB
larger there), 73.1–74.2 MiB with them fixed (16 MiB, 1 MiB free).
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache
from typing import Any


@cache
def _libc() -> Any | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name)
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


#: ``mallopt``'s parameters: the threshold of blocks of their own, and the free memory a heap keeps
#: at its top (glibc's ``M_MMAP_THRESHOLD``, ``M_TRIM_THRESHOLD``)
_M_MMAP_THRESHOLD, _M_TRIM_THRESHOLD = -3, -1
#: glibc's default for both (setting them turns its raising off)
LARGE_BLOCK = 128 * 1024


@cache
def keep_large_blocks_apart() -> bool:
    """Blocks of ``LARGE_BLOCK`` bytes or more get memory of their own from the system, which is
    handed back when they are freed, and a heap keeps at most that much free at its top (for the
    whole process, from now on; also when glibc had raised both already). True when glibc could be
    asked."""
    libc = _libc()
    if libc is None or not hasattr(libc, "mallopt"):
        return False
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, LARGE_BLOCK)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, LARGE_BLOCK))


def release_freed_memory() -> bool:
    """Return the allocator's free pages to the system; True when it could be asked."""
    libc = _libc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True
