"""Process-level CPU tuning applied by ``main.py`` before training (measured in docs/speed.md).

glibc's malloc returns large freed blocks to the OS (``mmap`` threshold, heap trimming), so
every large temporary tensor of a recurrent step on a full-market day (thousands of stocks
x hidden units) is a fresh mapping that page-faults on first touch. Keeping freed memory in
the heap removes that cost. ``tune_malloc`` sets, through ``mallopt``:

- ``M_MMAP_THRESHOLD`` = 32 MiB (glibc's maximum): blocks below it come from the heap;
- ``M_TRIM_THRESHOLD`` = 16 GiB and ``M_TOP_PAD`` = 1 GiB: freed heap memory is kept.

The process's resident memory stays at its high-water mark instead of shrinking between
steps. Off with ``DEEPFACTOR_MALLOC_TUNING=0``; a no-op where glibc is absent.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
SETTINGS = {M_MMAP_THRESHOLD: 32 << 20, M_TRIM_THRESHOLD: 16 << 30, M_TOP_PAD: 1 << 30}


def tune_malloc() -> bool:
    """Apply the settings above; True if glibc accepted every one of them."""
    if os.environ.get("DEEPFACTOR_MALLOC_TUNING", "1") == "0":
        return False
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return all(mallopt(param, min(value, 2**31 - 1)) == 1 for param, value in SETTINGS.items())
