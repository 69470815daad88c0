"""A coding session's state as the seed's `get_context` describes it, and a flagged conflict between two edits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Session:
    session_id: str
    context: dict[str, Any] = field(default_factory=dict)
    files: tuple[str, ...] = ()
    current_task: str = ""
    updated_at: float | None = None
    """When the session was last written; None for a session never written (an empty context)."""
    version: int = 0
    closed_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "timestamp": self.updated_at,
            "context": self.context,
            "files": list(self.files),
            "current_task": self.current_task,
            "version": self.version,
            "closed_at": self.closed_at,
        }
