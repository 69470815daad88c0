"""One space's index in this process: the memory-mapped file, kept current by replaying the change log into
an exact "delta", and searched (approximately over the file, exactly over the delta and over a filter's rows).

Before each search the process replays the log rows it has not seen: the changed memories' current vectors
go into the delta (searched exactly) and their rowids into the "shadowed" set (never returned from the
file). So writes from this process, from another process and from sync all show up in the next search, and
a tombstoned memory is never returned. An unusable file (none yet, stale, corrupt) starts a full build and
the search goes exact; a delta grown past `compact_changes` starts a compaction.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import apsw
import numpy as np
import numpy.typing as npt

from hivemind_app.store.ann import changes, sidecar
from hivemind_app.store.ann.build import Builder
from hivemind_app.store.ann.config import AnnConfig
from hivemind_app.store.ann.files import SpaceFiles, index_dir
from hivemind_app.store.ann.status import AnnStatus, ProgressCallback, Reporter
from hivemind_app.store.ann.vectors import Vector, VectorTable, unit, units
from hivemind_app.store.db import maybe_one
from hivemind_app.store.models import EmbeddingSpace

log = logging.getLogger(__name__)

# A store below the size threshold is counted again at most this often.
_RECOUNT_S = 5.0


class AnnIndex:
    """The index of one embedding space in this process: the mapped file plus the exact delta."""

    def __init__(
        self,
        db_path: Path,
        space: EmbeddingSpace,
        config: AnnConfig,
        busy_timeout_ms: int = 10_000,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        self.space = space
        self.config = config
        self.db_path = db_path
        self.files = SpaceFiles(index_dir(db_path), space.space_id)
        self.status = AnnStatus(state="missing", space_id=space.space_id, model=space.model)
        self._reporter = Reporter(self.status, on_progress)
        self._builder = Builder(db_path, space, config, self.files, busy_timeout_ms, self._reporter)
        self._lock = threading.RLock()
        self._base: Any = None  # usearch.index.Index, memory-mapped (read-only)
        self._vectors: VectorTable | None = None
        self._stamp: tuple[int, int] | None = None
        self._applied = 0
        self._delta: dict[int, Vector] = {}
        self._shadow: set[int] = set()
        self._delta_cache: tuple[npt.NDArray[np.int64], Vector] | None = None
        self._big_enough = False
        self._counted_at = -_RECOUNT_S

    # -- life cycle -------------------------------------------------------------------------------

    def close(self, wait: bool = False) -> None:
        """Stop a running build (at its next chunk) and unmap the file."""
        self._builder.stop(wait)
        with self._lock:
            self._base = None

    def wait(self, timeout: float | None = None) -> bool:
        """Block until a running build ends; True when none is running any more."""
        return self._builder.wait(timeout)

    def invalidate(self) -> None:
        """Forget the mapped file: the next search opens it again (and rebuilds it if it is unusable)."""
        with self._lock:
            self._base = None
            self._stamp = None
            self._reporter.report(state="missing", detail="index dropped after an error")

    @property
    def building(self) -> bool:
        return self._builder.building

    # -- keeping up with the store ----------------------------------------------------------------

    def wanted(self, conn: apsw.Connection) -> bool:
        """Whether this store is large enough for the index (an existing index file always counts)."""
        if self._big_enough or self._base is not None or self.files.sidecar.exists():
            return True
        if time.monotonic() - self._counted_at < _RECOUNT_S:
            return False
        self._counted_at = time.monotonic()
        row = maybe_one(conn, f"SELECT count(*) FROM {self.space.table}")
        self._big_enough = bool(row and int(row[0]) >= self.config.min_vectors)
        if not self._big_enough:
            self.status.state = "exact"
            self.status.detail = f"fewer than {self.config.min_vectors} vectors: exact search"
        return self._big_enough

    def refresh(self, conn: apsw.Connection) -> bool:
        """Bring the index up to date with the store (caller holds the store's lock); False: search exactly."""
        with self._lock:
            stamp = self._sidecar_stamp()
            if (self._base is None or stamp != self._stamp) and not self._open(conn, stamp):
                self._builder.start(full=True, has_file=False)
                return False
            pruned = changes.pruned_seq(conn, self.space.space_id)
            if pruned > self._applied:  # rows this process needs were pruned: a newer file must exist
                self._base = None
                if not self._open(conn, self._sidecar_stamp()) or pruned > self._applied:
                    self._base = None
                    self._builder.start(full=True, has_file=False)
                    return False
            self._replay(conn)
            if len(self._delta) + len(self._shadow) > self.config.compact_changes:
                self._builder.start(full=False, has_file=True)
            self._reporter.report(state="ready", indexed=len(self._base), delta=len(self._delta), progress=None)
            return True

    def inspect(self, conn: apsw.Connection) -> AnnStatus:
        """The state a search would find (for `status`): maps the file and counts the delta, never builds."""
        with self._lock:
            if self.building or self.status.state == "failed":
                return self.status
            stamp = self._sidecar_stamp()
            if (self._base is None or stamp != self._stamp) and not self._open(conn, stamp):
                self._reporter.report(state="missing", indexed=0, delta=0)  # detail says why: none, stale, corrupt
                return self.status
            if changes.pruned_seq(conn, self.space.space_id) > self._applied:
                self._base = None
                self._reporter.report(state="missing", detail="a newer index file is being written")
                return self.status
            self._replay(conn)
            self._reporter.report(state="ready", indexed=len(self._base), delta=len(self._delta), progress=None)
            return self.status

    def _sidecar_stamp(self) -> tuple[int, int] | None:
        try:
            st = self.files.sidecar.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def _open(self, conn: apsw.Connection, stamp: tuple[int, int] | None) -> bool:
        """Map the file the sidecar names, if it is the right one for this store; replays from its seq."""
        self._base = None
        self._stamp = stamp
        meta = sidecar.read(self.files) if stamp is not None else None
        if meta is None:
            self.status.detail = "no index file yet"
            return False
        why = sidecar.unusable_reason(conn, meta, self.space, self.config)
        if why is not None:
            log.info("ANN index for %s is stale: %s; rebuilding", self.space.model, why)
            self.status.detail = f"stale: {why}"
            return False
        path = self.files.path(str(meta.get("file")))
        try:
            base, vectors = self._map(path, meta)
        except Exception as exc:  # a corrupt or truncated file: never a crash, rebuild it
            log.warning("ANN index file %s is unusable (%s); searching exactly while it is rebuilt", path, exc)
            self._reporter.error(f"corrupt index file: {exc}")
            self.status.detail = f"corrupt index file: {exc}"
            return False
        base.expansion_search = self.config.expansion_search
        self._base = base
        self._vectors = vectors
        self._applied = int(meta["seq"])
        self._delta = {}
        self._shadow = set()
        self._delta_cache = None
        self._reporter.report(file=str(path), build_seconds=meta.get("build_seconds"), detail="")
        return True

    def _map(self, path: Path, meta: dict[str, Any]) -> tuple[Any, VectorTable]:
        """The index file (memory-mapped) and the vectors beside it, checked against the sidecar."""
        from usearch.index import Index

        base = Index.restore(str(path), view=True)
        if base is None or base.ndim != self.space.dim or len(base) != int(meta.get("count", -1)):
            raise ValueError("the file does not match its sidecar")
        vectors = VectorTable.open(self.files, str(meta["file"]), self.space.dim)
        if len(vectors) != len(base):
            raise ValueError("the vector file does not match the index file")
        return base, vectors

    def _replay(self, conn: apsw.Connection) -> None:
        rows = changes.changes_after(conn, self.space.space_id, self._applied)
        if not rows:
            return
        base = self._base
        rowids = np.array([int(r[1]) for r in rows], dtype=np.uint64)
        in_base = base.contains(rowids) if base is not None else np.zeros(len(rows), dtype=bool)
        for (_seq, rowid, vector), there in zip(rows, np.atleast_1d(in_base), strict=True):
            rowid = int(rowid)
            if there:
                self._shadow.add(rowid)
            if vector is None:
                self._delta.pop(rowid, None)
            else:
                self._delta[rowid] = np.frombuffer(vector, dtype="<f4")
        self._applied = int(rows[-1][0])
        self._delta_cache = None

    # -- searching --------------------------------------------------------------------------------

    def _delta_matrix(self) -> tuple[npt.NDArray[np.int64], Vector]:
        if self._delta_cache is None:
            keys = np.fromiter(self._delta.keys(), dtype=np.int64, count=len(self._delta))
            matrix = (
                np.stack(list(self._delta.values())).astype(np.float32)
                if self._delta
                else np.empty((0, self.space.dim), dtype=np.float32)
            )
            self._delta_cache = (keys, units(matrix))
        return self._delta_cache

    def search(
        self,
        query: Vector,
        k: int,
        allowed: Callable[[list[int]], set[int]] | None = None,
        max_count: int | None = None,
    ) -> list[tuple[int, float]] | None:
        """(rowid, cosine similarity) best first; `allowed` keeps the rowids that pass a filter.

        The file is searched for more than k so that shadowed (changed since saved) and filtered-out rows
        cannot push the answer below k; the count grows until k pass or the whole file was searched. None
        when that would take more than `max_count` candidates (a filter too rare for the index: go exact).
        """
        with self._lock:
            assert self._base is not None, "refresh() first"
            q = unit(query)
            found = self._search_file(q, k, allowed, max_count)
            if found is None:
                return None
            delta_keys, matrix = self._delta_matrix()
            if len(delta_keys):
                scores = matrix @ q
                order = np.argsort(-scores)
                if allowed is not None:
                    keep_delta = allowed([int(delta_keys[i]) for i in order])
                    order = np.array([i for i in order if int(delta_keys[i]) in keep_delta], dtype=np.int64)
                for i in order[:k]:
                    found[int(delta_keys[i])] = float(scores[i])
            return sorted(found.items(), key=lambda pair: (-pair[1], pair[0]))[:k]

    def _search_file(
        self, q: Vector, k: int, allowed: Callable[[list[int]], set[int]] | None, max_count: int | None
    ) -> dict[int, float] | None:
        """The file's best unshadowed (and allowed) rowids: at least k of them unless the file has fewer."""
        base = self._base
        found: dict[int, float] = {}
        size = len(base)
        count = min(size, max(k * 2, k + len(self._shadow)) * (8 if allowed else 1))
        while count > 0:
            matches = base.search(q, count, threads=1)
            keys = [int(key) for key in matches.keys]
            sims = 1.0 - np.asarray(matches.distances, dtype=np.float64)
            fresh = [key for key in keys if key not in self._shadow]
            keep = set(fresh) if allowed is None else allowed(fresh)
            found = {key: float(sim) for key, sim in zip(keys, sims, strict=True) if key in keep}
            if len(found) >= k or count >= size:
                break
            count = min(size, count * 4)
            if max_count is not None and count > max_count:
                return None
        return found

    def exact_among(self, query: Vector, rowids: Sequence[int], k: int) -> list[tuple[int, float]]:
        """Exact top-k among `rowids` (a filter's matches), with vectors from the file and the delta."""
        with self._lock:
            assert self._base is not None, "refresh() first"
            q = unit(query)
            changed = self._delta.keys() | self._shadow
            from_delta = [r for r in rowids if r in self._delta]
            from_base = (
                np.fromiter((r for r in rowids if r not in changed), dtype=np.uint64)
                if changed
                else np.asarray(rowids, dtype=np.uint64)
            )
            keys: list[int] = []
            parts: list[Vector] = []
            if len(from_base) and self._vectors is not None:
                found, matrix = self._vectors.lookup(from_base)
                keys.extend(found.tolist())
                parts.append(matrix)
            if from_delta:
                keys.extend(from_delta)
                parts.append(units(np.stack([self._delta[r] for r in from_delta]).astype(np.float32)))
            if not keys:
                return []
            matrix = np.vstack(parts) if len(parts) > 1 else parts[0]
            scores = matrix @ q  # every row is unit length
            top = min(k, len(scores))
            best = np.argpartition(-scores, top - 1)[:top]
            best = best[np.argsort(-scores[best], kind="stable")]
            return [(keys[i], float(scores[i])) for i in best]
