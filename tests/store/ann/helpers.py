"""A store with its own connection and ANN manager per "process", and clustered test vectors."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import numpy.typing as npt

from hivemind_app.records.memories import NewMemory, SearchFilters
from hivemind_app.store import search
from hivemind_app.store.ann import AnnConfig, AnnManager, AnnStatus
from hivemind_app.store.database import Database
from hivemind_app.store.memory_store import MemoryStore

DIM = 32
Matrix = npt.NDArray[np.float32]


def clustered(n: int, seed: int = 0, clusters: int = 40) -> Matrix:
    """Unit vectors around a few dozen centres, the way real embeddings bunch up."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, DIM))
    vectors = centres[rng.integers(0, clusters, n)] + rng.normal(0, 0.35, size=(n, DIM))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype(np.float32)


def memory(text: str, tags: tuple[str, ...] = (), session: str | None = None) -> NewMemory:
    return NewMemory(id=hashlib.sha256(text.encode()).hexdigest(), text=text, tags=tags, session_id=session)


class Store:
    """A store file with its own connection and ANN manager: one per "process"."""

    def __init__(self, path: Path, **config: object) -> None:
        self.progress: list[AnnStatus] = []
        self.db = Database(path, node_name="test")
        options: dict[str, object] = {"min_vectors": 50, "exact_filter_limit": 100, "compact_changes": 1000}
        options.update(config)
        self.ann = AnnManager(
            path,
            AnnConfig(**options),  # type: ignore[arg-type]
            on_progress=lambda s: self.progress.append(AnnStatus(**s.to_dict())),
        )
        self.memories = MemoryStore(self.db, ann=self.ann)
        self.space = self.memories.ensure_space("test-model", DIM)

    def put(self, texts: list[str], vectors: Matrix, tags: tuple[str, ...] = ()) -> None:
        self.memories.put_many([memory(t, tags) for t in texts], list(vectors), self.space)

    def search(self, vector: Matrix, k: int = 10, filters: SearchFilters | None = None) -> list[str]:
        hits = self.memories.vector_search(self.space, vector, k, filters or SearchFilters())
        loaded = self.memories.get_many(r for r, _ in hits)
        return [loaded[r].text for r, _ in hits]

    def exact(self, vector: Matrix, k: int = 10, filters: SearchFilters | None = None) -> list[str]:
        hits = search.vector_search(self.db.conn, self.space, vector, k, filters or SearchFilters())
        loaded = self.memories.get_many(r for r, _ in hits)
        return [loaded[r].text for r, _ in hits]

    def index(self) -> AnnStatus:
        index = self.ann.index_for(self.space)
        assert index is not None
        return index.status

    def built(self) -> AnnStatus:
        """Search once (which starts a build when there is no usable index), wait for the build, refresh."""
        index = self.ann.index_for(self.space)
        assert index is not None
        self.search(np.ones(DIM, dtype=np.float32))
        assert index.wait(60)
        self.search(np.ones(DIM, dtype=np.float32))
        return index.status

    def close(self) -> None:
        self.ann.close(wait=True)
        self.db.close()
