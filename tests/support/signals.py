"""Signals as the kernel may deliver them: to any thread of a process, not only its main
one (Python runs handlers on the main thread alone, so a command must not sleep there
without a timeout; see ``signoff.bot.stopping``)."""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import signal

#: tgkill(2)'s number, per architecture: Python cannot signal one thread of another process
_TGKILL = {"x86_64": 234, "aarch64": 131}


def signal_a_thread_but_the_main_one(pid: int, sig: signal.Signals) -> None:
    """Deliver ``sig`` to one of ``pid``'s threads other than its main thread."""
    others = sorted(int(tid) for tid in os.listdir(f"/proc/{pid}/task") if int(tid) != pid)
    assert others, "the process has no thread but its main one"
    libc = ctypes.CDLL(None, use_errno=True)
    # Newest first; a short-lived thread may end between the listing and the signal
    # (ESRCH), and the next one is taken.
    for tid in reversed(others):
        if libc.syscall(_TGKILL[platform.machine()], pid, tid, int(sig)) == 0:
            return
        if ctypes.get_errno() != errno.ESRCH:
            raise OSError(ctypes.get_errno(), "tgkill failed")
    raise ProcessLookupError(errno.ESRCH, f"none of {pid}'s other threads is alive")
