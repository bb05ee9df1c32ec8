"""The local runtime's processes hold a large heap that never dies after start: every
function's modules, moto's and botocore's models, FastAPI's routes. The cyclic garbage
collector walks all of it on each full collection, and a daily refresh allocates enough
(dataset pages, snapshots) to trigger one every few hundred items: measured with the
stand-in and the adapter in one process, the collector took ≈ 90 µs an item, ≈ 10 once
the start-up heap was frozen."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc

# glibc's mallopt parameters (malloc.h)
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
MMAP_THRESHOLD = 128 * 1024  # glibc's own starting value, no longer raised
ARENA_MAX = 2


def bound_malloc() -> bool:
    """Keep a long-lived process's C heap from growing with the work it has done.

    glibc raises its mmap threshold each time a large block is freed (up to 32 MB), so a
    refresh's dataset pages (hundreds of KB each) soon come from the heap instead of their
    own mappings, and the holes they leave are not given back; and every thread that
    allocates gets an arena of its own (the pollers run several). Measured with
    bench_refresh, peak RSS of `pilot run --workers 2` from 1k to 100k products: 548 -> 665
    MB before; 549 -> 593 MB with the threshold held at glibc's initial 128 KB and two
    arenas (with the smaller caches of the same change). Call it first thing in a process.
    Returns False where the C library is not glibc (nothing changed)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):  # musl, macOS: no mallopt
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_ARENA_MAX, ARENA_MAX))


def settle() -> int:
    """Collect what start-up left behind, then move everything alive to the permanent
    generation (`gc.freeze`), which collections no longer walk. Objects made afterwards
    are collected as before. Returns how many objects were frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
