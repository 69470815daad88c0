"""Search primitives over one connection: vector KNN (sqlite-vec) and BM25 keyword (FTS5); fusion is retrieval's.

Filters are applied inside each search, never after it: a filtered query asks sqlite-vec and FTS5 for
the best matches among the filtered rows, so a rare tag cannot lose its matches to a top-k cut. The ANN
path keeps that promise too: a filter matching few rows is answered exactly over exactly those rows, and a
broad one searches the index for more candidates until k of them pass the filter.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any

import apsw
import numpy as np
import numpy.typing as npt

from hivemind_app.records.memories import GLOBAL_TAG, SearchFilters
from hivemind_app.store.ann import AnnIndex
from hivemind_app.store.db import all_rows
from hivemind_app.store.models import EmbeddingSpace

# sqlite-vec refuses k above this.
MAX_KNN_K = 4096

_WORD = re.compile(r"\w+", re.UNICODE)
_GLOB_CHARS = re.compile(r"[*?\[]")


def when_sql(alias: str = "m") -> str:
    """A memory's time in SQL (`Memory.when`): the time it describes when known, else when it was stored;
    spelled as the `memories_when` index (migration 0016) spells it, so a time filter reads that index."""
    prefix = f"{alias}." if alias else ""
    return f"coalesce({prefix}occurred_at, {prefix}created_at)"


def filter_sql(filters: SearchFilters, alias: str = "m") -> tuple[str, list[Any]]:
    """A WHERE fragment (always starting with the live-row condition) and its parameters."""
    clauses = [f"{alias}.deleted = 0"]
    params: list[Any] = []
    if filters.session_id:
        clauses.append(f"{alias}.session_id = ?")
        params.append(filters.session_id)
    if filters.source:
        op = "GLOB" if _GLOB_CHARS.search(filters.source) else "="
        clauses.append(
            f"EXISTS (SELECT 1 FROM memory_sources s WHERE s.memory_rowid = {alias}.rowid AND s.source {op} ?)"
        )
        params.append(filters.source)
    for tag in filters.tags:
        clauses.append(f"EXISTS (SELECT 1 FROM memory_tags t WHERE t.memory_rowid = {alias}.rowid AND t.tag = ?)")
        params.append(tag)
    if filters.since is not None:
        clauses.append(f"{when_sql(alias)} >= ?")
        params.append(filters.since)
    if filters.until is not None:
        clauses.append(f"{when_sql(alias)} < ?")
        params.append(filters.until)
    if filters.projects is not None:
        clauses.append(
            f"({alias}.project IS NULL OR {alias}.project IN (SELECT value FROM json_each(?)) OR EXISTS "
            f"(SELECT 1 FROM memory_tags g WHERE g.memory_rowid = {alias}.rowid AND g.tag = ?))"
        )
        params.extend([json.dumps(list(filters.projects)), GLOBAL_TAG])
    return " AND ".join(clauses), params


def rowids_where(conn: apsw.Connection, rowids: Sequence[int], where: str, params: Sequence[Any] = ()) -> list[int]:
    """Those of `rowids` whose memory row (alias `m`) satisfies `where`, e.g. a `filter_sql` fragment."""
    rows = all_rows(
        conn,
        f"SELECT m.rowid FROM memories m WHERE m.rowid IN (SELECT value FROM json_each(?)) AND {where}",
        [json.dumps(list(rowids)), *params],
    )
    return [int(r[0]) for r in rows]


def filter_candidates(conn: apsw.Connection, filters: SearchFilters, limit: int) -> list[int] | None:
    """The live rowids matching `filters` when there are at most `limit` of them; None when there are more.

    Each condition is read from its own index (tags, session, source, time) with a LIMIT, so a broad
    condition costs at most `limit` index entries; the narrowest one drives, and only when there are other
    conditions are its rows checked against the full filter. Tag, source and session rows exist only for
    live memories (a tombstone drops them; the session index covers live rows only).
    """
    parts: list[tuple[str, list[Any]]] = []
    for tag in filters.tags:
        parts.append(("SELECT memory_rowid FROM memory_tags WHERE tag = ?", [tag]))
    if filters.session_id:
        parts.append(("SELECT rowid FROM memories WHERE session_id = ? AND deleted = 0", [filters.session_id]))
    if filters.source:
        op = "GLOB" if _GLOB_CHARS.search(filters.source) else "="
        parts.append((f"SELECT memory_rowid FROM memory_sources WHERE source {op} ?", [filters.source]))
    if filters.since is not None or filters.until is not None:
        since = filters.since if filters.since is not None else float("-inf")
        until = filters.until if filters.until is not None else float("inf")
        when = when_sql("")
        parts.append((f"SELECT rowid FROM memories WHERE deleted = 0 AND {when} >= ? AND {when} < ?", [since, until]))
    # the project scope (this project, no project, or tagged global) has no one index to drive: it only
    # narrows the other conditions' rows
    narrowest: list[int] | None = None
    for sql, params in parts:
        rows = [int(r[0]) for r in conn.execute(f"{sql} LIMIT ?", [*params, limit + 1])]
        if len(rows) <= limit and (narrowest is None or len(rows) < len(narrowest)):
            narrowest = rows
        if narrowest is not None and not narrowest:
            return []
    if narrowest is None or (len(parts) == 1 and filters.projects is None):
        return narrowest
    where, params = filter_sql(filters)
    return rowids_where(conn, narrowest, where, params)


# Words that carry no topic in a question; dropped from keyword queries so that "what was I doing with X"
# matches notes about X, not every note containing "with".
STOPWORDS = frozenset(
    [
        "a",
        "about",
        "after",
        "all",
        "also",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "been",
        "before",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doesn",
        "doing",
        "don",
        "done",
        "for",
        "from",
        "had",
        "has",
        "have",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "isn",
        "it",
        "its",
        "just",
        "me",
        "my",
        "no",
        "not",
        "of",
        "on",
        "or",
        "our",
        "so",
        "some",
        "such",
        "t",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "to",
        "too",
        "up",
        "us",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
    ]
)
_MAX_TERMS = 12


def fts_terms(text: str) -> list[str]:
    """The query's terms as FTS5 phrases, stopwords dropped (unless nothing else is left).

    Each whitespace-separated chunk becomes a phrase of its word tokens, so `torch.compile` matches the
    adjacent words `torch compile` and `test_reconnect_backoff` its three parts in order.
    """
    phrases: list[str] = []
    fallback: list[str] = []
    for chunk in text.split():
        words = _WORD.findall(chunk.lower())
        if not words:
            continue
        phrase = '"' + " ".join(words) + '"'
        if phrase in phrases or phrase in fallback:
            continue
        if len(words) == 1 and words[0] in STOPWORDS:
            fallback.append(phrase)
        else:
            phrases.append(phrase)
    return (phrases or fallback)[:_MAX_TERMS]


def fts_query(text: str, strict: bool = True) -> str | None:
    """A safe FTS5 query for free text, or None when the text has no word characters.

    Strict: one or two terms must all match; three or more need any two of them (a minimum-should-match
    of two), so a long question does not match every note that shares one common word with it. Relaxed:
    any term matches. BM25 ranks notes holding more, and rarer, terms first either way.
    """
    terms = fts_terms(text)
    if not terms:
        return None
    if not strict or len(terms) == 1:
        return " OR ".join(terms)
    if len(terms) == 2:
        return f"{terms[0]} AND {terms[1]}"
    pairs = [f"({a} AND {b})" for i, a in enumerate(terms) for b in terms[i + 1 :]]
    return " OR ".join(pairs)


_VOCAB = "temp.memories_fts_vocab"
# The FTS table's own tokenizer (migrations/0001_memories.sql), so a query term is counted as the index spells it.
_TOKENIZER = ("porter", ["unicode61", "remove_diacritics", "2"])


def _idf(docs: int, total: int) -> float:
    """FTS5's bm25 idf: log((N - n + 0.5) / (n + 0.5)), floored as FTS5 floors it. n is capped at N: the two
    are counted by separate reads, and a write landing between them (another process) can make n > N."""
    docs = min(docs, total)
    return max(1e-6, math.log((total - docs + 0.5) / (docs + 0.5)))


class TermCounts:
    """How many memories hold each index token, remembered: counting one reads its whole posting list (~30 ms
    for a token in half of 1M memories), and a hybrid search counts every token of its question. The counts
    are kept while the store is unchanged: `check` forgets them all when this process wrote memories since
    (`Database.memory_writes`) or another connection committed anything (`PRAGMA data_version`, one cheap
    read), so a memory just stored, or deleted, is counted at once (a token searched before it was stored
    does not keep its count of 0). At most `max_terms` tokens are kept (all forgotten when full). Used under
    the store's lock."""

    def __init__(self, max_terms: int = 50_000) -> None:
        self.max_terms = max_terms
        self._known: dict[str, int] = {}
        self._seen: tuple[int, int] | None = None  # (data_version, this process's memory writes) counted at

    def check(self, conn: apsw.Connection, own_writes: int) -> None:
        """Forget every count if the memories may have changed since they were counted."""
        state = (int(all_rows(conn, "PRAGMA data_version")[0][0]), own_writes)
        if state != self._seen:
            self._known.clear()
            self._seen = state

    def count(self, conn: apsw.Connection, token: str) -> int:
        known = self._known.get(token)
        if known is not None:
            return known
        rows = all_rows(conn, f"SELECT doc FROM {_VOCAB} WHERE term = ?", (token,))
        count = int(rows[0][0]) if rows else 0
        if len(self._known) >= self.max_terms:
            self._known.clear()
        self._known[token] = count
        return count


def keyword_scale(conn: apsw.Connection, query: str, counts: TermCounts | None = None) -> float | None:
    """The BM25 score of a memory of average length holding each of the query's terms once: the sum of their
    idfs. A keyword score divided by it is the share of the query's evidence a memory carries (a rare
    identifier weighs more than a common word), comparable across queries. None when the query has no terms.

    Document counts come from an fts5vocab table (one index seek per token); a phrase counts as its rarest
    token (its own count is at most that). N is the largest rowid: deleted rows make it a little high, and it
    enters through a logarithm. `counts`: token counts remembered between calls (`TermCounts`, checked by the
    caller).
    """
    terms = fts_terms(query)
    if not terms:
        return None
    conn.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS {_VOCAB} USING fts5vocab(main, memories_fts, row)")
    total = all_rows(conn, "SELECT max(rowid) FROM memories")[0][0] or 0
    tokenize = conn.fts5_tokenizer(*_TOKENIZER)
    scale = 0.0
    counter = counts if counts is not None else TermCounts()
    for phrase in terms:
        tokens = [t[2] for t in tokenize(phrase.strip('"').encode(), apsw.FTS5_TOKENIZE_QUERY, None) if len(t) > 2]
        rarest = min((counter.count(conn, token) for token in tokens), default=0)
        scale += _idf(int(rarest), max(int(total), 1))
    return scale or None


def keyword_search(
    conn: apsw.Connection, query: str, k: int, filters: SearchFilters, relax: bool = True
) -> list[tuple[int, float]]:
    """(rowid, score) best first; score is the BM25 relevance, larger is better.

    With `relax`, a strict query that finds nothing is retried matching any single term.

    Without filters the index is read alone: it holds exactly the live memories (migration 0001's triggers
    take a tombstone out), so joining `memories` for the live-row condition added a row lookup for every
    match BM25 scores: ~40% of the keyword side's time at 1M memories (bench/keyword_latency.py).
    """
    params: list[Any] = []
    if filters.empty:
        sql = (
            "SELECT rowid, bm25(memories_fts) AS rank FROM memories_fts "
            "WHERE memories_fts MATCH ? ORDER BY rank LIMIT ?"
        )
    else:
        where, params = filter_sql(filters)
        sql = (
            "SELECT f.rowid, bm25(memories_fts) AS rank FROM memories_fts f "
            "JOIN memories m ON m.rowid = f.rowid "
            f"WHERE memories_fts MATCH ? AND {where} ORDER BY rank LIMIT ?"
        )
    attempts = [fts_query(query, strict=True)]
    if relax:
        attempts.append(fts_query(query, strict=False))
    for match in attempts:
        if match is None:
            return []
        rows = all_rows(conn, sql, [match, *params, k])
        if rows:
            return [(int(rowid), -float(rank)) for rowid, rank in rows]
    return []


def vector_search(
    conn: apsw.Connection,
    space: EmbeddingSpace,
    query_vector: npt.NDArray[np.float32],
    k: int,
    filters: SearchFilters,
) -> list[tuple[int, float]]:
    """(rowid, cosine similarity) best first, exact (sqlite-vec brute force)."""
    k = min(k, MAX_KNN_K)
    blob = np.asarray(query_vector, dtype=np.float32).tobytes()
    if filters.empty:
        sql = f"SELECT rowid, distance FROM {space.table} WHERE embedding MATCH ? AND k = ? ORDER BY distance"
        rows = all_rows(conn, sql, (blob, k))
    else:
        where, params = filter_sql(filters)
        sql = (
            f"SELECT rowid, distance FROM {space.table} WHERE embedding MATCH ? AND k = ? "
            f"AND rowid IN (SELECT m.rowid FROM memories m WHERE {where}) ORDER BY distance"
        )
        rows = all_rows(conn, sql, [blob, k, *params])
    return [(int(rowid), 1.0 - float(distance)) for rowid, distance in rows]


def ann_vector_search(
    conn: apsw.Connection,
    index: AnnIndex,
    query_vector: npt.NDArray[np.float32],
    k: int,
    filters: SearchFilters,
) -> list[tuple[int, float]]:
    """(rowid, cosine similarity) best first, from the approximate index (refreshed by the caller)."""
    k = min(k, MAX_KNN_K)
    hits: list[tuple[int, float]]
    if filters.empty:
        hits = index.search(query_vector, k) or []
    else:
        where, params = filter_sql(filters)
        rowids = filter_candidates(conn, filters, index.config.exact_filter_limit)
        if rowids is not None:  # few matches: exact over exactly those (a rare tag loses nothing)
            hits = index.exact_among(query_vector, rowids, k)
        else:

            def allowed(rowids: list[int]) -> set[int]:
                return set(rowids_where(conn, rowids, where, params))

            # Many rows match, so the index finds k of them among a few times k/share candidates; a filter
            # whose parts are each broad but rare together would need too many: answered exactly instead.
            ann_hits = index.search(
                query_vector, k, allowed, max_count=max(50_000, 4 * index.config.exact_filter_limit)
            )
            if ann_hits is None:
                return vector_search(conn, index.space, query_vector, k, filters)
            hits = ann_hits
    if not hits:
        return hits
    # A tombstoned memory is never returned, whatever the index holds.
    live = set(rowids_where(conn, [rowid for rowid, _ in hits], "m.deleted = 0"))
    return [hit for hit in hits if hit[0] in live]
