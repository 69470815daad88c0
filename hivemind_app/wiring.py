"""Builds one node's parts once, in dependency order: store -> hub -> services. `Hive` holds the result.

Nothing else constructs these objects, so each has exactly one instance per `Hive` and every service sees
the same database connection, hub client and embedders.
"""

from __future__ import annotations

from dataclasses import dataclass

from hivemind_app.config import Settings
from hivemind_app.hub.sync import HubSync
from hivemind_app.ml.embedder import Embedder
from hivemind_app.ml.llm import LocalLLM, RemoteLLM
from hivemind_app.retrieval.pipeline import Retrieval
from hivemind_app.services.embedding import EmbedderFactory, EmbeddingService
from hivemind_app.services.language import LanguageService
from hivemind_app.services.learning_loop import LearningLoop
from hivemind_app.services.memories import MemoryService
from hivemind_app.services.notices import Notices
from hivemind_app.services.queue import QueueService
from hivemind_app.services.sessions import SessionService
from hivemind_app.services.status import StatusService
from hivemind_app.services.sync import SyncService
from hivemind_app.services.training import TrainingService
from hivemind_app.services.watch import WatchService
from hivemind_app.store.ann import AnnConfig, AnnManager
from hivemind_app.store.database import Database
from hivemind_app.store.local_state import LocalState
from hivemind_app.store.memory_store import MemoryStore
from hivemind_app.store.watch_state import WatchState


@dataclass(frozen=True)
class Parts:
    db: Database
    store: MemoryStore
    local: LocalState
    hub: HubSync | None
    embedding: EmbeddingService
    sync: SyncService
    memories: MemoryService
    retrieval: Retrieval
    language: LanguageService
    sessions: SessionService
    queue: QueueService
    training: TrainingService
    status: StatusService
    watch: WatchService

    def close(self) -> None:
        self.sync.close()
        self.store.close_index()
        self.db.close()


def ann_manager(settings: Settings) -> AnnManager:
    search = settings.search
    config = AnnConfig(
        enabled=search.ann,
        min_vectors=search.ann_min_vectors,
        connectivity=search.ann_connectivity,
        expansion_add=search.ann_expansion_add,
        expansion_search=search.ann_expansion_search,
        dtype=search.ann_dtype,
        exact_filter_limit=search.ann_exact_filter_limit,
        compact_changes=search.ann_compact_changes,
        threads=search.ann_threads,
    )
    return AnnManager(settings.db_path, config, busy_timeout_ms=settings.store.busy_timeout_ms)


def build(
    settings: Settings,
    embedder: Embedder | None,
    embedder_factory: EmbedderFactory | None,
    llm: LocalLLM | RemoteLLM | None,
    sync_on_read: bool,
) -> Parts:
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    db = Database(
        settings.db_path,
        node_name=settings.node.name,
        busy_timeout_ms=settings.store.busy_timeout_ms,
    )
    store = MemoryStore(db, ann=ann_manager(settings))
    local = LocalState(db)
    hub = HubSync(settings, db, store) if settings.redis.url else None
    notices = Notices()
    sync = SyncService(hub, sync_on_read)
    embedding = EmbeddingService(settings, store, embedder, embedder_factory)
    memories = MemoryService(settings, store, embedding, sync, notices)
    language = LanguageService(settings, notices, llm)
    return Parts(
        db=db,
        store=store,
        local=local,
        hub=hub,
        embedding=embedding,
        sync=sync,
        memories=memories,
        retrieval=Retrieval(settings, store, embedding, sync, notices, rewriter=language.reformulate),
        language=language,
        sessions=SessionService(settings, local, memories, language, sync),
        queue=QueueService(settings, local, sync),
        training=TrainingService(LearningLoop(settings, db, hub), sync),
        status=StatusService(settings, db, store, embedding, sync),
        watch=WatchService(settings, WatchState(db), memories),
    )
