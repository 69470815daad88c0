from __future__ import annotations

import pytest

from hivemind_app.config import Settings
from hivemind_app.hive import Hive, MemoryDraft
from hivemind_app.ml.embedder import Embedder
from hivemind_app.store import search
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


def test_an_unfiltered_keyword_search_reads_the_index_alone_and_still_never_returns_a_deleted_memory(
    hive: Hive,
) -> None:
    """The FTS index holds exactly the live memories, so an unfiltered search needs no row lookup per match
    (the join cost ~40% of the keyword side at 1M memories, bench/keyword_latency.py)."""
    from hivemind_app.records.memories import SearchFilters
    from hivemind_app.store.search import keyword_search

    kept = hive.store_memory("the cert renewal job runs at 03:00").memory
    gone = hive.store_memory("the cert renewal job used to run hourly").memory
    hive.delete_memory(gone.id)
    conn = hive.parts.db.conn
    statements: list[str] = []

    def record(_cursor: object, sql: str, _bindings: object) -> bool:
        statements.append(sql)
        return True

    conn.exec_trace = record
    try:
        found = keyword_search(conn, "cert renewal job", 10, SearchFilters())
        filtered = keyword_search(conn, "cert renewal job", 10, SearchFilters(since=0))
    finally:
        conn.exec_trace = None
    by_id = {m.id: rowid for rowid, m in hive.parts.store.get_many([r for r, _ in found + filtered]).items()}
    assert set(by_id) == {kept.id}
    searches = [s for s in statements if "MATCH" in s]
    assert "JOIN memories" not in searches[0] and "JOIN memories" in searches[-1]


def test_term_counts_are_counted_once_while_the_store_is_unchanged_and_again_after_any_write(
    hive: Hive, settings: Settings, embedder: Embedder
) -> None:
    """Counting a token reads its posting list (tens of ms for a common word at 1M memories): a hybrid search
    reuses the count while no memory was written, here or by another connection; a memory just stored or
    deleted is counted at once (a token searched before it was stored does not keep its count of 0)."""
    store = hive.parts.store
    hive.store_memories([MemoryDraft(f"note {n} on the docs site") for n in range(100)])
    conn = hive.parts.db.conn
    vocab_reads: list[str] = []

    def record(_cursor: object, sql: str, _bindings: object) -> bool:
        if "memories_fts_vocab WHERE" in sql:
            vocab_reads.append(sql)
        return True

    def counted_now() -> float | None:  # the same query counted from scratch, nothing remembered
        return search.keyword_scale(conn, "zeppelin")

    conn.exec_trace = record
    try:
        unknown = store.keyword_scale("zeppelin")
        assert store.keyword_scale("zeppelin") == unknown and len(vocab_reads) == 1  # remembered
        stored = hive.store_memory("the zeppelin build broke on Friday").memory  # +1%: still counted again
        assert store.keyword_scale("zeppelin") == counted_now() != unknown
        with Hive(settings, embedder=embedder) as other:  # another connection to the same store
            other.store_memory("the zeppelin docs moved to the wiki")
        assert store.keyword_scale("zeppelin") == counted_now()
        hive.delete_memory(stored.id)
        assert store.keyword_scale("zeppelin") == counted_now()
        reads = len(vocab_reads)
        assert store.keyword_scale("zeppelin") == counted_now() and len(vocab_reads) == reads + 1  # ours: remembered
    finally:
        conn.exec_trace = None
