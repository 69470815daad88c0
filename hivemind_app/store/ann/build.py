"""Building an index file in the background: a full build from sqlite-vec, or the current file plus the
changes logged since (compaction), with progress reported as it goes.

Only one process builds a space at a time (a lock file); the others keep searching (exactly, or with their
delta) and map the new file when its sidecar changes. A failed build leaves searches exact and is retried
after `_RETRY_AFTER_S`.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import apsw
import numpy as np
import numpy.typing as npt

from hivemind_app.store.ann import changes, sidecar
from hivemind_app.store.ann.config import AnnConfig
from hivemind_app.store.ann.files import SpaceFiles, side_names
from hivemind_app.store.ann.status import Reporter
from hivemind_app.store.ann.vectors import VectorTable, finish_matrix, new_matrix, units
from hivemind_app.store.db import connect, maybe_one, write_transaction
from hivemind_app.store.models import EmbeddingSpace

log = logging.getLogger(__name__)

# How long a failed build waits before the next search may try again.
_RETRY_AFTER_S = 60.0
_BUILD_CHUNK = 10_000
_COPY_CHUNK = 65_536

# What a build produced before it is saved: the usearch index, the vector matrix, the key of each matrix row.
Built = tuple[Any, Any, npt.NDArray[np.uint64]]


class _Stopped(Exception):
    pass


class Builder:
    """The background builds of one space's index file."""

    def __init__(
        self,
        db_path: Path,
        space: EmbeddingSpace,
        config: AnnConfig,
        files: SpaceFiles,
        busy_timeout_ms: int,
        reporter: Reporter,
    ) -> None:
        self.db_path = db_path
        self.space = space
        self.config = config
        self.files = files
        self.busy_timeout_ms = busy_timeout_ms
        self.reporter = reporter
        self._worker: threading.Thread | None = None
        self._stop = threading.Event()
        self._failed_at = 0.0

    @property
    def building(self) -> bool:
        return self._worker is not None and self._worker.is_alive()

    def start(self, full: bool, has_file: bool) -> None:
        """Start a build unless one runs, the index is closing, or the last one failed a moment ago.

        `full`: from sqlite-vec (else the current file plus the logged changes); `has_file`: searches keep
        using the current file meanwhile.
        """
        if self.building or self._stop.is_set():
            return
        status = self.reporter.status
        if status.state == "failed" and time.monotonic() - self._failed_at < _RETRY_AFTER_S:
            return
        self.reporter.report(state="building" if full or not has_file else "ready", progress=0.0 if full else None)
        self._worker = threading.Thread(
            target=self._run, args=(full,), name=f"ann-build-{self.space.space_id}", daemon=True
        )
        self._worker.start()

    def stop(self, wait: bool = False) -> None:
        """Stop a running build at its next chunk (and wait for it to end)."""
        self._stop.set()
        worker = self._worker
        if wait and worker is not None:
            worker.join()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until a running build ends; True when none is running any more."""
        worker = self._worker
        if worker is not None:
            worker.join(timeout)
            return not worker.is_alive()
        return True

    def _run(self, full: bool) -> None:
        started = time.monotonic()
        try:
            self.files.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            with open(self.files.lock, "a+") as lock:
                try:
                    fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    self.reporter.report(detail="another process is building the index")
                    return
                for leftover in self.files.leftover_tmps():
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
            status = self.reporter.status
            self.reporter.report(state="failed", detail=f"build failed: {exc}", errors=[*status.errors[-4:], str(exc)])

    def _build_locked(self, conn: apsw.Connection, full: bool, started: float) -> None:
        with write_transaction(conn):  # from now on every vector change is logged (the snapshot sees the rest)
            changes.start_logging(conn)
        meta = sidecar.read(self.files)
        if not full and (meta is None or sidecar.unusable_reason(conn, meta, self.space, self.config) is not None):
            full = True
        with changes.read_snapshot(conn):
            seq = changes.last_seq(conn)
            generation = changes.generation(conn)
            token = uuid.uuid4().hex[:8]
            name = self.files.index_name(seq, token)
            if full:
                built = self._full(conn, name)
            else:
                assert meta is not None
                built = self._incremental(conn, meta, name, seq)
        self._save(conn, built, name, seq=seq, generation=generation, token=token, full=full, started=started)

    def _new_index(self) -> Any:
        from usearch.index import Index

        return Index(
            ndim=self.space.dim,
            metric="cos",
            dtype=self.config.dtype,
            connectivity=self.config.connectivity,
            expansion_add=self.config.expansion_add,
            expansion_search=self.config.expansion_search,
        )

    def _full(self, conn: apsw.Connection, name: str) -> Built:
        """Every vector of the space, read in one snapshot, into a new index and matrix."""
        index = self._new_index()
        threads = self.config.threads or (os.cpu_count() or 1)
        row = maybe_one(conn, f"SELECT count(*) FROM {self.space.table}")
        total = int(row[0]) if row else 0
        done = 0
        matrix = new_matrix(self.files, name, total, self.space.dim)
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
            matrix[done : done + len(chunk)] = units(vectors)
            keys_by_row[done : done + len(chunk)] = keys
            done += len(chunk)
            self.reporter.report(progress=done / total if total else 1.0, detail=f"indexed {done} of {total}")
        return index, matrix, keys_by_row

    def _incremental(self, conn: apsw.Connection, meta: dict[str, Any], name: str, seq: int) -> Built:
        """The current file with the changes logged since it was saved (up to `seq`) folded in."""
        from usearch.index import Index

        threads = self.config.threads or (os.cpu_count() or 1)
        index = Index.restore(str(self.files.path(str(meta["file"]))), view=False)
        if index is None:
            raise ValueError(f"index file {meta['file']} could not be read")
        latest = changes.latest_between(conn, self.space.space_id, int(meta["seq"]), seq)
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
        old = VectorTable.open(self.files, str(meta["file"]), self.space.dim)
        old_keys = old.keys_by_row()
        kept = np.flatnonzero(~np.isin(old_keys, stale))
        matrix = new_matrix(self.files, name, len(kept) + len(adds), self.space.dim)
        for start in range(0, len(kept), _COPY_CHUNK):
            part = kept[start : start + _COPY_CHUNK]
            matrix[start : start + len(part)] = old.matrix[part]
        matrix[len(kept) :] = units(vectors)
        return index, matrix, np.concatenate([old_keys[kept], keys])

    def _save(self, conn: apsw.Connection, built: Built, name: str, **saved: Any) -> None:
        """Write the index, vector and key files and the sidecar, prune the log they cover, delete old files."""
        index, matrix, keys_by_row = built
        finish_matrix(self.files, name, matrix)
        VectorTable.save(self.files, name, keys_by_row)
        tmp = self.files.tmp(name)
        index.save(str(tmp))
        os.replace(tmp, self.files.path(name))
        seq, token = int(saved["seq"]), str(saved["token"])
        seconds = round(time.monotonic() - float(saved["started"]), 2)
        data = sidecar.describe(
            self.space,
            self.config,
            generation=saved["generation"],
            seq=seq,
            count=len(index),
            file=name,
            vectors=side_names(name)[0],
            saved_at=time.time(),
            build_seconds=seconds,
            full=saved["full"],
        )
        del index, built
        sidecar.write(self.files, data, token)
        with write_transaction(conn):  # the file covers every change up to seq: those log rows may go
            changes.prune(conn, self.space.space_id, seq)
        for stale_file in self.files.superseded(name):
            with contextlib.suppress(OSError):
                stale_file.unlink()  # a process still mapping it keeps its pages until it moves on
        log.info("ANN index for %s saved: %d vectors in %.1f s", self.space.model, data["count"], seconds)
        self.reporter.report(state="ready", progress=None, detail="", build_seconds=seconds)


def _chunks(rows: Iterator[Any]) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == _BUILD_CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
