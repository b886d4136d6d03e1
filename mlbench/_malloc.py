"""Steady glibc malloc for CPU training: freed activations stay in the heap.

By default glibc trims the heap top and serves large blocks by mmap, with thresholds
that move with the process's history. A training step frees and re-allocates ~100 MB of
activations (resnet20, batch 128), so a step may re-fault thousands of pages from the
OS, or none, depending on what ran before: 10-45 ms of kernel time per ~140 ms step on
a 2-core machine (benchmarks/README.md). Fixing both thresholds removes that (PyTorch's
CPU performance guide reaches the same end with jemalloc or tcmalloc).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # from <malloc.h>


def steady_malloc() -> bool:
    """Fix glibc's trim (1 GiB) and mmap (32 MiB) thresholds; False where not glibc.

    Off with ``MLBENCH_STEADY_MALLOC=0``. It keeps up to 1 GiB of freed memory in the
    process instead of returning it to the OS.
    """
    if os.environ.get("MLBENCH_STEADY_MALLOC", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return False
    if not hasattr(libc, "mallopt"):
        return False
    return bool(libc.mallopt(_M_TRIM_THRESHOLD, 2**30) and libc.mallopt(_M_MMAP_THRESHOLD, 2**25))
