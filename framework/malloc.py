"""glibc's malloc thresholds, set by the framework at start-up (``malloc_tuning``).

A training step frees and re-allocates the same large buffers (activations, gradients) every iteration. With
glibc's defaults, blocks over the dynamic mmap threshold are returned to the system on free and faulted in
again, zeroed, on the next step; and the heap top is trimmed whenever 128 KiB are free. Keeping freed memory
(mmap threshold 32 MiB, trim threshold 4 GiB) makes CPU training faster, the framework and a bare loop alike
(``scripts/bench_overhead.py --malloc all``; docs/benchmarks.md), at the price of a process that stays at its
peak memory.

``mallopt`` through ctypes sets what ``GLIBC_TUNABLES=glibc.malloc.mmap_threshold=...:glibc.malloc.trim_threshold=...``
sets, from inside the process: it applies from the call on (hence early, before the model and the data are
built) and to DataLoader workers forked afterwards. Elsewhere (musl, macOS, Windows) it does nothing, and says so.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
from typing import Optional

MMAP_THRESHOLD = 32 * 2**20
TRIM_THRESHOLD = 2**31 - 1  # mallopt takes a C int: 2 GiB (the tunable's 4 GiB; either means "never" here)
_M_TRIM_THRESHOLD = -1  # glibc's malloc.h
_M_MMAP_THRESHOLD = -3
ENV_EQUIVALENT = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=4294967296"

_applied: Optional[str] = None  # the outcome of setting the thresholds (once per process)
_last: str = "malloc: left as it is (not set by this process)"


def tune_malloc(enabled: bool = True) -> str:
    """Set the thresholds (once per process; ``enabled=False`` leaves glibc's defaults) and return the line
    for the log (also :func:`malloc_status`)."""
    global _applied, _last
    if not enabled:
        _last = "malloc: " + ("thresholds already set in this process" if _applied else "glibc defaults") + \
                " (malloc_tuning: false)"
        return _last
    if _applied is None:
        _applied = _set_thresholds()
    _last = _applied
    return _last


def malloc_status() -> str:
    """What the last :func:`tune_malloc` did, for the run's log."""
    return _last


def _set_thresholds() -> str:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return f"malloc: not glibc ({platform.system()} {platform.libc_ver()[0] or 'libc'}); left as it is"
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    if "glibc.malloc.mmap_threshold" in tunables or "glibc.malloc.trim_threshold" in tunables:
        return "malloc: thresholds set by GLIBC_TUNABLES; left as they are"
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and libc.mallopt(_M_TRIM_THRESHOLD,
                                                                                  TRIM_THRESHOLD) == 1
    except (OSError, AttributeError) as exc:
        return f"malloc: mallopt unavailable ({exc}); left as it is"
    if not ok:
        return "malloc: mallopt refused the thresholds; left as it is"
    return (f"malloc: freed memory kept for reuse (mallopt: mmap threshold {MMAP_THRESHOLD >> 20} MiB, trim "
            f"threshold 2 GiB; malloc_tuning: false turns it off)")
