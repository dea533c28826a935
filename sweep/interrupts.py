"""Ctrl-C and SIGTERM stop a run within a second, even inside a long numba kernel.

Python runs signal handlers in the main thread only between bytecodes, so a
kernel that takes ten seconds would hold a Ctrl-C for ten seconds.  During a
run, ``interruptible()`` routes SIGINT and SIGTERM through
``signal.set_wakeup_fd`` to a watcher thread, which sets ``STOP[0] = 1``; the
long kernels (the fused bar loop, CSCV) poll ``STOP`` and return early, and the
main thread then raises: ``KeyboardInterrupt`` for SIGINT, ``Terminated`` for
SIGTERM.  The run is marked ``interrupted`` and resumable; the CLI exits 130 or
143 without a traceback.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading

import numpy as np

from services.errors import Terminated

STOP = np.zeros(1, dtype=np.int64)  # 1: stop as soon as possible (read by kernels)
__all__ = ["STOP", "Terminated", "interruptible"]


def _raise_for(signum, frame):
    STOP[0] = 1
    if signum == signal.SIGTERM:
        raise Terminated("terminated (SIGTERM)")
    raise KeyboardInterrupt


@contextlib.contextmanager
def interruptible():
    """Install the stop machinery for the duration of a run (a no-op outside the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    STOP[0] = 0
    r, w = os.pipe()
    os.set_blocking(w, False)
    old_fd = signal.set_wakeup_fd(w, warn_on_full_buffer=False)
    old = {s: signal.signal(s, _raise_for) for s in (signal.SIGINT, signal.SIGTERM)}

    def watch():
        while True:
            try:
                got = os.read(r, 1)
            except OSError:
                return
            if not got:
                return
            if got[0] in (signal.SIGINT, signal.SIGTERM):
                STOP[0] = 1  # kernels see it now; the main thread raises when it gets control back

    watcher = threading.Thread(target=watch, name="sweep-signal-watcher", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        signal.set_wakeup_fd(old_fd)
        for s, h in old.items():
            signal.signal(s, h)
        os.close(w)
        watcher.join(timeout=1.0)
        os.close(r)
        STOP[0] = 0
