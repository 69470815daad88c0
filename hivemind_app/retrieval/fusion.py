"""Fusion: several rankings into one.

- `score_aware` (the default, `search.fusion = "score"`): a weighted sum of what each side measured, on scales
  that mean the same for every query. The vector side is the cosine similarity itself (one model, one scale).
  The keyword side is its evidence: the BM25 score divided by the query's ideal score (`Ranking.scale`, the
  sum of its terms' idfs), so a memory holding the query's rare identifier scores near 1 and one sharing a
  common word or two scores near 0, raised to a power (`keyword_evidence_power`) so that weak evidence fades
  faster than strong evidence. A strong vector match is never outvoted by a weak keyword match that merely
  sits in both lists, which reciprocal-rank fusion allows.
- `reciprocal_rank` (`search.fusion = "rrf"`): score = sum over rankings of 1 / (k + rank). It needs no
  calibration, at the price of ignoring how strong a match is.

A single ranking passes through with its own scores. Ties are broken by rowid so the order is deterministic;
in score fusion first by raw BM25 (evidence is capped at 1, so strong keyword matches tie without a vector side).
"""

from __future__ import annotations

from collections.abc import Sequence

from hivemind_app.retrieval.candidates import Fused, Generator, Ranking

KEYWORD_GENERATORS = frozenset({Generator.KEYWORD, Generator.KEYWORD_REWRITE})


def single(ranking: Ranking) -> list[Fused]:
    """One ranking as the fused list: its own scores and ranks."""
    return [Fused(c.rowid, c.score, {ranking.generator: rank}) for rank, c in enumerate(ranking.candidates, start=1)]


def _ordered(
    scores: dict[int, float], ranks: dict[int, dict[Generator, int]], tiebreak: dict[int, float] | None = None
) -> list[Fused]:
    """Best first; equal scores by `tiebreak` (higher first), then by rowid."""
    tie = tiebreak or {}
    ordered = sorted(scores.items(), key=lambda pair: (-pair[1], -tie.get(pair[0], 0.0), pair[0]))
    return [Fused(rowid, score, ranks[rowid]) for rowid, score in ordered]


def _ranks(rankings: Sequence[Ranking]) -> dict[int, dict[Generator, int]]:
    ranks: dict[int, dict[Generator, int]] = {}
    for ranking in rankings:
        for rank, candidate in enumerate(ranking.candidates, start=1):
            ranks.setdefault(candidate.rowid, {})[ranking.generator] = rank
    return ranks


def reciprocal_rank(rankings: Sequence[Ranking], k: int) -> list[Fused]:
    """Best first; ties broken by rowid so the order is deterministic."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, candidate in enumerate(ranking.candidates, start=1):
            scores[candidate.rowid] = scores.get(candidate.rowid, 0.0) + 1.0 / (k + rank)
    return _ordered(scores, _ranks(rankings))


def keyword_evidence(ranking: Ranking, power: float) -> dict[int, float]:
    """Each candidate's share of the query's ideal BM25 score, capped at 1, raised to `power`. A ranking without
    a scale (not measured) is measured against its own best candidate instead."""
    scale = ranking.scale or max((c.score for c in ranking.candidates), default=0.0)
    if scale <= 0:
        return {c.rowid: 0.0 for c in ranking.candidates}
    return {c.rowid: min(1.0, max(0.0, c.score / scale)) ** power for c in ranking.candidates}


def score_aware(rankings: Sequence[Ranking], keyword_weight: float, power: float) -> list[Fused]:
    """(1 - w) * cosine + w * keyword evidence, each side the best over its rankings (a rewrite's or the
    original's); a candidate one side did not return counts 0 there. Best first."""
    similarity: dict[int, float] = {}
    evidence: dict[int, float] = {}
    bm25: dict[int, float] = {}  # raw, uncapped: breaks the ties evidence capped at 1 leaves (no vector side)
    for ranking in rankings:
        if ranking.generator in KEYWORD_GENERATORS:
            for rowid, value in keyword_evidence(ranking, power).items():
                evidence[rowid] = max(evidence.get(rowid, 0.0), value)
            for candidate in ranking.candidates:
                bm25[candidate.rowid] = max(bm25.get(candidate.rowid, 0.0), candidate.score)
        else:
            for candidate in ranking.candidates:
                similarity[candidate.rowid] = max(similarity.get(candidate.rowid, 0.0), candidate.score)
    scores = {
        rowid: (1 - keyword_weight) * max(0.0, similarity.get(rowid, 0.0)) + keyword_weight * evidence.get(rowid, 0.0)
        for rowid in similarity.keys() | evidence.keys()
    }
    return _ordered(scores, _ranks(rankings), bm25)
