"""Fusion (retrieval/fusion.py): one ranking passes through; several are fused by reciprocal rank, each
candidate's ranks named by the generator that ranked it."""

from __future__ import annotations

import pytest

from hivemind_app.retrieval.candidates import Candidate, Fused, Generator, Ranking
from hivemind_app.retrieval.fusion import reciprocal_rank, score_aware, single


def ranking(generator: Generator, *pairs: tuple[int, float]) -> Ranking:
    return Ranking(generator, tuple(Candidate(rowid, score) for rowid, score in pairs))


def test_a_single_ranking_keeps_its_order_its_scores_and_its_generator() -> None:
    keyword = ranking(Generator.KEYWORD, (7, 12.5), (3, 4.0), (9, 0.25))
    assert single(keyword) == [
        Fused(7, 12.5, {Generator.KEYWORD: 1}),
        Fused(3, 4.0, {Generator.KEYWORD: 2}),
        Fused(9, 0.25, {Generator.KEYWORD: 3}),
    ]
    assert single(ranking(Generator.VECTOR)) == []


def test_reciprocal_rank_sums_one_over_k_plus_rank_and_orders_best_first() -> None:
    vector = ranking(Generator.VECTOR, (1, 0.9), (2, 0.8), (3, 0.7))
    keyword = ranking(Generator.KEYWORD, (3, 20.0), (4, 10.0))
    fused = reciprocal_rank([vector, keyword], k=60)
    assert [f.rowid for f in fused] == [3, 1, 2, 4]
    assert fused[0].ranks == {Generator.VECTOR: 3, Generator.KEYWORD: 1}  # agreement between the lists wins
    scores = {f.rowid: f.score for f in fused}
    assert scores[3] == pytest.approx(1 / 63 + 1 / 61)
    assert scores[1] == pytest.approx(1 / 61)
    assert scores[2] == pytest.approx(1 / 62)
    assert scores[4] == pytest.approx(1 / 62)
    # the generators' own scores (cosine, BM25) play no part: only the ranks do
    louder = ranking(Generator.KEYWORD, (3, 9e9), (4, 1e-9))
    assert [(f.rowid, f.score) for f in reciprocal_rank([vector, louder], k=60)] == [(f.rowid, f.score) for f in fused]


def test_k_sets_how_much_the_top_ranks_count() -> None:
    vector = ranking(Generator.VECTOR, (1, 0.9), (2, 0.8))
    keyword = ranking(Generator.KEYWORD, (2, 5.0), (3, 1.0))
    assert [f.score for f in reciprocal_rank([vector, keyword], k=1)] == pytest.approx([1 / 3 + 1 / 2, 1 / 2, 1 / 3])


def test_equal_scores_are_ordered_by_rowid() -> None:
    vector = ranking(Generator.VECTOR, (40, 0.9), (10, 0.8))
    keyword = ranking(Generator.KEYWORD, (10, 3.0), (40, 1.0))  # each first once, second once: a tie
    fused = reciprocal_rank([vector, keyword], k=60)
    assert [f.rowid for f in fused] == [10, 40]
    assert fused[0].score == fused[1].score
    # the same rankings in the other order give the same list
    assert reciprocal_rank([keyword, vector], k=60) == fused
    solo = reciprocal_rank([ranking(Generator.VECTOR, (5, 0.1)), ranking(Generator.KEYWORD, (2, 0.1))], k=60)
    assert [f.rowid for f in solo] == [2, 5]


def test_each_candidate_keeps_its_rank_under_the_name_of_each_generator_that_ranked_it() -> None:
    rankings = [
        ranking(Generator.VECTOR, (1, 0.9), (2, 0.5)),
        ranking(Generator.KEYWORD, (2, 8.0)),
        ranking(Generator.VECTOR_REWRITE, (3, 0.8), (1, 0.7)),
        ranking(Generator.KEYWORD_REWRITE, (4, 2.0), (2, 1.0)),
    ]
    ranks = {f.rowid: f.ranks for f in reciprocal_rank(rankings, k=60)}
    assert ranks == {
        1: {Generator.VECTOR: 1, Generator.VECTOR_REWRITE: 2},
        2: {Generator.VECTOR: 2, Generator.KEYWORD: 1, Generator.KEYWORD_REWRITE: 2},
        3: {Generator.VECTOR_REWRITE: 1},
        4: {Generator.KEYWORD_REWRITE: 1},
    }
    assert [str(g) for g in Generator] == ["vector", "keyword", "vector:rewrite", "keyword:rewrite"]


def test_no_rankings_fuse_to_nothing() -> None:
    assert reciprocal_rank([], k=60) == []
    assert reciprocal_rank([ranking(Generator.VECTOR), ranking(Generator.KEYWORD)], k=60) == []


def test_keyword_evidence_capped_at_one_breaks_ties_on_raw_bm25_not_rowid() -> None:
    # a keyword search and its rewrite, no vector side: rowids 1 and 2 both exceed the ideal score (capped at 1)
    original = Ranking(Generator.KEYWORD, (Candidate(1, 5.0), Candidate(2, 9.0), Candidate(3, 1.0)), 4.0)
    rewrite = Ranking(Generator.KEYWORD_REWRITE, (Candidate(2, 2.0), Candidate(1, 6.0)), 4.0)
    fused = score_aware([original, rewrite], 0.3, 1.0)
    assert [f.rowid for f in fused] == [2, 1, 3]
    assert fused[0].score == fused[1].score
