"""The keyword side of hybrid search at scale: where its time goes, and the previous query beside the current.

    python bench/keyword_latency.py --n 1000000            # builds bench/.cache/keyword-1000000 once (minutes)
    python bench/keyword_latency.py --n 1000000 --queries 300

The keyword side was the slow part of hybrid search at 1M memories (p99 ~83 ms, bench/README.md): this
measures it alone, on a store that holds only what it reads. The store is made with the app's own schema
(`Database`: every migration, the FTS5 table and its triggers) and filled with bench/corpus.py's notes by
plain INSERTs in one transaction: no vectors, no tags, no sources, no embedding (a keyword search reads
none of them, and ingesting 1M notes through `Hive.store_memories` with vectors takes most of an hour on 2
shared cores). It is built into `bench/.cache/keyword-N/` and reused.

The queries are bench/search.py's (written from sampled notes, same seed). For each one, in turns that
alternate query by query (so load from neighbours hits both alike), it times:

- `keyword_scale`: the query's ideal score, counting each token's memories (a read of its posting list), as
  each hybrid search did; `keyword_scale_remembered`: the same with the counts remembered between queries
  (`TermCounts`, as a store now keeps them), after the 20 warm-up queries;
- `joined` (the baseline, the previous query): FTS5 MATCH joined with `memories` for the live-row
  condition, `ORDER BY bm25() LIMIT k`, the relaxed query after a strict one that finds nothing;
- `current`: `store/search.py`'s `keyword_search` as it now is, with the same k and relaxation.

and reports p50 / p99 / mean of each, and of the slowest tenth the number of rows the query matched (what
BM25 must score), so where the time goes can be read off.

Prints one JSON object per line (bench/report.py): `setup`, `build` (when it built the store), `latency`
(one per measured step), `slowest` (the 10 slowest queries of `joined`, with their match counts).
"""

from __future__ import annotations

import argparse
import hashlib
import platform
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import apsw

from bench.corpus import CACHE_DIR, DEFAULT_SEED, load_corpus
from bench.report import cpu_model, emit_line, ms_stats
from bench.search import sample_queries
from hivemind_app.records.memories import SearchFilters
from hivemind_app.store import search
from hivemind_app.store.database import Database
from hivemind_app.store.db import all_rows

K = 50  # what a hybrid search with limit=10 asks each generator for (retrieval/query.py: max(limit x 5, 50))
BATCH = 20_000


def build(path: Path, n: int, seed: int) -> dict[str, float] | None:
    """The store at `path` with the first `n` corpus notes (None when it is there already)."""
    db = Database(path, node_name="bench")
    try:
        have = all_rows(db.conn, "SELECT count(*) FROM memories")[0][0]
        if have >= n * 0.99:  # the corpus repeats a few texts: one memory each
            return None
        if have:
            raise SystemExit(f"{path} holds {have} memories, not {n}: remove it")
        started = time.perf_counter()
        notes = load_corpus(n, seed)
        now = time.time()
        with db.write() as conn:
            for start in range(0, n, BATCH):
                rows = [
                    (hashlib.sha256(note.text.encode()).hexdigest(), note.text, now, now, "bench", start + i + 1)
                    for i, note in enumerate(notes[start : start + BATCH])
                ]
                conn.executemany(
                    "INSERT OR IGNORE INTO memories(id, text, created_at, updated_at, origin_node, version) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    rows,
                )
                print(f"  inserted {start + len(rows)}/{n}", file=sys.stderr, flush=True)
        seconds = time.perf_counter() - started
        db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return {"seconds": round(seconds, 1), "file_mb": round(path.stat().st_size / 2**20, 1)}
    finally:
        db.close()


def joined(conn: apsw.Connection, query: str, k: int) -> list[tuple[int, float]]:
    """The previous keyword query (before 2026-12-06): MATCH joined with `memories` for the live-row check."""
    where, params = search.filter_sql(SearchFilters())
    sql = (
        "SELECT f.rowid, bm25(memories_fts) AS rank FROM memories_fts f "
        "JOIN memories m ON m.rowid = f.rowid "
        f"WHERE memories_fts MATCH ? AND {where} ORDER BY rank LIMIT ?"
    )
    for match in (search.fts_query(query, strict=True), search.fts_query(query, strict=False)):
        if match is None:
            return []
        rows = all_rows(conn, sql, [match, *params, k])
        if rows:
            return [(int(rowid), -float(rank)) for rowid, rank in rows]
    return []


def matches(conn: apsw.Connection, query: str) -> int:
    """How many rows the query's keyword search matches (strict, else relaxed): what BM25 scores."""
    for match in (search.fts_query(query, strict=True), search.fts_query(query, strict=False)):
        if match is None:
            return 0
        count = int(all_rows(conn, "SELECT count(*) FROM memories_fts WHERE memories_fts MATCH ?", [match])[0][0])
        if count:
            return count
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000, help="memories in the store")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--data-dir", type=Path, help="where the store is kept (default bench/.cache/keyword-N)")
    parser.add_argument("--build-only", action="store_true", help="build (or check) the store, measure nothing")
    args = parser.parse_args()
    data_dir = args.data_dir or CACHE_DIR / f"keyword-{args.n}"
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "hive.db"
    built = build(path, args.n, args.seed)
    if args.build_only:
        print(built)
        return
    notes = load_corpus(args.n, args.seed)
    queries = sample_queries(notes, range(args.n), args.queries, random.Random(args.seed))
    del notes
    db = Database(path, node_name="bench")
    conn = db.conn
    emit_line("keyword_latency", "setup", n=args.n, queries=len(queries), k=K, cpu=cpu_model(),
              python=platform.python_version(), sqlite=apsw.sqlite_lib_version(),
              store="app schema, FTS5 rows only (no vectors, tags or sources)")  # fmt: skip
    if built is not None:
        emit_line("keyword_latency", "build", n=args.n, **built)
    filters = SearchFilters()
    remembered = search.TermCounts()
    steps: dict[str, Callable[[str], object]] = {
        "keyword_scale": lambda q: search.keyword_scale(conn, q),
        "keyword_scale_remembered": lambda q: search.keyword_scale(conn, q, remembered),
        "joined": lambda q: joined(conn, q, K),
        "current": lambda q: search.keyword_search(conn, q, K, filters, relax=True),
    }
    for query in queries[:20]:  # pages warm, fts5vocab made
        for step in steps.values():
            step(query)
    timings: dict[str, list[float]] = {name: [] for name in steps}
    names = list(steps)
    for i, query in enumerate(queries):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            t0 = time.perf_counter()
            result = steps[name](query)
            timings[name].append((time.perf_counter() - t0) * 1000)
            if name == "current":  # the same answer (scores; rows of one score may come in another order)
                before = joined(conn, query, K)
                assert isinstance(result, list) and [s for _, s in result] == [s for _, s in before], query
    for name, values in timings.items():
        emit_line("keyword_latency", "latency", n=args.n, step=name, **ms_stats(values))
    slowest = sorted(range(len(queries)), key=lambda i: -timings["joined"][i])[:10]
    rows = [
        {"query": queries[i], "joined_ms": round(timings["joined"][i], 1),
         "current_ms": round(timings["current"][i], 1), "matches": matches(conn, queries[i])}
        for i in slowest
    ]  # fmt: skip
    emit_line("keyword_latency", "slowest", n=args.n, queries=rows)
    db.close()


if __name__ == "__main__":
    main()
