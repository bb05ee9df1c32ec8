"""The cyclic garbage collector held off for a batch of ingestion work.

Reading a run's items and storing its snapshots allocate some hundred objects a product
that stay alive until the batch ends (the items, the snapshots, the rows): the collector
keeps scanning them as they pile up, and every few batches walks the whole heap (the
fetched items included). That cost ~20 µs of CPU a product, a sixth of ingestion
(bench_ingest, same run, collector on and off). None of these objects form cycles that
must go early (they are freed by reference counting as usual): collection resumes, and
catches up, when the batch is done.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collection_paused() -> Iterator[None]:
    """No cyclic collection inside; nested uses leave it to the outermost."""
    if not gc.isenabled():  # already paused by a caller (or by the process): theirs to resume
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
