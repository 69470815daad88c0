"""Ranking metrics of bench/retrieval.py, over ranked lists of units (memory keys or session ids).

A ranking of memories becomes a ranking of units first (`units_ranked`): at session granularity a memory
stands for its session, and a session counts once, where its best memory ranks. Then, per question, with
`relevant` the labelled units:

- recall@k: the share of the relevant units in the top k (with one relevant unit: 1 if it is there);
- hit@k: 1 if any relevant unit is in the top k (LongMemEval's `recall_any`; what published session R@k
  figures on LongMemEval usually are);
- all@k: 1 if every relevant unit is in the top k (LongMemEval's `recall_all`); with one relevant unit,
  recall@k, hit@k and all@k agree, with several recall@k (the share) lies between all@k and hit@k;
- MRR@10: 1 / the rank of the first relevant unit in the top 10, else 0;
- NDCG@10: binary gains, discounted by log2(rank + 1), over the ideal ordering of min(|relevant|, 10) hits.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

KS = (1, 5, 10)


def units_ranked(memory_ids: Iterable[str], units_of: Mapping[str, Sequence[str]]) -> list[str]:
    """The units the memories stand for, best first, each once (a memory may stand for several: same text)."""
    seen: dict[str, None] = {}
    for memory_id in memory_ids:
        for unit in units_of[memory_id]:
            seen.setdefault(unit, None)
    return list(seen)


def recall_at(ranked: Sequence[str], relevant: frozenset[str], k: int) -> float:
    return len(relevant.intersection(ranked[:k])) / len(relevant)


def hit_at(ranked: Sequence[str], relevant: frozenset[str], k: int) -> float:
    return 1.0 if relevant.intersection(ranked[:k]) else 0.0


def all_at(ranked: Sequence[str], relevant: frozenset[str], k: int) -> float:
    return 1.0 if relevant.issubset(ranked[:k]) else 0.0


def first_rank(ranked: Sequence[str], relevant: frozenset[str]) -> int | None:
    """1-based rank of the first relevant unit, or None if none was returned."""
    return next((i for i, unit in enumerate(ranked, start=1) if unit in relevant), None)


def mrr_at(ranked: Sequence[str], relevant: frozenset[str], k: int = 10) -> float:
    rank = first_rank(ranked[:k], relevant)
    return 1.0 / rank if rank else 0.0


def ndcg_at(ranked: Sequence[str], relevant: frozenset[str], k: int = 10) -> float:
    dcg = sum(1.0 / math.log2(i + 1) for i, unit in enumerate(ranked[:k], start=1) if unit in relevant)
    ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(len(relevant), k) + 1))
    return dcg / ideal


def question_scores(ranked: Sequence[str], relevant: frozenset[str]) -> dict[str, float]:
    scores = {f"recall_at_{k}": recall_at(ranked, relevant, k) for k in KS}
    scores.update({f"hit_at_{k}": hit_at(ranked, relevant, k) for k in KS})
    scores.update({f"all_at_{k}": all_at(ranked, relevant, k) for k in KS})
    scores["mrr_at_10"] = mrr_at(ranked, relevant)
    scores["ndcg_at_10"] = ndcg_at(ranked, relevant)
    return scores


def mean_scores(per_question: Sequence[Mapping[str, float]], digits: int = 4) -> dict[str, float]:
    if not per_question:
        return {}
    return {name: round(statistics.fmean(q[name] for q in per_question), digits) for name in per_question[0]}


def scored(
    rankings: Sequence[Sequence[str]], relevant: Sequence[frozenset[str]], groups: Sequence[str]
) -> dict[str, Any]:
    """Mean metrics over the questions, and recall@5 / MRR@10 per group of questions (when there are several)."""
    per_question = [question_scores(r, rel) for r, rel in zip(rankings, relevant, strict=True)]
    result: dict[str, Any] = mean_scores(per_question)
    if len(set(groups)) > 1:
        by_group: dict[str, list[Mapping[str, float]]] = {}
        for group, scores in zip(groups, per_question, strict=True):
            by_group.setdefault(group, []).append(scores)
        result["by_group"] = {
            group: {"n": len(rows), **{m: v for m, v in mean_scores(rows).items() if m in ("recall_at_5", "mrr_at_10")}}
            for group, rows in sorted(by_group.items())
        }
    return result
