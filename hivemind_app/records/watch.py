"""Watched folders as front ends see them: a folder's state (`WatchedFolder`), what one reconcile did
(`WatchReport`) and where a memory came from (`SourceSpan`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SourceSpan:
    """A memory's place in a watched file: its path and byte range (end exclusive)."""

    path: str
    start: int
    end: int

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "start": self.start, "end": self.end}


@dataclass(frozen=True)
class WatchedFolder:
    path: str
    tags: tuple[str, ...]
    files: int
    memories: int
    last_change: float | None
    missing: bool
    error: str | None
    skipped: tuple[tuple[str, str], ...] = ()
    suspect: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "tags": list(self.tags),
            "files": self.files,
            "memories": self.memories,
            "last_change": self.last_change,
            "missing": self.missing,
            "suspect": self.suspect,
            "error": self.error,
            "skipped": [{"path": p, "reason": r} for p, r in self.skipped],
        }


@dataclass
class WatchReport:
    """What one reconcile did, over every folder it looked at."""

    files_seen: int = 0
    unchanged: int = 0
    added: int = 0
    changed: int = 0
    removed: int = 0
    moved: int = 0
    chunks_stored: int = 0
    chunks_kept: int = 0
    memories_deleted: int = 0
    hashed: int = 0
    missing_folders: list[str] = field(default_factory=list)
    suspect_folders: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def changes(self) -> int:
        return self.added + self.changed + self.removed + self.moved

    def to_dict(self) -> dict[str, Any]:
        return {
            "files_seen": self.files_seen,
            "unchanged": self.unchanged,
            "added": self.added,
            "changed": self.changed,
            "removed": self.removed,
            "moved": self.moved,
            "chunks_stored": self.chunks_stored,
            "chunks_kept": self.chunks_kept,
            "memories_deleted": self.memories_deleted,
            "missing_folders": self.missing_folders,
            "suspect_folders": self.suspect_folders,
            "skipped": [{"path": p, "reason": r} for p, r in self.skipped],
        }
