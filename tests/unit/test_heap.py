"""The local runtime's processes bound their C heap (runtime/heap.py): a large block freed
must not turn the next large blocks into heap memory that is never given back."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

# In a fresh interpreter: free one 8 MB block (glibc then raises its mmap threshold to 8
# MB by default), then hold twenty 1 MB blocks and free them; report how much the brk heap
# grew for them. Mapped blocks leave the heap alone and go back to the system on free.
_PROBE = textwrap.dedent("""
    import sys
    from pilot_dev.runtime.heap import bound_malloc

    def heap_kb():
        with open("/proc/self/maps") as maps:
            for line in maps:
                if line.rstrip().endswith("[heap]"):
                    start, end = (int(x, 16) for x in line.split()[0].split("-"))
                    return (end - start) // 1024
        return 0

    bounded = bound_malloc() if sys.argv[1] == "bounded" else None
    big = bytearray(8 << 20)
    del big
    before = heap_kb()
    blocks = [bytearray(1 << 20) for _ in range(20)]
    grew = heap_kb() - before
    del blocks
    print(bounded, grew)
""")


def _heap_growth_kb(mode: str) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True,
                         text=True, check=True).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_large_blocks_stay_out_of_the_heap_after_a_larger_one_was_freed() -> None:
    _, default_growth = _heap_growth_kb("default")
    bounded, bounded_growth = _heap_growth_kb("bounded")
    if default_growth < 10 * 1024:  # not glibc's dynamic threshold: nothing to show here
        pytest.skip(f"this C library kept 1 MB blocks out of the heap anyway ({default_growth} KB)")
    assert bounded == "True"
    assert bounded_growth < 1024, (
        f"the heap grew {bounded_growth} KB for twenty 1 MB blocks (unbounded: {default_growth})")
