"""Where one space's index stands (`AnnStatus`), and the reporter that keeps it and tells a progress display."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class AnnStatus:
    """Where the index of one embedding space stands: what `Hive.index_status()` returns."""

    state: str  # off | exact (store too small) | missing | building | ready | failed
    space_id: int | None = None
    model: str | None = None
    indexed: int = 0  # vectors in the index file
    delta: int = 0  # vectors changed since the file was saved (searched exactly)
    progress: float | None = None  # 0..1 while building
    detail: str = ""
    file: str | None = None
    build_seconds: float | None = None
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


ProgressCallback = Callable[[AnnStatus], None]


class Reporter:
    """One index's status, shared by its searches and its builds; each change is passed to `on_progress`."""

    def __init__(self, status: AnnStatus, on_progress: ProgressCallback | None) -> None:
        self.status = status
        self.on_progress = on_progress

    def report(self, **changes: Any) -> None:
        for key, value in changes.items():
            setattr(self.status, key, value)
        if self.on_progress is not None:
            try:
                self.on_progress(self.status)
            except Exception:  # a broken progress display must not break the index
                log.exception("ANN progress callback failed")

    def error(self, message: str) -> None:
        """Keep `message` among the last few errors (without telling the display: a report follows)."""
        self.status.errors = [*self.status.errors[-4:], message]
