"""Handing freed memory back to the operating system during long reads.

Reading a long list means many short-lived answers (JSON text, a dict per row) parsed in several
threads; glibc's allocator keeps what they freed in its per-thread heaps, so the resident memory
of a process that holds little grows with the amount read. ``release_freed_memory`` asks glibc
to return those free pages (``malloc_trim``); elsewhere (no glibc) it does nothing.
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


def release_freed_memory() -> bool:
    """Return the allocator's free pages to the system; True when it could be asked."""
    libc = _libc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True
