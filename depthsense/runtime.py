"""Process-level tuning for CPU runs.

PyTorch on CPU allocates and frees a full-size tensor for almost every operation. With
glibc's defaults, blocks above the (dynamic) mmap threshold are returned to the kernel
on every free and page-faulted back in, zeroed, on the next allocation: on a 2-core
machine that was 15-20% of a demo run's CPU time (68 million minor page faults) and
made a 3x3 ``SparseConv2d`` forward+backward 1.58x a plain convolution instead of
1.17x (``benchmarks/README.md``). Keeping freed memory in the heap fixes that at the
cost of a process holding on to memory it has used once.

The CLIs and ``make`` targets apply it; library users call
:func:`tune_cpu_allocator` themselves. ``DEPTHSENSE_MALLOC_TUNING=0`` turns it off.
"""

from __future__ import annotations

import ctypes
import os
import sys

__all__ = ["tune_cpu_allocator", "MALLOC_ENV"]

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's maximum on 64-bit
_TRIM_THRESHOLD = 1024 * 1024 * 1024
_TOP_PAD = 64 * 1024 * 1024

MALLOC_ENV = {
    "MALLOC_MMAP_THRESHOLD_": str(_MMAP_THRESHOLD),
    "MALLOC_TRIM_THRESHOLD_": str(_TRIM_THRESHOLD),
    "MALLOC_TOP_PAD_": str(_TOP_PAD),
}
"""The same settings as environment variables, for child processes (glibc reads them at start)."""

_applied = False


def tune_cpu_allocator() -> bool:
    """Keep freed tensor memory in glibc's heap (idempotent; Linux/glibc only).

    Returns:
        True if the settings are in effect, False where they do not apply (not glibc,
        turned off by ``DEPTHSENSE_MALLOC_TUNING=0``, or mallopt refused).
    """
    global _applied
    if _applied:
        return True
    if os.environ.get("DEPTHSENSE_MALLOC_TUNING", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl or another libc
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    ok = all(
        mallopt(param, value) == 1
        for param, value in (
            (_M_MMAP_THRESHOLD, _MMAP_THRESHOLD),
            (_M_TRIM_THRESHOLD, _TRIM_THRESHOLD),
            (_M_TOP_PAD, _TOP_PAD),
        )
    )
    _applied = ok
    return ok
