from __future__ import annotations

import pytest

from hivemind_app.hive import Hive
from hivemind_app.store.search import fts_query, fts_terms


def test_identifiers_become_phrases_of_their_parts() -> None:
    assert fts_terms("torch.compile") == ['"torch compile"']
    assert fts_terms("test_reconnect_backoff") == ['"test_reconnect_backoff"']


def test_stopwords_are_dropped_unless_nothing_else_is_left() -> None:
    assert fts_terms("what was I doing with PyTorch") == ['"pytorch"']
    assert fts_terms("what is this") == ['"what"', '"is"', '"this"']


def test_quotes_and_fts_operators_in_user_text_cannot_break_the_query() -> None:
    assert fts_query('"unbalanced AND NEAR( *') == '"unbalanced" AND "near"'
    assert fts_query("?!") is None


def test_long_questions_need_two_terms_to_match_strictly_and_one_when_relaxed() -> None:
    strict = fts_query("redis aof rewrite")
    assert strict == '("redis" AND "aof") OR ("redis" AND "rewrite") OR ("aof" AND "rewrite")'
    assert fts_query("redis aof rewrite", strict=False) == '"redis" OR "aof" OR "rewrite"'


def test_the_query_embedding_cache_prunes_its_oldest_entries(hive: Hive, monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    from hivemind_app.store import memory_store

    vector = np.ones(4, dtype=np.float32)
    for n in range(5):
        hive.parts.store.cache_embedding("m", f"h{n}", vector, keep=3)
    monkeypatch.setattr(memory_store.random, "random", lambda: 0.0)  # force the prune on the next insert
    hive.parts.store.cache_embedding("m", "h5", vector, keep=3)
    kept = {r[0] for r in hive.parts.db.conn.execute("SELECT text_hash FROM embedding_cache")}
    assert kept == {"h3", "h4", "h5"}


def test_keyword_evidence_survives_a_term_counted_in_more_rows_than_the_total_read_before_it() -> None:
    # another process's write can land between the two reads (seen with four processes on one store)
    from hivemind_app.store.search import _idf

    assert _idf(docs=7, total=5) == pytest.approx(1e-6)
    assert _idf(docs=1, total=100) > _idf(docs=50, total=100)
