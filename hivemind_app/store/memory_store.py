"""The local memory store: one SQLite file with memories, tags, sources, FTS5 and sqlite-vec tables.

Every write is one IMMEDIATE transaction. Embedding happens before the transaction, never inside it, so
the write lock is held for milliseconds however slow the model is.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import apsw
import numpy as np
import numpy.typing as npt

from hivemind_app.errors import AmbiguousIdError, NotFoundError, StoreError
from hivemind_app.records.memories import Memory, NewMemory, SearchFilters, StoredMemory, StoreStats
from hivemind_app.store import ann as ann_index
from hivemind_app.store import search
from hivemind_app.store.database import Database
from hivemind_app.store.db import all_rows, maybe_one, one
from hivemind_app.store.memory_rows import MemoryRows, may_have_pending_vectors, set_pending_vectors
from hivemind_app.store.migrations import applied_versions
from hivemind_app.store.models import EmbeddingSpace

Vector = npt.NDArray[np.float32]
log = logging.getLogger(__name__)


class MemoryStore:
    """Memories and their embedding spaces, over a shared `Database`."""

    def __init__(self, db: Database, ann: ann_index.AnnManager | None = None) -> None:
        self.db = db
        # The approximate index beside sqlite-vec (None: every vector search is exact).
        self.ann = ann
        self.path = db.path
        self.node_name = db.node_name
        self._lock = db.lock
        self._conn = db.conn
        self._write = db.write
        self._read = db.read
        self._rows = MemoryRows(db)
        self._term_counts = search.TermCounts()
        if ann is not None and str(db.path) != ":memory:":
            # Files of a space created by another process after this read would go too; that process
            # notices the missing file on its next search and rebuilds it (searches stay exact meanwhile).
            ann.remove_unknown_spaces({space.space_id for space in self.spaces()})

    # -- embedding spaces ---------------------------------------------------------------------------

    def spaces(self) -> list[EmbeddingSpace]:
        with self._lock:
            rows = all_rows(self._conn, "SELECT space_id, model, dim, active FROM embedding_spaces ORDER BY space_id")
        return [EmbeddingSpace(int(r[0]), str(r[1]), int(r[2]), bool(r[3])) for r in rows]

    def active_space(self) -> EmbeddingSpace | None:
        return next((s for s in self.spaces() if s.active), None)

    def space_for(self, model: str) -> EmbeddingSpace | None:
        return next((s for s in self.spaces() if s.model == model), None)

    def ensure_space(self, model: str, dim: int) -> EmbeddingSpace:
        """The space for `model`, created (and made active if no space is) when missing."""
        existing = self.space_for(model)
        if existing:
            if existing.dim != dim:
                raise StoreError(
                    f"The store recorded model {model} with dimension {existing.dim}, but it now gives {dim}."
                )
            return existing
        with self._write() as conn:
            has_active = maybe_one(conn, "SELECT 1 FROM embedding_spaces WHERE active = 1")
            conn.execute(
                "INSERT OR IGNORE INTO embedding_spaces(model, dim, created_at, active) VALUES (?, ?, ?, ?)",
                (model, dim, time.time(), 0 if has_active else 1),
            )
            space_id = one(conn, "SELECT space_id FROM embedding_spaces WHERE model = ?", (model,))[0]
            conn.execute(EmbeddingSpace(int(space_id), model, dim, False).create_table_sql())
        space = self.space_for(model)
        assert space is not None
        return space

    def activate_space(self, space: EmbeddingSpace) -> list[str]:
        """Make `space` the one searches use and drop every other space; refuses while rows lack vectors.

        Switching from another space publishes every memory again (newer versions, outbox rows), so the hub
        carries the new model's vectors."""
        with self._write() as conn:
            missing = self._count_missing(conn, space)
            if missing:
                raise StoreError(f"{missing} memories have no vector for {space.model} yet; run reembed again.")
            dropped = [other for other in self.spaces() if other.space_id != space.space_id]
            for other in dropped:
                conn.execute(f"DROP TABLE IF EXISTS {other.table}")
                ann_index.forget_space(conn, other.space_id)
                conn.execute("DELETE FROM embedding_spaces WHERE space_id = ?", (other.space_id,))
            conn.execute("UPDATE embedding_spaces SET active = 1 WHERE space_id = ?", (space.space_id,))
            if dropped:  # the hub still carries the old model's vectors: every memory goes out with its new one
                self._rows.publish_all(conn)
        if self.ann is not None:
            self.ann.remove_spaces([other.space_id for other in dropped])
        return [other.model for other in dropped]

    @staticmethod
    def _count_missing(conn: apsw.Connection, space: EmbeddingSpace) -> int:
        row = one(
            conn,
            f"SELECT count(*) FROM memories m WHERE m.deleted = 0 "
            f"AND NOT EXISTS (SELECT 1 FROM {space.table} v WHERE v.rowid = m.rowid)",
        )
        return int(row[0])

    def count_missing_vectors(self, space: EmbeddingSpace) -> int:
        with self._lock:
            return self._count_missing(self._conn, space)

    def may_have_pending_vectors(self) -> bool:
        """False only when a backfill found nothing since the last memory stored without a vector.

        A cheap flag (one meta row) so a store call need not scan every memory for missing vectors.
        """
        with self._lock:
            return may_have_pending_vectors(self._conn)

    def memories_missing_vectors(self, space: EmbeddingSpace, limit: int) -> list[tuple[int, str]]:
        """(rowid, text) of live memories with no vector in `space`, oldest first."""
        with self._lock:
            rows = all_rows(
                self._conn,
                f"SELECT m.rowid, m.text FROM memories m WHERE m.deleted = 0 "
                f"AND NOT EXISTS (SELECT 1 FROM {space.table} v WHERE v.rowid = m.rowid) "
                "ORDER BY m.rowid LIMIT ?",
                (limit,),
            )
        if not rows and space.active:
            with self._write() as conn:
                # nothing stored meanwhile without a vector? then the flag may drop
                if not self._count_missing(conn, space):
                    set_pending_vectors(conn, False)
        return [(int(r[0]), str(r[1])) for r in rows]

    def set_vectors(self, space: EmbeddingSpace, rows: Sequence[tuple[int, Vector]]) -> int:
        """Attach vectors to memories that are still live and still lack one; returns how many were set."""
        with self._write() as conn:
            return sum(self._rows.attach_vector(conn, space, rowid, vector) for rowid, vector in rows)

    # -- writes -------------------------------------------------------------------------------------

    def put_many(
        self,
        items: Sequence[NewMemory],
        vectors: Sequence[Vector | None] | None = None,
        space: EmbeddingSpace | None = None,
        replacing: str | None = None,
    ) -> list[StoredMemory]:
        """Insert or merge memories (by content id) in one transaction; with `replacing`, that memory (live, and
        none of `items`) is tombstoned in the same transaction (a supersede: both writes or neither; NotFoundError,
        and nothing written, when it is gone by then)."""
        results = []
        now = time.time()
        with self._write() as conn:
            for index, item in enumerate(items):
                vector = vectors[index] if vectors is not None else None
                results.append(self._put_one(conn, item, vector, space, now))
            if replacing is not None:
                self._tombstone(conn, replacing)
        return results

    def _put_one(
        self, conn: apsw.Connection, item: NewMemory, vector: Vector | None, space: EmbeddingSpace | None, now: float
    ) -> StoredMemory:
        put = self._rows.put(conn, item, vector, space, now)
        memory = self._load(conn, [put.rowid])[put.rowid]
        return StoredMemory(memory=memory, created=put.created, embedded=put.embedded)

    def has_vector(self, memory_id: str, space: EmbeddingSpace) -> bool:
        with self._lock:
            row = maybe_one(
                self._conn,
                f"SELECT 1 FROM memories m JOIN {space.table} v ON v.rowid = m.rowid WHERE m.id = ?",
                (memory_id,),
            )
        return row is not None

    def delete(self, memory_id: str) -> Memory:
        """Tombstone a memory: its text, tags, sources and vectors go; its id and version stay for sync."""
        with self._write() as conn:
            return self._tombstone(conn, memory_id)

    def _tombstone(self, conn: apsw.Connection, memory_id: str) -> Memory:
        rowid = self._resolve(conn, memory_id)
        before = self._load(conn, [rowid])[rowid]
        if before.deleted:
            raise NotFoundError(f"Memory {before.id[:12]} is already deleted.")
        self._rows.tombstone(conn, rowid, before.id)
        return before

    # -- reads --------------------------------------------------------------------------------------

    def _resolve(self, conn: apsw.Connection, id_or_prefix: str) -> int:
        prefix = id_or_prefix.strip().lower()
        if len(prefix) < 4 or any(c not in "0123456789abcdef" for c in prefix):
            raise NotFoundError(f"'{id_or_prefix}' is not a memory id (give at least 4 hex characters).")
        rows = all_rows(
            conn,
            "SELECT rowid FROM memories WHERE id >= ? AND id < ? ORDER BY deleted LIMIT 2",
            (prefix, prefix + "g"),
        )
        if not rows:
            raise NotFoundError(f"No memory has an id starting with {prefix}.")
        if len(rows) > 1 and len(prefix) < 64:
            raise AmbiguousIdError(f"More than one memory has an id starting with {prefix}; give more characters.")
        return int(rows[0][0])

    def get(self, id_or_prefix: str) -> Memory:
        with self._read() as conn:
            rowid = self._resolve(conn, id_or_prefix)
            return self._load(conn, [rowid])[rowid]

    def get_many(self, rowids: Iterable[int]) -> dict[int, Memory]:
        with self._read() as conn:
            return self._load(conn, list(rowids))

    def _load(self, conn: apsw.Connection, rowids: list[int]) -> dict[int, Memory]:
        if not rowids:
            return {}
        ids_json = json.dumps(rowids)
        rows = all_rows(
            conn,
            "SELECT m.rowid, m.id, m.text, m.session_id, m.created_at, m.updated_at, m.origin_node, m.version, "
            "m.deleted, m.project, m.occurred_at, "
            "(SELECT json_group_array(tag) FROM (SELECT tag FROM memory_tags WHERE memory_rowid = m.rowid "
            " ORDER BY tag)), "
            "(SELECT json_group_array(source) FROM (SELECT source FROM memory_sources "
            " WHERE memory_rowid = m.rowid ORDER BY position)) "
            "FROM memories m WHERE m.rowid IN (SELECT value FROM json_each(?))",
            (ids_json,),
        )
        return {
            int(r[0]): Memory(
                id=str(r[1]),
                text=str(r[2]),
                session_id=r[3],
                created_at=float(r[4]),
                updated_at=float(r[5]),
                origin_node=str(r[6]),
                version=int(r[7]),
                deleted=bool(r[8]),
                project=r[9],
                occurred_at=None if r[10] is None else float(r[10]),
                tags=tuple(json.loads(r[11])),
                sources=tuple(json.loads(r[12])),
            )
            for r in rows
        }

    def recent(self, limit: int, filters: SearchFilters | None = None) -> list[Memory]:
        where, params = search.filter_sql(filters or SearchFilters())
        with self._read() as conn:
            rowids = [
                int(r[0])
                for r in conn.execute(
                    f"SELECT m.rowid FROM memories m WHERE {where} ORDER BY m.created_at DESC, m.rowid DESC LIMIT ?",
                    [*params, limit],
                )
            ]
            loaded = self._load(conn, rowids)
        return [loaded[r] for r in rowids]

    def keyword_search(self, query: str, k: int, filters: SearchFilters, relax: bool = True) -> list[tuple[int, float]]:
        with self._lock:
            return search.keyword_search(self._conn, query, k, filters, relax)

    def keyword_scale(self, query: str) -> float | None:
        """The query's ideal BM25 score (search.keyword_scale): what a keyword score is measured against."""
        with self._lock:
            self._term_counts.check(self._conn, self.db.memory_writes)
            return search.keyword_scale(self._conn, query, self._term_counts)

    def vector_search(
        self, space: EmbeddingSpace, vector: Vector, k: int, filters: SearchFilters
    ) -> list[tuple[int, float]]:
        """(rowid, cosine similarity) best first: from the ANN index when the store has one, else exact."""
        with self._lock:
            index = self.ann.index_for(space) if self.ann is not None else None
            if index is not None:
                try:
                    if index.wanted(self._conn) and index.refresh(self._conn):
                        return search.ann_vector_search(self._conn, index, vector, k, filters)
                except apsw.Error:
                    raise
                except Exception:  # never a failed search for the index's sake: exact is always right
                    log.exception("the ANN index failed; this search is exact")
                    index.invalidate()
            return search.vector_search(self._conn, space, vector, k, filters)

    def index_status(self) -> list[ann_index.AnnStatus]:
        """Where the ANN index of the active space stands (state, progress of a build, size of the delta)."""
        if self.ann is None or not self.ann.enabled:
            return [ann_index.AnnStatus(state="off", detail="the ANN index is turned off or not installed")]
        space = self.active_space()
        if space is None:
            return []
        index = self.ann.index_for(space)
        if index is None:
            return []
        with self._lock:
            if index.wanted(self._conn):
                return [index.inspect(self._conn)]
        return [index.status]

    def close_index(self, wait: bool = False) -> None:
        if self.ann is not None:
            self.ann.close(wait=wait)

    # -- embedding cache ----------------------------------------------------------------------------

    def cached_embedding(self, model: str, text_hash: str, dim: int) -> Vector | None:
        with self._lock:
            row = maybe_one(
                self._conn, "SELECT vector FROM embedding_cache WHERE model = ? AND text_hash = ?", (model, text_hash)
            )
        if row is None:
            return None
        vector = np.frombuffer(row[0], dtype="<f4")
        return vector if vector.shape == (dim,) else None

    def forget_cached_embeddings(self, model: str, text_hashes: Sequence[str] | None = None) -> None:
        """Drop cached query vectors of `model` (all of them, or those of `text_hashes`)."""
        with self._write() as conn:
            if text_hashes is None:
                conn.execute("DELETE FROM embedding_cache WHERE model = ?", (model,))
            for key in text_hashes or ():
                conn.execute("DELETE FROM embedding_cache WHERE model = ? AND text_hash = ?", (model, key))

    def cache_embedding(self, model: str, text_hash: str, vector: Vector, keep: int = 50_000) -> None:
        try:
            self._cache_embedding(model, text_hash, vector, keep)
        except apsw.Error as exc:
            raise StoreError(f"The embedding cache could not be written: {exc}") from exc

    def _cache_embedding(self, model: str, text_hash: str, vector: Vector, keep: int) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO embedding_cache(model, text_hash, vector, used_at) VALUES (?, ?, ?, ?)",
                (model, text_hash, np.asarray(vector, dtype="<f4").tobytes(), time.time()),
            )
            if random.random() < 0.002:  # prune now and then, not on every insert
                conn.execute(
                    "DELETE FROM embedding_cache WHERE (model, text_hash) IN (SELECT model, text_hash "
                    "FROM embedding_cache ORDER BY used_at DESC LIMIT -1 OFFSET ?)",
                    (keep,),
                )

    # -- stats --------------------------------------------------------------------------------------

    def stats(self) -> StoreStats:
        with self._read() as conn:
            live, deleted = one(
                conn, "SELECT coalesce(sum(deleted = 0), 0), coalesce(sum(deleted = 1), 0) FROM memories"
            )
            tags = one(conn, "SELECT count(DISTINCT tag) FROM memory_tags")[0]
            sessions = one(conn, "SELECT count(*) FROM sessions WHERE cleared = 0")[0]
            queue = one(conn, "SELECT count(*) FROM learning_queue")[0]
            active = self.active_space()
            embedded = pending = 0
            if active:
                embedded = one(conn, f"SELECT count(*) FROM {active.table}")[0]
                pending = self._count_missing(conn, active)
            else:
                pending = int(live)
            others = [
                {"model": s.model, "dim": s.dim, "embedded": one(conn, f"SELECT count(*) FROM {s.table}")[0]}
                for s in self.spaces()
                if not s.active
            ]
            schema = max(applied_versions(conn), default=0)
        wal = Path(f"{self.path}-wal")
        return StoreStats(
            path=str(self.path),
            memories=int(live),
            deleted=int(deleted),
            embedded=int(embedded),
            pending_embeddings=int(pending),
            tags=int(tags),
            sessions=int(sessions),
            learning_queue=int(queue),
            file_bytes=self.path.stat().st_size if self.path.exists() else 0,
            wal_bytes=wal.stat().st_size if wal.exists() else 0,
            schema_version=schema,
            active_model=active.model if active else None,
            active_dim=active.dim if active else None,
            other_spaces=others,
        )
