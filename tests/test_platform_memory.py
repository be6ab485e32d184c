"""Handing memory back to the system (shared/platform/memory.py), on glibc."""

from __future__ import annotations

import ctypes
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

try:
    HAS_MALLINFO2 = hasattr(ctypes.CDLL("libc.so.6"), "mallinfo2")
except OSError:
    HAS_MALLINFO2 = False

# In a process of its own (the setting is for the whole process): a large block freed, then one of
# 1 MiB made; prints the bytes glibc holds in blocks of their own before and after the second.
PROBE = textwrap.dedent("""
    import ctypes, sys
    from shared.platform.memory import keep_large_blocks_apart

    class Info(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                                                         "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = Info
    if sys.argv[1] == "before":
        print(keep_large_blocks_apart())
    big = bytearray(8 * 2**20)  # like the scan's bitmap of a large file
    del big
    if sys.argv[1] == "after":
        print(keep_large_blocks_apart())
    apart = libc.mallinfo2().hblkhd
    block = bytearray(2**20)
    print(libc.mallinfo2().hblkhd - apart >= 2**20)
""")


ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(not HAS_MALLINFO2, reason="glibc's mallinfo2 is needed to look")
@pytest.mark.parametrize("when", ["before", "after"])
def test_a_large_block_gets_memory_of_its_own_after_a_larger_one_was_freed(when: str) -> None:
    done = subprocess.run([sys.executable, "-c", PROBE, when], capture_output=True, text=True, check=True, timeout=60,
                          cwd=ROOT)
    assert done.stdout.split() == ["True", "True"], done.stdout + done.stderr


@pytest.mark.skipif(not HAS_MALLINFO2, reason="glibc's mallinfo2 is needed to look")
def test_without_it_glibc_would_carve_the_block_out_of_its_heap() -> None:
    """What the setting prevents (so the test above can fail): glibc raises its threshold."""
    probe = PROBE.replace("print(keep_large_blocks_apart())", "print(True)")
    done = subprocess.run([sys.executable, "-c", probe, "before"], capture_output=True, text=True, check=True,
                          timeout=60, cwd=ROOT)
    assert done.stdout.split() == ["True", "False"], done.stdout + done.stderr
