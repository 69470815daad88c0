"""An exclusive advisory lock (flock) taken within a deadline. Stdlib only: the hook hot path uses it.

`flock` itself can only wait forever or not at all; both the model converter and the hook spool's drainer
need "wait this long for the process that holds it, then give up", so they poll here.
"""

from __future__ import annotations

import fcntl
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO


def flock_within(handle: int | IO[str], wait_s: float, poll_s: float = 0.02) -> bool:
    """Take an exclusive flock on `handle` within `wait_s` seconds; whether it was taken. An OSError other
    than "held by another process" (a file system without locks) is raised."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(poll_s)
