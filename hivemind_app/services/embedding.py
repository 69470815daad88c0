"""Which embedder serves which vector space, and query vectors with their two caches.

Invariant: a store's vectors and its queries always come from the same space (the store's active one),
whatever the settings say now; a settings change takes effect through `reembed`, never silently.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence

from hivemind_app.config import Settings
from hivemind_app.content import text_hash
from hivemind_app.errors import StoreError
from hivemind_app.ml.backends import configured_space, local_embedder
from hivemind_app.ml.embedder import Embedder
from hivemind_app.ml.remote import FailoverEmbedder, RemoteEmbedder, local_node_health
from hivemind_app.store.memory_store import MemoryStore, Vector
from hivemind_app.store.models import EmbeddingSpace

EmbedderFactory = Callable[[str], Embedder]


class EmbeddingService:
    def __init__(
        self,
        settings: Settings,
        memories: MemoryStore,
        embedder: Embedder | None = None,
        factory: EmbedderFactory | None = None,
    ) -> None:
        self.settings = settings
        self.memories = memories
        self._factory = factory or self._local_node_then_in_process
        self._embedders: dict[str, Embedder] = {}
        if embedder is not None:
            self._embedders[embedder.model_name] = embedder
        self._query_cache: OrderedDict[tuple[str, str], Vector] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def configured_model(self) -> str:
        """The vector space the settings make: `embedding.model`, `+int8` with the onnx-int8 backend."""
        return configured_space(self.settings.embedding)

    @property
    def search_model(self) -> str:
        """The model whose vectors the store holds (searches must embed queries with it)."""
        active = self.memories.active_space()
        return active.model if active else self.configured_model

    @property
    def model_mismatch(self) -> str | None:
        """A sentence when the store's vectors come from another model than the configured one."""
        active = self.memories.active_space()
        if active and active.model != self.configured_model:
            return (
                f"The store's vectors come from {active.model}, but the settings (embedding.model, "
                f"embedding.backend) make {self.configured_model}; "
                "searches keep using the store's model until you run `hivemind-app reembed`."
            )
        return None

    def embedder_for(self, model: str) -> Embedder:
        with self._lock:
            if model not in self._embedders:
                self._embedders[model] = self._factory(model)
            return self._embedders[model]

    def _local_node_then_in_process(self, model: str) -> Embedder:
        """The local node's /embed when a node runs here (its model is already loaded), else the model in-process."""
        in_process = local_embedder(model, self.settings.embedding)
        node = self.settings.node
        checked: list[str | None] = []

        def candidates() -> list[Embedder]:
            if not checked:  # ask once per process: a CLI call or an MCP server's lifetime
                health = local_node_health(node.local_url, node.hive)
                checked.append(node.local_url if health and health.get("embed_model") == model else None)
            url = checked[0]
            remote: list[Embedder] = [RemoteEmbedder(url, model, timeout_s=30.0)] if url else []
            return [*remote, in_process]

        return FailoverEmbedder(model, candidates)

    def search_space(self) -> tuple[Embedder, EmbeddingSpace]:
        """The embedder and vector space for searching and storing; raises EmbedderUnavailableError."""
        active = self.memories.active_space()
        embedder = self.embedder_for(active.model if active else self.configured_model)
        space = active or self.memories.ensure_space(embedder.model_name, embedder.dim)
        return embedder, space

    def embed_query(self, text: str) -> tuple[Vector, EmbeddingSpace]:
        """The query's vector in the search space: from this process's LRU, the store's cache, or the model."""
        embedder, space = self.search_space()
        key = (space.model, text_hash(text))
        cached = self._query_cache.get(key)
        if cached is None:
            cached = self.memories.cached_embedding(space.model, key[1], space.dim)
            if cached is None:
                cached = embedder.embed([text])[0]
                # The cache is an optimisation; a busy store must not fail a search.
                with contextlib.suppress(StoreError):
                    self.memories.cache_embedding(space.model, key[1], cached)
            self._query_cache[key] = cached
            limit = self.settings.embedding.query_cache_size
            while len(self._query_cache) > limit:
                self._query_cache.popitem(last=False)
        else:
            self._query_cache.move_to_end(key)
        return cached, space

    def forget_queries(self, texts: Sequence[str] | None = None) -> None:
        """Forget query vectors (all, or those of `texts`) in both caches, so the next search embeds again
        (benchmarks measure the model this way)."""
        model = self.search_model
        hashes = None if texts is None else [text_hash(t) for t in texts]
        if hashes is None:
            self._query_cache.clear()
        for key in hashes or ():
            self._query_cache.pop((model, key), None)
        self.memories.forget_cached_embeddings(model, hashes)
