"""Process-level tuning for long data runs (opt-in, explicit: nothing here runs at import).

:func:`tune_allocator` keeps freed memory in the process instead of returning it to the kernel
after every large array. A monitoring run allocates and frees arrays of a few MB per meter,
instrument or device, thousands of times; with glibc's defaults each of those is a fresh ``mmap``
whose pages are zero-filled on first touch (about 1 s per GB on a small VM), so a fleet run spent
as much time in the kernel as in Python. With a fixed mmap threshold (32 MiB, glibc's maximum
dynamic value) and a high trim threshold, freed blocks are reused instead. The cost: the process
keeps its peak heap until it exits, which suits a CLI run or a worker, not a long-lived server.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import threading

_M_TRIM_THRESHOLD = -1  # glibc <malloc.h>
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024
TRIM_THRESHOLD = 1 << 30

_lock = threading.Lock()
_tuned: bool | None = None


def tune_allocator() -> bool:
    """Apply the allocator settings once per process (glibc only). Returns whether they apply."""
    global _tuned
    with _lock:
        if _tuned is not None:
            return _tuned
        _tuned = False
        if not sys.platform.startswith("linux"):
            return False
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            mallopt = libc.mallopt
        except (OSError, AttributeError):  # musl and other libcs have no mallopt
            return False
        mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        mallopt.restype = ctypes.c_int
        _tuned = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
        if _tuned and os.environ.get("MRV_ARROW_POOL", "system") == "system":
            import pyarrow as pa

            # Arrow's own pool (mimalloc) purges freed pages back to the kernel after 10 ms, so
            # each meter's decode faulted its buffers in again: let glibc, tuned above, keep them.
            pa.set_memory_pool(pa.system_memory_pool())
        return _tuned
