"""Memories as every layer sees them: what a caller hands in (`MemoryDraft`), what the store writes
(`NewMemory`) and hands out (`Memory`, `StoredMemory`, `Hit`), search filters and store counts."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hivemind_app.records.labels import DIGEST_TAG as DIGEST_TAG
from hivemind_app.records.labels import GLOBAL_TAG as GLOBAL_TAG
from hivemind_app.records.labels import MAX_PROJECT_CHARS as MAX_PROJECT_CHARS
from hivemind_app.records.labels import SUMMARY_TAG as SUMMARY_TAG

OCCURRED_RANGE = (0.0, 253402300800.0)
"""The times a memory may describe (unix seconds): 1970-01-01 up to, not including, the year 10000, the
range a date can be written in; a record from the hub outside it is refused (`hub/decode.py`)."""


@dataclass(frozen=True)
class MemoryDraft:
    """Input for `Hive.store_memories`: unvalidated, as a caller hands it over."""

    text: str
    tags: Sequence[str] = ()
    source: str | None = None
    session_id: str | None = None
    project: str | None = None
    """The project it comes from (`hivemind_app.projects`); None: no project (recalled everywhere)."""
    occurred_at: str | float | None = None
    """The time the memory describes, when it is known (a session's date): unix seconds, an ISO date or a
    duration back from now (`timespec.parse_time`); None: only the time it is stored is known."""


@dataclass
class ReembedProgress:
    """Where a `reembed` stands; updated in place and handed to the progress callback after each batch."""

    model: str
    total: int
    done: int = 0
    finished: bool = False
    dropped: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Memory:
    id: str
    text: str
    sources: tuple[str, ...]
    tags: tuple[str, ...]
    session_id: str | None
    created_at: float
    updated_at: float
    origin_node: str
    version: int
    deleted: bool = False
    project: str | None = None
    occurred_at: float | None = None
    """The time it describes (unix seconds), when known; None: only `created_at`, when it was stored."""

    @property
    def when(self) -> float:
        """The memory's time: the time it describes when known, else when it was stored (what a time window
        in a question is compared with)."""
        return self.created_at if self.occurred_at is None else self.occurred_at

    @property
    def source(self) -> str:
        """The first source this memory was stored from ('' when none was given)."""
        return self.sources[0] if self.sources else ""

    def age_seconds(self, now: float | None = None) -> float:
        return max(0.0, (now or time.time()) - self.created_at)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "text": self.text,
            "source": self.source,
            "sources": list(self.sources),
            "tags": list(self.tags),
            "session_id": self.session_id,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "age_seconds": round(self.age_seconds(), 3),
            "origin_node": self.origin_node,
            "version": self.version,
            "project": self.project,
            "occurred_at": self.occurred_at,
        }


@dataclass(frozen=True)
class NewMemory:
    """A validated, normalised memory about to be written (`MemoryStore.put_many`)."""

    id: str
    text: str
    tags: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    session_id: str | None = None
    project: str | None = None
    occurred_at: float | None = None
    """The time it describes (unix seconds, within `OCCURRED_RANGE`), when known."""


@dataclass(frozen=True)
class StoredMemory:
    """What a store call did: the memory as it now is, and whether it was new (or brought back)."""

    memory: Memory
    created: bool
    embedded: bool
    redacted: bool = False


@dataclass(frozen=True)
class SearchFilters:
    session_id: str | None = None
    source: str | None = None
    tags: tuple[str, ...] = ()
    since: float | None = None
    until: float | None = None
    """The time window, compared with each memory's time (`Memory.when`: the time it describes when known,
    else when it was stored)."""
    projects: tuple[str, ...] | None = None
    """The scope: memories of these projects, plus those of no project and those tagged `global`
    (`GLOBAL_TAG`); None: every project."""

    @property
    def empty(self) -> bool:
        return not (
            self.session_id
            or self.source
            or self.tags
            or self.since is not None
            or self.until is not None
            or self.projects is not None
        )


@dataclass(frozen=True)
class Hit:
    memory: Memory
    score: float
    vector_rank: int | None = None
    keyword_rank: int | None = None

    def to_dict(self) -> dict[str, Any]:
        data = self.memory.to_dict()
        data["score"] = round(self.score, 6)
        return data


@dataclass
class StoreStats:
    path: str
    memories: int
    deleted: int
    embedded: int
    pending_embeddings: int
    tags: int
    sessions: int
    learning_queue: int
    file_bytes: int
    wal_bytes: int
    schema_version: int
    active_model: str | None
    active_dim: int | None
    other_spaces: list[dict[str, Any]] = field(default_factory=list)
