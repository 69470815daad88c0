"""The learning loop's records: a cleaned tool use (a training example), a batch taken from a learning queue,
and a published adapter. The store keeps them, the hub carries them, ml trains on them and the front ends
show them, so they live here, below every one of those layers (standard library only).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class ToolUse:
    """One successful interaction, cleaned: what was asked, which tool answered it, with what arguments."""

    query: str
    tool: str
    arguments: dict[str, Any]
    result: str
    timestamp: float

    @property
    def key(self) -> str:
        """Identity for de-duplication: the same request answered the same way is one example."""
        canonical = json.dumps([" ".join(self.query.lower().split()), self.tool, self.arguments], sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "tool": self.tool,
            "arguments": self.arguments,
            "result": self.result,
            "timestamp": self.timestamp,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ToolUse:
        return cls(
            str(data["query"]),
            str(data["tool"]),
            dict(data["arguments"]),
            str(data.get("result", "")),
            float(data.get("timestamp", 0.0)),
        )


@dataclass(frozen=True)
class QueueBatch:
    """Entries taken from a learning queue, with what the source needs to acknowledge them later."""

    entries: list[dict[str, Any]]
    ids: list[str]


@dataclass(frozen=True)
class AdapterInfo:
    """A published LoRA adapter: immutable once published, identified by an increasing version."""

    version: int
    sha256: str
    size: int
    base_model: str
    created_at: float
    node: str
    metrics: dict[str, Any] = field(default_factory=dict)
    active: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LearningEntry:
    user_query: str
    tool_used: str
    tool_input: str
    result: str
    success: bool
    session_id: str | None
    timestamp: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "user_query": self.user_query,
            "tool_used": self.tool_used,
            "tool_input": self.tool_input,
            "result": self.result,
            "success": self.success,
            "session_id": self.session_id,
            "timestamp": self.timestamp,
        }
