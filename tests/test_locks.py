"""`flock_within`: an exclusive lock taken within a deadline, on real files."""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from hivemind_app.locks import flock_within


def test_a_lock_held_elsewhere_is_given_up_after_the_deadline_and_taken_once_it_is_free(tmp_path: Path) -> None:
    path = tmp_path / "lock"
    holder = os.open(path, os.O_RDWR | os.O_CREAT)  # another open file description: a conflicting flock
    waiter = os.open(path, os.O_RDWR)
    try:
        assert flock_within(holder, 0)
        start = time.monotonic()
        assert not flock_within(waiter, 0.2)
        assert 0.2 <= time.monotonic() - start < 5
        fcntl.flock(holder, fcntl.LOCK_UN)
        assert flock_within(waiter, 0)
    finally:
        os.close(holder)
        os.close(waiter)
