"""The vectors beside the graph: every indexed vector (float32, unit length, memory-mapped) by rowid."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import numpy.typing as npt

from hivemind_app.store.ann.files import SpaceFiles, side_names

Vector = npt.NDArray[np.float32]


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
    def open(cls, files: SpaceFiles, name: str, dim: int) -> VectorTable:
        vectors_name, keys_name = side_names(name)
        matrix = np.load(files.path(vectors_name), mmap_mode="r")
        keys = np.load(files.path(keys_name))
        if matrix.dtype != np.float32 or matrix.ndim != 2 or matrix.shape[1] != dim:
            raise ValueError(f"{vectors_name} holds {matrix.dtype} {matrix.shape}, not float32 rows of {dim}")
        if keys.dtype != np.uint64 or keys.shape != (2, matrix.shape[0]):
            raise ValueError(f"{keys_name} does not match {vectors_name}")
        return cls(matrix, keys[0], keys[1])

    @staticmethod
    def save(files: SpaceFiles, name: str, keys_by_row: npt.NDArray[np.uint64]) -> None:
        """Write the key file for a matrix already written (row i holds the vector of keys_by_row[i])."""
        order = np.argsort(keys_by_row, kind="stable")
        keys = np.stack([keys_by_row[order], order.astype(np.uint64)])
        _, keys_name = side_names(name)
        tmp = files.tmp(keys_name)
        with open(tmp, "wb") as out:
            np.save(out, keys)
        os.replace(tmp, files.path(keys_name))

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


def new_matrix(files: SpaceFiles, name: str, count: int, dim: int) -> Any:
    """A memory-mapped float32 matrix for the vectors beside index file `name`, written as a temporary file."""
    vectors_name, _ = side_names(name)
    return np.lib.format.open_memmap(files.tmp(vectors_name), mode="w+", dtype=np.float32, shape=(count, dim))


def finish_matrix(files: SpaceFiles, name: str, matrix: Any) -> None:
    """Flush a matrix from `new_matrix` and move it into place."""
    matrix.flush()
    del matrix
    vectors_name, _ = side_names(name)
    os.replace(files.tmp(vectors_name), files.path(vectors_name))


def units(matrix: Vector) -> Vector:
    """Each row scaled to unit length (a zero row stays zero)."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.asarray(matrix / np.where(norms == 0, 1, norms), dtype=np.float32)


def unit(vector: Vector) -> Vector:
    q = np.asarray(vector, dtype=np.float32).reshape(-1)
    norm = float(np.linalg.norm(q))
    return q / norm if norm else q
