"""Peak memory of the running process, for the benchmarks' child processes."""

from __future__ import annotations

import resource
from pathlib import Path

STATUS = Path("/proc/self/status")


def peak_rss_mib() -> float:
    """This process's own peak resident set size (``VmHWM``), in MiB.

    Not ``ru_maxrss``: Linux carries it over from the parent across ``fork``/``exec``, so a child
    started by a parent that holds much memory (a benchmark holding its test data) would report the
    parent's size. ``VmHWM`` belongs to the process's own address space. Without ``/proc`` (not
    Linux), ``ru_maxrss`` is the fallback.
    """
    if STATUS.exists():
        for line in STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
