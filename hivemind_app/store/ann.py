"""The approximate nearest-neighbour (ANN) index beside sqlite-vec: an HNSW graph (usearch) per embedding space.

sqlite-vec stays the source of truth and the exact path (small stores, filters that match few rows, any
fallback). The index lives in files next to the store (`hive.db.ann/`): `space-N-*.usearch` and the sidecar
`space-N.json` naming that file, the store's vector-history token (`meta.ann_generation`) and the
`vector_changes` sequence number the file is complete up to. Opening memory-maps the file (no vector is read
on start; pages come in as searches touch them and are shared by every process on the machine).

Every transaction that changes a vector also appends (rowid, new vector or NULL) to `vector_changes` once an
index exists (`record_change`). Before each search a process replays the rows it has not seen into a small
in-memory "delta": the changed memories' current vectors, searched exactly, and the set of rowids whose copy
in the file is out of date ("shadowed", never returned from the file). So writes from this process, from
another process and from sync all show up in the next search, and a tombstoned memory is never returned.
When the delta grows past `compact_changes`, a background thread writes a new file (file + delta) and prunes
the log rows it covers; other processes see the sidecar change and map the new file.

An index that cannot be used (no file, a sidecar for another store or model, a file older than the pruned
log, a corrupt file) is detected on open: the search falls back to exact and a background thread rebuilds
the index from sqlite-vec, reporting progress. Only one process builds at a time (a lock file).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import apsw
import numpy as np
import numpy.typing as npt

from hivemind_app.store.db import all_rows, connect, maybe_one, write_transaction
from hivemind_app.store.models import EmbeddingSpace

log = logging.getLogger(__name__)

FORMAT = 1
LIBRARY = "usearch"
Vector = npt.NDArray[np.float32]
DTYPES = ("f32", "f16", "i8")
# How long a failed build waits before the next search may try again.
_RETRY_AFTER_S = 60.0
_BUILD_CHUNK = 10_000
# A store below the size threshold is counted again at most this often.
_RECOUNT_S = 5.0


@dataclass(frozen=True)
class AnnConfig:
    """The index's knobs (from `SearchSettings`); see the settings' docstrings."""

    enabled: bool = True
    min_vectors: int = 20_000
    connectivity: int = 16
    expansion_add: int = 128
    expansion_search: int = 1024
    dtype: str = "f16"
    exact_filter_limit: int = 20_000
    compact_changes: int = 20_000
    threads: int = 0

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ValueError(f"ANN dtype must be one of {', '.join(DTYPES)}, not {self.dtype!r}.")


@dataclass
class AnnStatus:
    """Where the index of one embedding space stands: what `Hive.index_status()` returns."""

    state: str  # off | exact (store too small) | missing | building | ready | failed
    space_id: int | None = None
    model: str | None = None
    indexed: int = 0  # vectors in the index file
    delta: int = 0  # vectors changed since the file was saved (searched exactly)
    progress: float | None = None  # 0..1 while building
    detail: str = ""
    file: str | None = None
    build_seconds: float | None = None
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


ProgressCallback = Callable[[AnnStatus], None]


# -- the change log ------------------------------------------------------------------------------------


def record_change(conn: apsw.Connection, space_id: int, rowid: int, vector: bytes | None) -> None:
    """Inside a write transaction: rowid's vector in `space_id` is now `vector` (None: it has none).

    Recorded only once some process has an index for this store (meta 'ann_log'), so a small store pays
    nothing.
    """
    conn.execute(
        "INSERT INTO vector_changes(space_id, memory_rowid, vector) SELECT ?, ?, ? "
        "WHERE EXISTS (SELECT 1 FROM meta WHERE key = 'ann_log' AND value = '1')",
        (space_id, rowid, vector),
    )


def forget_space(conn: apsw.Connection, space_id: int) -> None:
    """Inside a write transaction: a space was dropped; its log rows go (`AnnManager.remove_spaces`: its files)."""
    conn.execute("DELETE FROM vector_changes WHERE space_id = ?", (space_id,))


def _meta(conn: apsw.Connection, key: str) -> str | None:
    row = maybe_one(conn, "SELECT value FROM meta WHERE key = ?", (key,))
    return None if row is None else str(row[0])


def _last_seq(conn: apsw.Connection) -> int:
    row = maybe_one(conn, "SELECT seq FROM sqlite_sequence WHERE name = 'vector_changes'")
    return int(row[0]) if row else 0


def _pruned_key(space_id: int) -> str:
    return f"ann_pruned_seq_{space_id}"


@contextlib.contextmanager
def _read_snapshot(conn: apsw.Connection) -> Iterator[apsw.Connection]:
    conn.execute("BEGIN")
    try:
        yield conn
    finally:
        conn.execute("COMMIT")


# -- the vectors beside the graph -------------------------------------------------------------------------


def _side_names(name: str) -> tuple[str, str]:
    stem = name.removesuffix(".usearch")
    return f"{stem}.vectors.npy", f"{stem}.keys.npy"


class VectorTable:
    """Every indexed vector (float32, unit length, memory-mapped) by rowid: the exact path over a filter's rows.

    usearch holds the same vectors, but hands them out one Python array per key (~4 us each) and as float16
    (slow to convert); gathering the rows of a 10,000-memory tag from here is one fancy index, and a
    matrix-vector product scores them.
    """

    def __init__(
        self, matrix: npt.NDArray[np.float32], sorted_keys: npt.NDArray[np.uint64], rows: npt.NDArray[np.uint64]
    ):
        self.matrix = matrix
        self.sorted_keys = sorted_keys
        self.rows = rows

    def __len__(self) -> int:
        return len(self.sorted_keys)

    @classmethod
    def open(cls, directory: Path, name: str, dim: int) -> VectorTable:
        vectors_name, keys_name = _side_names(name)
        matrix = np.load(directory / vectors_name, mmap_mode="r")
        keys = np.load(directory / keys_name)
        if matrix.dtype != np.float32 or matrix.ndim != 2 or matrix.shape[1] != dim:
            raise ValueError(f"{vectors_name} holds {matrix.dtype} {matrix.shape}, not float32 rows of {dim}")
        if keys.dtype != np.uint64 or keys.shape != (2, matrix.shape[0]):
            raise ValueError(f"{keys_name} does not match {vectors_name}")
        return cls(matrix, keys[0], keys[1])

    @staticmethod
    def save(directory: Path, name: str, keys_by_row: npt.NDArray[np.uint64]) -> None:
        """Write the key file for a matrix already written (row i holds the vector of keys_by_row[i])."""
        order = np.argsort(keys_by_row, kind="stable")
        keys = np.stack([keys_by_row[order], order.astype(np.uint64)])
        _, keys_name = _side_names(name)
        tmp = directory / f".{keys_name}.tmp"
        with open(tmp, "wb") as out:
            np.save(out, keys)
        os.replace(tmp, directory / keys_name)

    def keys_by_row(self) -> npt.NDArray[np.uint64]:
        out = np.empty(len(self.sorted_keys), dtype=np.uint64)
        out[self.rows.astype(np.int64)] = self.sorted_keys
        return out

    def lookup(self, keys: npt.NDArray[np.uint64]) -> tuple[npt.NDArray[np.uint64], Vector]:
        """The keys found and their vectors (float32), in the order given."""
        if not len(self.sorted_keys) or not len(keys):
            return keys[:0], np.empty((0, self.matrix.shape[1]), dtype=np.float32)
        pos = np.minimum(np.searchsorted(self.sorted_keys, keys), len(self.sorted_keys) - 1)
        found = self.sorted_keys[pos] == keys
        rows = self.rows[pos[found]].astype(np.int64)
        return keys[found], np.take(self.matrix, rows, axis=0)


def _new_matrix(directory: Path, name: str, count: int, dim: int) -> Any:
    vectors_name, _ = _side_names(name)
    return np.lib.format.open_memmap(
        directory / f".{vectors_name}.tmp", mode="w+", dtype=np.float32, shape=(count, dim)
    )


def _finish_matrix(directory: Path, name: str, matrix: Any) -> None:
    matrix.flush()
    del matrix
    vectors_name, _ = _side_names(name)
    os.replace(directory / f".{vectors_name}.tmp", directory / vectors_name)


# -- one space's index -----------------------------------------------------------------------------------


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
        self.directory = index_dir(db_path)
        self.sidecar = self.directory / f"space-{space.space_id}.json"
        self.lock_path = self.directory / f"space-{space.space_id}.lock"
        self.busy_timeout_ms = busy_timeout_ms
        self.on_progress = on_progress
        self._lock = threading.RLock()
        self._base: Any = None  # usearch.index.Index, memory-mapped (read-only)
        self._base_meta: dict[str, Any] = {}
        self._vectors: VectorTable | None = None
        self._stamp: tuple[int, int] | None = None
        self._applied = 0
        self._delta: dict[int, Vector] = {}
        self._shadow: set[int] = set()
        self._delta_cache: tuple[npt.NDArray[np.int64], Vector] | None = None
        self._worker: threading.Thread | None = None
        self._stop = threading.Event()
        self._failed_at = 0.0
        self._big_enough = False
        self._counted_at = -_RECOUNT_S
        self.status = AnnStatus(state="missing", space_id=space.space_id, model=space.model)

    # -- life cycle -------------------------------------------------------------------------------

    def close(self, wait: bool = False) -> None:
        """Stop a running build (at its next chunk) and unmap the file."""
        self._stop.set()
        worker = self._worker
        if wait and worker is not None:
            worker.join()
        with self._lock:
            self._base = None

    def wait(self, timeout: float | None = None) -> bool:
        """Block until a running build ends; True when none is running any more."""
        worker = self._worker
        if worker is not None:
            worker.join(timeout)
            return not worker.is_alive()
        return True

    def invalidate(self) -> None:
        """Forget the mapped file: the next search opens it again (and rebuilds it if it is unusable)."""
        with self._lock:
            self._base = None
            self._stamp = None
            self._report(state="missing", detail="index dropped after an error")

    @property
    def building(self) -> bool:
        return self._worker is not None and self._worker.is_alive()

    def _report(self, **changes: Any) -> None:
        for key, value in changes.items():
            setattr(self.status, key, value)
        if self.on_progress is not None:
            try:
                self.on_progress(self.status)
            except Exception:  # a broken progress display must not break the index
                log.exception("ANN progress callback failed")

    # -- keeping up with the store ----------------------------------------------------------------

    def wanted(self, conn: apsw.Connection) -> bool:
        """Whether this store is large enough for the index (an existing index file always counts)."""
        if self._big_enough or self._base is not None or self.sidecar.exists():
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
                self._start_build(full=True)
                return False
            pruned = int(_meta(conn, _pruned_key(self.space.space_id)) or 0)
            if pruned > self._applied:  # rows this process needs were pruned: a newer file must exist
                self._base = None
                if not self._open(conn, self._sidecar_stamp()) or pruned > self._applied:
                    self._base = None
                    self._start_build(full=True)
                    return False
            self._replay(conn)
            if len(self._delta) + len(self._shadow) > self.config.compact_changes:
                self._start_build(full=False)
            self._report(state="ready", indexed=len(self._base), delta=len(self._delta), progress=None)
            return True

    def inspect(self, conn: apsw.Connection) -> AnnStatus:
        """The state a search would find (for `status`): maps the file and counts the delta, never builds."""
        with self._lock:
            if self.building or self.status.state == "failed":
                return self.status
            stamp = self._sidecar_stamp()
            if (self._base is None or stamp != self._stamp) and not self._open(conn, stamp):
                self._report(state="missing", indexed=0, delta=0)  # detail says why: none yet, stale, corrupt
                return self.status
            if int(_meta(conn, _pruned_key(self.space.space_id)) or 0) > self._applied:
                self._base = None
                self._report(state="missing", detail="a newer index file is being written")
                return self.status
            self._replay(conn)
            self._report(state="ready", indexed=len(self._base), delta=len(self._delta), progress=None)
            return self.status

    def _sidecar_stamp(self) -> tuple[int, int] | None:
        try:
            st = self.sidecar.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def _read_sidecar(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.sidecar.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def _usable(self, conn: apsw.Connection, meta: dict[str, Any]) -> str | None:
        """Why the sidecar's file cannot serve this store (None: it can)."""
        expected = {
            "format": FORMAT,
            "library": LIBRARY,
            "generation": _meta(conn, "ann_generation"),
            "space_id": self.space.space_id,
            "model": self.space.model,
            "dim": self.space.dim,
            "dtype": self.config.dtype,
            "connectivity": self.config.connectivity,
        }
        for key, want in expected.items():
            if meta.get(key) != want:
                return f"index {key} is {meta.get(key)!r}, the store needs {want!r}"
        seq = int(meta.get("seq", -1))
        if seq > _last_seq(conn):
            return "the index is newer than the store (was the store restored from a backup?)"
        if int(_meta(conn, _pruned_key(self.space.space_id)) or 0) > seq:
            return "the index file misses changes the store no longer logs"
        if _meta(conn, "ann_log") != "1":
            return "the store has not logged its changes since the index was saved"
        return None

    def _open(self, conn: apsw.Connection, stamp: tuple[int, int] | None) -> bool:
        """Map the file the sidecar names, if it is the right one for this store; replays from its seq."""
        self._base = None
        self._stamp = stamp
        meta = self._read_sidecar() if stamp is not None else None
        if meta is None:
            self.status.detail = "no index file yet"
            return False
        why = self._usable(conn, meta)
        if why is not None:
            log.info("ANN index for %s is stale: %s; rebuilding", self.space.model, why)
            self.status.detail = f"stale: {why}"
            return False
        path = self.directory / str(meta.get("file"))
        try:
            from usearch.index import Index

            base = Index.restore(str(path), view=True)
            if base is None or base.ndim != self.space.dim or len(base) != int(meta.get("count", -1)):
                raise ValueError("the file does not match its sidecar")
            vectors = VectorTable.open(self.directory, str(meta["file"]), self.space.dim)
            if len(vectors) != len(base):
                raise ValueError("the vector file does not match the index file")
        except Exception as exc:  # a corrupt or truncated file: never a crash, rebuild it
            log.warning("ANN index file %s is unusable (%s); searching exactly while it is rebuilt", path, exc)
            self.status.errors = [*self.status.errors[-4:], f"corrupt index file: {exc}"]
            self.status.detail = f"corrupt index file: {exc}"
            return False
        base.expansion_search = self.config.expansion_search  # type: ignore[misc]  # a setter at run time
        self._base = base
        self._base_meta = meta
        self._vectors = vectors
        self._applied = int(meta["seq"])
        self._delta = {}
        self._shadow = set()
        self._delta_cache = None
        self._report(file=str(path), build_seconds=meta.get("build_seconds"), detail="")
        return True

    def _replay(self, conn: apsw.Connection) -> None:
        rows = all_rows(
            conn,
            "SELECT seq, memory_rowid, vector FROM vector_changes WHERE space_id = ? AND seq > ? ORDER BY seq",
            (self.space.space_id, self._applied),
        )
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
            norms = np.linalg.norm(matrix, axis=1, keepdims=True)
            self._delta_cache = (keys, (matrix / np.where(norms == 0, 1, norms)).astype(np.float32))
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
            base = self._base
            assert base is not None, "refresh() first"
            q = _unit(query)
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

    def exact_among(self, query: Vector, rowids: Sequence[int], k: int) -> list[tuple[int, float]]:
        """Exact top-k among `rowids` (a filter's matches), with vectors from the file and the delta."""
        with self._lock:
            base = self._base
            assert base is not None, "refresh() first"
            q = _unit(query)
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
                parts.append(_units(np.stack([self._delta[r] for r in from_delta]).astype(np.float32)))
            if not keys:
                return []
            matrix = np.vstack(parts) if len(parts) > 1 else parts[0]
            scores = matrix @ q  # every row is unit length
            top = min(k, len(scores))
            best = np.argpartition(-scores, top - 1)[:top]
            best = best[np.argsort(-scores[best], kind="stable")]
            return [(keys[i], float(scores[i])) for i in best]

    # -- building ---------------------------------------------------------------------------------

    def _start_build(self, full: bool) -> None:
        if self.building or self._stop.is_set():
            return
        if self.status.state == "failed" and time.monotonic() - self._failed_at < _RETRY_AFTER_S:
            return
        self._report(state="building" if full or self._base is None else "ready", progress=0.0 if full else None)
        self._worker = threading.Thread(
            target=self._build, args=(full,), name=f"ann-build-{self.space.space_id}", daemon=True
        )
        self._worker.start()

    def _build(self, full: bool) -> None:
        started = time.monotonic()
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            with open(self.lock_path, "a+") as lock:
                try:
                    fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    self._report(detail="another process is building the index")
                    return
                for leftover in self.directory.glob(f".space-{self.space.space_id}-*.tmp"):
                    with contextlib.suppress(OSError):
                        leftover.unlink()  # a build cut short (its process exited); we hold the lock
                conn = connect(self.db_path, self.busy_timeout_ms)
                try:
                    self._build_locked(conn, full, started)
                finally:
                    conn.close()
        except _Stopped:
            return
        except Exception as exc:
            log.exception("building the ANN index failed; searches stay exact")
            self._failed_at = time.monotonic()
            self._report(state="failed", detail=f"build failed: {exc}", errors=[*self.status.errors[-4:], str(exc)])

    def _build_locked(self, conn: apsw.Connection, full: bool, started: float) -> None:
        from usearch.index import Index

        with write_transaction(conn):  # from now on every vector change is logged (the snapshot sees the rest)
            conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('ann_log', '1')")
        meta = self._read_sidecar()
        if not full and (meta is None or self._usable(conn, meta) is not None):
            full = True
        threads = self.config.threads or (os.cpu_count() or 1)
        with _read_snapshot(conn):
            seq = _last_seq(conn)
            generation = _meta(conn, "ann_generation")
            token = uuid.uuid4().hex[:8]
            name = f"space-{self.space.space_id}-{seq}-{token}.usearch"
            if full:
                index = Index(
                    ndim=self.space.dim,
                    metric="cos",
                    dtype=self.config.dtype,
                    connectivity=self.config.connectivity,
                    expansion_add=self.config.expansion_add,
                    expansion_search=self.config.expansion_search,
                )
                row = maybe_one(conn, f"SELECT count(*) FROM {self.space.table}")
                total = int(row[0]) if row else 0
                done = 0
                matrix = _new_matrix(self.directory, name, total, self.space.dim)
                keys_by_row = np.zeros(total, dtype=np.uint64)
                for chunk in _chunks(conn.execute(f"SELECT rowid, embedding FROM {self.space.table}")):
                    if self._stop.is_set():
                        raise _Stopped
                    keys = np.array([int(r[0]) for r in chunk], dtype=np.uint64)
                    vectors = np.frombuffer(b"".join(bytes(r[1]) for r in chunk), dtype="<f4").reshape(
                        len(chunk), self.space.dim
                    )
                    if done + len(chunk) > total:
                        raise ValueError("the store changed while it was read in one snapshot")
                    index.add(keys, vectors, threads=threads)
                    matrix[done : done + len(chunk)] = _units(vectors)
                    keys_by_row[done : done + len(chunk)] = keys
                    done += len(chunk)
                    self._report(progress=done / total if total else 1.0, detail=f"indexed {done} of {total}")
            else:
                assert meta is not None
                restored = Index.restore(str(self.directory / str(meta["file"])), view=False)
                if restored is None:
                    raise ValueError(f"index file {meta['file']} could not be read")
                index = restored
                rows = all_rows(
                    conn,
                    "SELECT memory_rowid, vector FROM vector_changes WHERE space_id = ? AND seq > ? AND seq <= ? "
                    "ORDER BY seq",
                    (self.space.space_id, int(meta["seq"]), seq),
                )
                latest: dict[int, bytes | None] = {}
                for rowid, vector in rows:
                    latest[int(rowid)] = None if vector is None else bytes(vector)
                stale = np.array(list(latest), dtype=np.uint64)
                if len(stale):
                    present = stale[np.atleast_1d(index.contains(stale))]
                    if len(present):
                        index.remove(present)
                adds = [(rowid, vector) for rowid, vector in latest.items() if vector is not None]
                keys = np.array([r for r, _ in adds], dtype=np.uint64)
                vectors = np.frombuffer(b"".join(v for _, v in adds), dtype="<f4").reshape(len(adds), self.space.dim)
                if adds:
                    index.add(keys, vectors, threads=threads)
                old = VectorTable.open(self.directory, str(meta["file"]), self.space.dim)
                old_keys = old.keys_by_row()
                kept = np.flatnonzero(~np.isin(old_keys, stale))
                matrix = _new_matrix(self.directory, name, len(kept) + len(adds), self.space.dim)
                for start in range(0, len(kept), 65_536):
                    part = kept[start : start + 65_536]
                    matrix[start : start + len(part)] = old.matrix[part]
                matrix[len(kept) :] = _units(vectors)
                keys_by_row = np.concatenate([old_keys[kept], keys])
                del old
        _finish_matrix(self.directory, name, matrix)
        VectorTable.save(self.directory, name, keys_by_row)
        tmp = self.directory / f".{name}.tmp"
        index.save(str(tmp))
        os.replace(tmp, self.directory / name)
        seconds = round(time.monotonic() - started, 2)
        sidecar = {
            "format": FORMAT,
            "library": LIBRARY,
            "library_version": _usearch_version(),
            "generation": generation,
            "space_id": self.space.space_id,
            "model": self.space.model,
            "dim": self.space.dim,
            "dtype": self.config.dtype,
            "connectivity": self.config.connectivity,
            "seq": seq,
            "count": len(index),
            "file": name,
            "vectors": _side_names(name)[0],
            "saved_at": time.time(),
            "build_seconds": seconds,
            "full": full,
        }
        del index
        tmp_sidecar = self.sidecar.with_suffix(f".{token}.tmp")
        tmp_sidecar.write_text(json.dumps(sidecar, indent=1), encoding="utf-8")
        os.replace(tmp_sidecar, self.sidecar)
        with write_transaction(conn):  # the file covers every change up to seq: those log rows may go
            conn.execute("DELETE FROM vector_changes WHERE space_id = ? AND seq <= ?", (self.space.space_id, seq))
            conn.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (_pruned_key(self.space.space_id), str(seq))
            )
        current = {name, *_side_names(name)}
        for stale_file in self.directory.glob(f"space-{self.space.space_id}-*"):
            if stale_file.name not in current:
                with contextlib.suppress(OSError):
                    stale_file.unlink()  # a process still mapping it keeps its pages until it moves on
        log.info("ANN index for %s saved: %d vectors in %.1f s", self.space.model, sidecar["count"], seconds)
        self._report(state="ready", progress=None, detail="", build_seconds=seconds)


class _Stopped(Exception):
    pass


def _chunks(rows: Iterator[Any]) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == _BUILD_CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _units(matrix: Vector) -> Vector:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.asarray(matrix / np.where(norms == 0, 1, norms), dtype=np.float32)


def _unit(vector: Vector) -> Vector:
    q = np.asarray(vector, dtype=np.float32).reshape(-1)
    norm = float(np.linalg.norm(q))
    return q / norm if norm else q


def _usearch_version() -> str:
    try:
        import usearch

        return str(getattr(usearch, "__version__", "?"))
    except ImportError:
        return "?"


def index_dir(db_path: Path) -> Path:
    """Where a store's index files live: `<store file>.ann/` beside it."""
    return db_path.parent / f"{db_path.name}.ann"


def available() -> bool:
    """Whether the index library is installed (without it every search is exact)."""
    try:
        import usearch.index  # noqa: F401
    except ImportError:
        return False
    return True


class AnnManager:
    """The indexes of one store in this process, one per embedding space, created on first use."""

    def __init__(
        self,
        db_path: Path,
        config: AnnConfig,
        busy_timeout_ms: int = 10_000,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        self.db_path = db_path
        self.config = config
        self.busy_timeout_ms = busy_timeout_ms
        self.on_progress = on_progress
        self._indexes: dict[int, AnnIndex] = {}
        self._lock = threading.Lock()
        self._enabled = config.enabled and str(db_path) != ":memory:"
        self._checked = False

    @property
    def enabled(self) -> bool:
        """Turned on and the library installed (imported on first use, never on start-up)."""
        if self._enabled and not self._checked:
            self._checked = True
            if not available():
                log.warning("usearch is not installed: vector searches are exact (brute force)")
                self._enabled = False
        return self._enabled

    def index_for(self, space: EmbeddingSpace) -> AnnIndex | None:
        if not self.enabled:
            return None
        with self._lock:
            index = self._indexes.get(space.space_id)
            if index is None or index.space != space:
                index = AnnIndex(self.db_path, space, self.config, self.busy_timeout_ms, self.on_progress)
                self._indexes[space.space_id] = index
            return index

    def remove_unknown_spaces(self, known: set[int]) -> None:
        """Delete index files of spaces the store no longer has: left by a process that dropped a space
        and stopped before deleting them, or one that ran with the index turned off."""
        directory = index_dir(self.db_path)
        if not directory.is_dir():
            return
        named = (re.match(r"\.*space-(\d+)", path.name) for path in directory.iterdir())
        leftover = {int(match[1]) for match in named if match and int(match[1]) not in known}
        if leftover:
            log.info("deleting the vector index files of dropped embedding spaces %s", sorted(leftover))
            self.remove_spaces(sorted(leftover))

    def remove_spaces(self, space_ids: list[int]) -> None:
        """Spaces dropped from the store (`reembed` finished): stop their indexes and delete their files,
        which at 1M vectors hold ~2.4 GB that nothing would read again."""
        with self._lock:
            indexes = [self._indexes.pop(space_id) for space_id in space_ids if space_id in self._indexes]
        for index in indexes:
            index.close(wait=True)
        directory = index_dir(self.db_path)
        for space_id in space_ids:
            for path in [
                *directory.glob(f"space-{space_id}.*"),
                *directory.glob(f"space-{space_id}-*"),
                *directory.glob(f".space-{space_id}-*"),
            ]:
                with contextlib.suppress(OSError):
                    path.unlink()  # a process still mapping it keeps its pages until it lets go

    def statuses(self) -> list[AnnStatus]:
        with self._lock:
            return [index.status for index in self._indexes.values()]

    def close(self, wait: bool = False) -> None:
        with self._lock:
            indexes = list(self._indexes.values())
            self._indexes.clear()
        for index in indexes:
            index.close(wait=wait)
