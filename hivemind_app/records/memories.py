"""Records of memory writes that front ends hand to `Hive` or get back from it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class MemoryDraft:
    """Input for `Hive.store_memories`: unvalidated, as a caller hands it over."""

    text: str
    tags: Sequence[str] = ()
    source: str | None = None
    session_id: str | None = None


@dataclass
class ReembedProgress:
    """Where a `reembed` stands; updated in place and handed to the progress callback after each batch."""

    model: str
    total: int
    done: int = 0
    finished: bool = False
    dropped: list[str] = field(default_factory=list)
