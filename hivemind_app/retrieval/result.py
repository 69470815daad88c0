"""Hydration: fused candidates become `Hit`s with their memories loaded; the `SearchResult` front ends get."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hivemind_app.records.memories import Hit
from hivemind_app.retrieval.candidates import Fused, Generator
from hivemind_app.store.memory_store import MemoryStore


@dataclass(frozen=True)
class SearchResult:
    query: str
    mode: str
    requested_mode: str
    hits: list[Hit]
    fallback: str | None = None
    took_ms: float = 0.0
    reformulated: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "reformulated": self.reformulated,
            "mode": self.mode,
            "requested_mode": self.requested_mode,
            "fallback": self.fallback,
            "took_ms": round(self.took_ms, 3),
            "results": [hit.to_dict() for hit in self.hits],
        }


def hydrate(store: MemoryStore, fused: list[Fused]) -> list[Hit]:
    """The memories behind `fused`, in order; one deleted since it was ranked is dropped, never shown."""
    loaded = store.get_many(f.rowid for f in fused)
    return [
        Hit(
            memory=loaded[f.rowid],
            score=f.score,
            vector_rank=f.ranks.get(Generator.VECTOR),
            keyword_rank=f.ranks.get(Generator.KEYWORD),
        )
        for f in fused
        if f.rowid in loaded and not loaded[f.rowid].deleted
    ]
