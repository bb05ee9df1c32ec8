"""A child process that must not outlive whoever started it (Linux only).

PR_SET_PDEATHSIG asks the kernel to send `sig` to this process when the *thread* that
started it ends, kill -9 of the parent included. Elsewhere it does nothing: the callers
keep their own fallback (a pipe that closes, a signal handler)."""

from __future__ import annotations

import contextlib
import signal

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def signal_on_parent_death(sig: signal.Signals = signal.SIGTERM) -> None:
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
