"""Score-aware fusion (retrieval/fusion.py `score_aware`, `search.fusion = "score"`, the default): cosine plus
keyword evidence measured against the query's ideal BM25 score, with the strict keyword query relaxed when it
finds nothing; `search.fusion = "rrf"` gives back the reciprocal-rank fusion of before, ranking for ranking.

The data: developer notes of tests/retrieval/test_search_quality.py beside real standard-library docstrings
(the distractors bench/retrieval.py's paraphrase set found hybrid losing to), and reference lines built from
the standard library's errno names.
"""

from __future__ import annotations

import errno
import inspect
import os
import time
import uuid

import pytest

from hivemind_app.config import Settings
from hivemind_app.hive import Hive, MemoryDraft
from hivemind_app.ml.embedder import Embedder
from hivemind_app.records.memories import SearchFilters
from hivemind_app.retrieval.candidates import Candidate, Generator, Ranking
from hivemind_app.retrieval.fusion import keyword_evidence, reciprocal_rank, score_aware
from hivemind_app.retrieval.query import has_identifier
from tests.retrieval.test_search_quality import NOTES

# Docstrings that share words ("time", "event", "stored") with the time-zone note's paraphrase below.
DISTRACTORS = [inspect.getdoc(obj) or "" for obj in (uuid.uuid1, uuid.uuid4, time.time, time.sleep)]
ERRNO_LINES = {
    name: f"{name} (errno {code}): {os.strerror(code)}"
    for code, name in sorted(errno.errorcode.items())
    if name in ("ECONNRESET", "ECONNREFUSED", "ECONNABORTED", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH")
}


def ranking(generator: Generator, *pairs: tuple[int, float], scale: float | None = None) -> Ranking:
    return Ranking(generator, tuple(Candidate(rowid, score) for rowid, score in pairs), scale)


# -- the fusion itself --------------------------------------------------------------------------------


def test_a_strong_vector_match_is_not_outvoted_by_a_weak_keyword_match_that_sits_in_both_lists() -> None:
    vector = ranking(Generator.VECTOR, (1, 0.62), (2, 0.41))  # 1: the note; 2: a docstring sharing "time"
    keyword = ranking(Generator.KEYWORD, (2, 3.0), scale=15.0)  # 2 holds a fifth of the query's evidence
    assert [f.rowid for f in reciprocal_rank([vector, keyword], k=60)] == [2, 1]  # the flaw fixed here
    fused = score_aware([vector, keyword], keyword_weight=0.25, power=2.0)
    assert [f.rowid for f in fused] == [1, 2]
    assert fused[0].score == pytest.approx(0.75 * 0.62)
    assert fused[1].score == pytest.approx(0.75 * 0.41 + 0.25 * (3.0 / 15.0) ** 2)
    assert fused[1].ranks == {Generator.VECTOR: 2, Generator.KEYWORD: 1}


def test_a_memory_holding_the_whole_query_outranks_a_closer_vector_neighbour() -> None:
    vector = ranking(Generator.VECTOR, (7, 0.61), (8, 0.39))  # HTTP 426 looks like HTTP 428 to the model
    keyword = ranking(Generator.KEYWORD, (8, 9.5), scale=9.0)  # only 8 holds "428": full evidence, capped at 1
    assert [f.rowid for f in score_aware([vector, keyword], keyword_weight=0.5, power=2.0)] == [8, 7]
    assert [f.rowid for f in score_aware([vector, keyword], keyword_weight=0.0, power=2.0)] == [7, 8]


def test_keyword_evidence_is_the_share_of_the_ideal_score_capped_at_one_and_raised_to_the_power() -> None:
    keyword = ranking(Generator.KEYWORD, (1, 12.0), (2, 4.0), (3, 1.0), scale=8.0)
    assert keyword_evidence(keyword, power=1.0) == {1: 1.0, 2: 0.5, 3: 0.125}
    assert keyword_evidence(keyword, power=2.0) == {1: 1.0, 2: 0.25, 3: 0.015625}
    unmeasured = ranking(Generator.KEYWORD, (1, 12.0), (2, 3.0))  # no scale: against its own best
    assert keyword_evidence(unmeasured, power=1.0) == {1: 1.0, 2: 0.25}
    assert keyword_evidence(ranking(Generator.KEYWORD), power=2.0) == {}


def test_a_rewrite_counts_on_its_side_as_the_better_of_the_two_and_keeps_its_own_rank() -> None:
    vector = ranking(Generator.VECTOR, (1, 0.5), (2, 0.3))
    rewrite = ranking(Generator.VECTOR_REWRITE, (2, 0.7), (1, 0.2))
    fused = {f.rowid: f for f in score_aware([vector, rewrite], keyword_weight=0.25, power=2.0)}
    assert fused[1].score == pytest.approx(0.75 * 0.5) and fused[2].score == pytest.approx(0.75 * 0.7)
    assert fused[2].ranks == {Generator.VECTOR: 2, Generator.VECTOR_REWRITE: 1}


def test_negative_similarity_counts_as_none_and_equal_scores_go_to_the_older_row() -> None:
    vector = ranking(Generator.VECTOR, (9, -0.2), (4, -0.1))
    keyword = ranking(Generator.KEYWORD, (9, 2.0), (4, 2.0), scale=4.0)
    fused = score_aware([vector, keyword], keyword_weight=0.5, power=1.0)
    assert [(f.rowid, f.score) for f in fused] == [(4, 0.25), (9, 0.25)]


@pytest.mark.parametrize(
    ("query", "identifier"),
    [
        ("what does HTTP 428 mean?", True),
        ("ECONNRESET", True),
        ("why does test_reconnect_backoff fail", True),
        ("torch.compile speed", True),
        ("the modelValidate call", True),
        ("port 5433.", True),
        ("what time zone are the stored event times in?", False),
        ("Why did we upgrade the web server. It was slow!", False),
        ("a test that fails now and then on Apple machines", False),
    ],
)
def test_a_query_holding_an_identifier_is_told_from_one_in_plain_words(query: str, identifier: bool) -> None:
    assert has_identifier(query) is identifier


# -- through a real store -----------------------------------------------------------------------------


def test_the_ideal_score_weighs_a_rare_term_above_a_common_one_and_counts_stems(hive: Hive) -> None:
    hive.store_memories([MemoryDraft(f"the build {word} again") for word in ("failed", "passed", "hung")])
    hive.store_memories([MemoryDraft("ECONNRESET while running the build")])
    store = hive.parts.store
    rare, common = store.keyword_scale("ECONNRESET"), store.keyword_scale("build")
    assert rare is not None and common is not None and rare > common > 0
    assert store.keyword_scale("builds") == pytest.approx(common)  # counted as the index spells it (stemmed)
    assert store.keyword_scale("ECONNRESET build") == pytest.approx(rare + common)
    assert store.keyword_scale("!!! ...") is None


def test_switching_score_fusion_off_gives_the_reciprocal_rank_fusion_of_the_strict_lists(
    settings: Settings, embedder: Embedder
) -> None:
    settings.search.fusion = "rrf"
    with Hive(settings, embedder=embedder) as hive:
        hive.store_memories([MemoryDraft(text) for text in [*NOTES.values(), *DISTRACTORS]])
        query = "what time zone are the stored event times in"
        result = hive.search_memory(query, limit=10)
        retrieval, filters = hive.parts.retrieval, SearchFilters()
        vector = retrieval.vector.generate(query, 50, filters)
        strict = retrieval.keyword.generate(query, 50, filters, relax=False)
        expected = reciprocal_rank([vector, strict], settings.search.rrf_k)[:10]
        by_rowid = hive.parts.store.get_many(f.rowid for f in expected)
    assert [h.memory.id for h in result.hits] == [by_rowid[f.rowid].id for f in expected]
    assert [h.score for h in result.hits] == pytest.approx([f.score for f in expected])


@pytest.mark.ranking
def test_hybrid_puts_the_paraphrased_note_first_among_docstrings_that_share_its_words(
    settings: Settings, embedder: Embedder
) -> None:
    query = "what time zone are the stored event times in"
    found = {}
    for fusion in ("score", "rrf"):
        settings.search.fusion = fusion  # type: ignore[assignment]
        with Hive(settings, embedder=embedder) as hive:
            if fusion == "score":
                hive.store_memories([MemoryDraft(text) for text in [*NOTES.values(), *DISTRACTORS]])
            found[fusion] = [h.memory.text for h in hive.search_memory(query, limit=5).hits]
            assert hive.search_memory(query, mode="vector", limit=1).hits[0].memory.text == NOTES["tz"]
    assert found["score"][0] == NOTES["tz"]
    assert found["rrf"][0] != NOTES["tz"]  # rank fusion let a docstring holding "time" twice outvote it


@pytest.mark.ranking
def test_an_identifier_asked_in_a_question_is_found_though_the_strict_keyword_query_finds_nothing(hive: Hive) -> None:
    hive.store_memories([MemoryDraft(text) for text in [*ERRNO_LINES.values(), *NOTES.values()]])
    for name in ("ECONNRESET", "ECONNREFUSED", "EPIPE"):  # neighbours in meaning: vector alone confuses them
        query = f"what does {name} mean"
        assert hive.parts.store.keyword_search(query, 10, SearchFilters(), relax=False) == []
        assert hive.search_memory(query, limit=3).hits[0].memory.text == ERRNO_LINES[name]
