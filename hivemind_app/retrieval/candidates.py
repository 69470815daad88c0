"""The typed lists the stages hand each other."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Generator(StrEnum):
    """Who produced a ranking. A rewrite's ranking is its own generator, so it never poses as another."""

    VECTOR = "vector"
    KEYWORD = "keyword"
    VECTOR_REWRITE = "vector:rewrite"
    KEYWORD_REWRITE = "keyword:rewrite"


@dataclass(frozen=True)
class Candidate:
    rowid: int
    score: float
    """The generator's own score: cosine similarity for vectors, BM25 relevance for keywords (larger is better)."""


@dataclass(frozen=True)
class Ranking:
    """One generator's candidates, best first."""

    generator: Generator
    candidates: tuple[Candidate, ...]
    scale: float | None = None
    """For a keyword ranking: the query's ideal BM25 score (store.search.keyword_scale), so that score / scale
    is the share of the query's evidence a candidate carries. None: not measured (fusion by rank needs none)."""

    @property
    def rowids(self) -> list[int]:
        return [c.rowid for c in self.candidates]


@dataclass(frozen=True)
class Fused:
    """A candidate after fusion: its final score and its 1-based rank in each ranking that held it."""

    rowid: int
    score: float
    ranks: dict[Generator, int] = field(default_factory=dict)
