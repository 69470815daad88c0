"""Fusion: several rankings into one.

Reciprocal-rank fusion: score = sum over rankings of 1 / (k + rank). It needs no score calibration between
generators (cosine and BM25 live on different scales), at the price of ignoring how strong a match is.
A single ranking passes through with its own scores.
"""

from __future__ import annotations

from collections.abc import Sequence

from hivemind_app.retrieval.candidates import Fused, Generator, Ranking


def single(ranking: Ranking) -> list[Fused]:
    """One ranking as the fused list: its own scores and ranks."""
    return [
        Fused(c.rowid, c.score, {ranking.generator: rank}) for rank, c in enumerate(ranking.candidates, start=1)
    ]


def reciprocal_rank(rankings: Sequence[Ranking], k: int) -> list[Fused]:
    """Best first; ties broken by rowid so the order is deterministic."""
    scores: dict[int, float] = {}
    ranks: dict[int, dict[Generator, int]] = {}
    for ranking in rankings:
        for rank, candidate in enumerate(ranking.candidates, start=1):
            scores[candidate.rowid] = scores.get(candidate.rowid, 0.0) + 1.0 / (k + rank)
            ranks.setdefault(candidate.rowid, {})[ranking.generator] = rank
    ordered = sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))
    return [Fused(rowid, score, ranks[rowid]) for rowid, score in ordered]
