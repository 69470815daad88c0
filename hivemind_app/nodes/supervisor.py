"""Background workers that restart after a crash, with capped exponential backoff, and stop on request."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from hivemind_app.records.nodes import WorkerStatus

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 30.0


@dataclass
class WorkerState:
    name: str
    interval_s: float
    runs: int = 0
    crashes: int = 0
    last_error: str | None = None
    state: str = "starting"  # starting, running, backing-off, stopped
    started_at: float = field(default_factory=time.time)

    def snapshot(self) -> WorkerStatus:
        return WorkerStatus(self.name, self.state, self.runs, self.crashes, self.last_error)


class Supervisor:
    """Runs each worker's step every `interval_s` in its own thread; a step that raises is logged, counted,
    and retried after a backoff that doubles up to 30 s (with jitter), so one bad peer or file cannot spin."""

    def __init__(self, on_crash: Callable[[WorkerState, BaseException], None] | None = None) -> None:
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.workers: dict[str, WorkerState] = {}
        self.on_crash = on_crash

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds` inside a step, waking at once on stop; True when stopping."""
        return self._stop.wait(seconds)

    def spawn(self, name: str, step: Callable[[], None], interval_s: float) -> None:
        state = WorkerState(name, interval_s)
        self.workers[name] = state
        thread = threading.Thread(target=self._loop, args=(state, step), name=f"hivemind-{name}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _loop(self, state: WorkerState, step: Callable[[], None]) -> None:
        backoff = 1.0
        while not self._stop.is_set():
            try:
                state.state = "running"
                step()
                state.runs += 1
                backoff = 1.0
                wait = state.interval_s
            except Exception as exc:
                state.crashes += 1
                state.last_error = f"{type(exc).__name__}: {exc}"
                state.state = "backing-off"
                log.warning("worker %s crashed (%s); restarting in %.0f s", state.name, state.last_error, backoff)
                if self.on_crash:
                    self.on_crash(state, exc)
                wait = backoff * random.uniform(0.8, 1.2)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
            self._stop.wait(wait)
        state.state = "stopped"

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
