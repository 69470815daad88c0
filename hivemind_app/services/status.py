"""The node's status in one typed snapshot: store, memories, embedding, hub sync, vector index."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from hivemind_app.config import Settings, default_config_path, redact_url
from hivemind_app.records.status import (
    EmbeddingState,
    HiveStatus,
    IndexState,
    MemoryCounts,
    NodeIdentity,
    RedisState,
    StoreFile,
    SyncState,
)
from hivemind_app.services.embedding import EmbeddingService
from hivemind_app.services.sync import SyncService
from hivemind_app.store.database import Database
from hivemind_app.store.memory_store import MemoryStore


def sync_state(hub_status: dict[str, Any] | None) -> SyncState:
    """The hub's status dict as a typed record; a key the record lacks fails here, not silently later."""
    if hub_status is None:
        return SyncState(configured=False)
    return SyncState(**hub_status)


class StatusService:
    def __init__(
        self, settings: Settings, db: Database, store: MemoryStore, embedding: EmbeddingService, sync: SyncService
    ) -> None:
        self.settings = settings
        self.db = db
        self.store = store
        self.embedding = embedding
        self.sync = sync

    def index_status(self) -> list[IndexState]:
        """The ANN index of the active embedding space: state (off, exact, missing, building, ready, failed),
        build progress (0..1), vectors in the index file and changed since it was saved."""
        return [IndexState(**asdict(status)) for status in self.store.index_status()]

    def status(self) -> HiveStatus:
        stats = self.store.stats()
        url = self.settings.redis.url
        configured = self.embedding.configured_model
        hub = self.sync.hub
        return HiveStatus(
            node=NodeIdentity(name=self.settings.node.name, id=self.db.node_id),
            store=StoreFile(stats.path, stats.file_bytes, stats.wal_bytes, stats.schema_version),
            memories=MemoryCounts(
                live=stats.memories,
                deleted=stats.deleted,
                embedded=stats.embedded,
                pending_embeddings=stats.pending_embeddings,
                tags=stats.tags,
            ),
            sessions=stats.sessions,
            learning_queue=stats.learning_queue,
            embedding=EmbeddingState(
                model=stats.active_model or configured,
                dim=stats.active_dim,
                configured_model=configured,
                mismatch=self.embedding.model_mismatch,
                other_spaces=stats.other_spaces,
            ),
            redis=RedisState(configured=url is not None, url=redact_url(url.get_secret_value()) if url else None),
            sync=sync_state(hub.status() if hub is not None else None),
            vector_index=next(iter(self.index_status()), None),
            config_path=str(default_config_path()),
        )
