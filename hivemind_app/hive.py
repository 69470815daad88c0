"""The facade every front end uses: the seed's `HiveMindMCP` interface, made real on the local store.

CLI, MCP server, hooks, TUI and the node's HTTP API all call this object and nothing below it. Each method
delegates in a line or two to one service (`services/`, `retrieval/`), built once by `wiring.py`,
so each behaviour (validation, dedup, redaction, embedding, fallback to keyword search) lives in exactly
one place. What crosses this boundary is typed (`records/`, `store.models`), turned into JSON only by the
front end that prints or sends it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

from hivemind_app import wiring
from hivemind_app.config import Settings, load_settings
from hivemind_app.hub.sync import SyncReport
from hivemind_app.ml.embedder import Embedder
from hivemind_app.ml.llm import LocalLLM, RemoteLLM
from hivemind_app.ml.trainer import RoundProgress
from hivemind_app.records.learning import AdapterInfo, LearningEntry
from hivemind_app.records.memories import Memory, MemoryDraft, ReembedProgress, SearchFilters, StoredMemory, StoreStats
from hivemind_app.records.search import SEARCH_MODES, SearchMode
from hivemind_app.records.sessions import Session
from hivemind_app.records.status import HiveStatus, IndexState
from hivemind_app.records.watch import SourceSpan, WatchedFolder, WatchReport
from hivemind_app.retrieval.query import make_filters
from hivemind_app.retrieval.result import SearchResult
from hivemind_app.seed import TOOL_CACHE_TTL_S
from hivemind_app.services.embedding import EmbedderFactory
from hivemind_app.services.hub_link import HubLink
from hivemind_app.services.sessions import SUMMARY_IDLE_S
from hivemind_app.store.memory_store import Vector
from hivemind_app.store.models import EmbeddingSpace

__all__ = ["SEARCH_MODES", "Hive", "HubLink", "MemoryDraft", "ReembedProgress", "SearchMode", "SearchResult"]


class Hive:
    """One node's view of the hive memory."""

    def __init__(
        self,
        settings: Settings | None = None,
        embedder: Embedder | None = None,
        embedder_factory: EmbedderFactory | None = None,
        llm: LocalLLM | RemoteLLM | None = None,
        sync_on_read: bool = True,
    ) -> None:
        self.settings = settings or load_settings()
        self.parts = wiring.build(self.settings, embedder, embedder_factory, llm, sync_on_read)
        """The store, hub and services behind this facade, for the core's own tests and benchmarks. Front ends
        never touch it (tests/test_facade.py checks): everything they need is a method here."""

    # -- identity, lifecycle and the narrow hub view front ends may hold ------------------------------

    @property
    def node_id(self) -> str:
        """This node's id in the hive (stored in the local database, minted once)."""
        return self.parts.db.node_id

    @property
    def node_rekeyed_from(self) -> str | None:
        """The id this store had until it found, on opening, that it is a copy of another node's store."""
        return self.parts.db.identity.rekeyed_from

    def reset_node_id(self) -> tuple[str, str]:
        """Give this store a new node id (the old one is kept in its history); returns (old, new)."""
        old = self.parts.db.node_id
        return old, self.parts.db.reset_node_id().node_id

    @property
    def hub_configured(self) -> bool:
        """Whether a hub (redis.url) is configured, reachable or not."""
        return self.parts.hub is not None

    @property
    def hub_link(self) -> HubLink | None:
        """Liveness, nudges and heartbeats of the hub (None without one); never Redis itself."""
        return self.parts.hub

    def check_store(self) -> tuple[StoreStats, str]:
        """The store's counts and SQLite's `quick_check` verdict ('ok' when the file is sound)."""
        stats = self.parts.store.stats()
        row = self.parts.db.conn.execute("PRAGMA quick_check").fetchone()
        return stats, str(row[0]) if row else "no answer"

    def close(self) -> None:
        self.parts.close()

    def __enter__(self) -> Hive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the hub: push after writes, pull before reads; never an error for being offline -------------

    def sync(self, force: bool = False) -> SyncReport | None:
        """One push-and-pull pass with the hub now (None when no hub is configured)."""
        return self.parts.sync.sync(force=force)

    def verify_sync(self, repair: bool = True) -> dict[str, int]:
        """Anti-entropy: compare every memory here with Redis and repair the drift found."""
        return self.parts.sync.verify(repair=repair)

    def hub_nodes(self) -> list[dict[str, Any]]:
        """Nodes with a live heartbeat in Redis ([] with no hub or while it is unreachable)."""
        return self.parts.sync.hub_nodes()

    def conflicts(self, sync: bool = True) -> dict[str, dict[str, Any]]:
        """Sessions edited on two nodes while apart: {session: {winner, loser}}, until resolved."""
        return self.parts.sessions.conflicts(sync=sync)

    def resolve_conflict(self, session_id: str, keep: str) -> dict[str, Any]:
        """Keep "A" (the winning edit) or "B" (the other one, written again as the newest edit)."""
        return self.parts.sessions.resolve_conflict(session_id, keep)

    # -- embedding ----------------------------------------------------------------------------------

    @property
    def configured_model(self) -> str:
        """The vector space the settings make: `embedding.model`, `+int8` with the onnx-int8 backend."""
        return self.parts.embedding.configured_model

    @property
    def search_model(self) -> str:
        """The model whose vectors the store holds (searches must embed queries with it)."""
        return self.parts.embedding.search_model

    @property
    def model_mismatch(self) -> str | None:
        """A sentence when the store's vectors come from another model than the configured one."""
        return self.parts.embedding.model_mismatch

    def embedder_for(self, model: str) -> Embedder:
        return self.parts.embedding.embedder_for(model)

    def embed_query(self, text: str) -> tuple[Vector, EmbeddingSpace]:
        return self.parts.embedding.embed_query(text)

    # -- memories -----------------------------------------------------------------------------------

    def store_memory(
        self,
        text: str,
        tags: Sequence[str] = (),
        source: str | None = None,
        session_id: str | None = None,
        project: str | None = None,
        occurred_at: str | float | None = None,
    ) -> StoredMemory:
        """Store one memory (or merge tags and source into the existing one with the same text); `project`:
        where it comes from (`hivemind_app.projects`; an existing memory keeps the project it has);
        `occurred_at`: the time it describes, when known (`timespec.parse_time`: unix seconds, ISO date, 3d)."""
        draft = MemoryDraft(text, tags, source, session_id, project, occurred_at)
        return self.parts.memories.store_many([draft])[0]

    def store_memories(
        self, drafts: Sequence[MemoryDraft], progress: Callable[[int], None] | None = None
    ) -> list[StoredMemory]:
        """Store many memories: validated first (all or nothing), embedded in batches, written in one transaction."""
        return self.parts.memories.store_many(drafts, progress)

    def backfill_embeddings(self, batch: int = 256, progress: Callable[[int], None] | None = None) -> int:
        """Embed every live memory that has no vector in the active space; returns how many were embedded."""
        return self.parts.memories.backfill(batch, progress)

    def reembed(
        self, model: str | None = None, batch: int = 256, progress: Callable[[ReembedProgress], None] | None = None
    ) -> ReembedProgress:
        """Embed every memory with `model` and switch searches to it (resumable; see MemoryService.reembed)."""
        return self.parts.memories.reembed(model, batch, progress)

    def update_memory(self, memory_id: str, text: str, tags: Sequence[str] = ()) -> tuple[StoredMemory, Memory]:
        """Supersede a memory with new text (the old one deleted, named in the new one's sources); returns
        (the new memory, the old one)."""
        return self.parts.memories.supersede(memory_id, text, tags)

    def get_memory(self, memory_id: str) -> Memory:
        return self.parts.memories.get(memory_id)

    def delete_memory(self, memory_id: str) -> Memory:
        return self.parts.memories.delete(memory_id)

    def recent_memories(self, limit: int = 20, filters: SearchFilters | None = None) -> list[Memory]:
        return self.parts.memories.recent(limit, filters)

    # -- watched folders: imported, then kept in step with their files -------------------------------

    def watch_folders(
        self, paths: Sequence[Path], tags: Sequence[str] = (), progress: Callable[[int, int], None] | None = None
    ) -> WatchReport:
        """Follow these folders from now on, importing what they hold now (`progress(done, total)` per file read)."""
        return self.parts.watch.add(paths, tags, progress)

    def unwatch_folder(self, path: Path, forget: bool = False) -> tuple[str, int]:
        """Stop following a folder; `forget` deletes its memories too. Returns (the folder, memories deleted)."""
        return self.parts.watch.remove(path, forget)

    def watched_folders(self) -> list[WatchedFolder]:
        """The watched folders with their counts (files, memories), last change and the files not read."""
        return self.parts.watch.folders()

    def watched_roots(self) -> list[str]:
        """The watched folders' paths alone: cheap, for a file watcher's checks."""
        return self.parts.watch.roots()

    def reconcile_watched(
        self,
        folders: Sequence[str] | None = None,
        progress: Callable[[int, int], None] | None = None,
        paths: Collection[str] | None = None,
    ) -> WatchReport:
        """Bring the memories of these watched folders (default: all) in step with their files now (`paths`:
        only these changed, as a file watcher reported; the folder is walked whole when that cannot tell)."""
        return self.parts.watch.reconcile(folders, progress, paths)

    def source_spans(self, memory_id: str) -> list[SourceSpan]:
        """The watched files (and byte ranges) a memory came from; [] for one not from a watched folder."""
        return self.parts.watch.spans(self.parts.memories.get(memory_id).id)

    # -- search -------------------------------------------------------------------------------------

    def make_filters(
        self,
        session_id: str | None = None,
        source: str | None = None,
        tags: Sequence[str] = (),
        since: str | float | None = None,
        until: str | float | None = None,
        projects: Sequence[str] | None = None,
    ) -> SearchFilters:
        """Checked filters; `projects`: the scope (those projects' memories, plus those of no project and
        those tagged `global`); None: every project."""
        return make_filters(session_id, source, tags, since, until, projects)

    def search_memory(
        self,
        query: str,
        limit: int | None = None,
        mode: str = "hybrid",
        filters: SearchFilters | None = None,
        reformulate: bool = False,
    ) -> SearchResult:
        """The seed's semantic search: hybrid (vector + BM25, fused by score; retrieval/fusion.py) by default.

        With `reformulate`, the local LLM rewrites the query first and the rewrite's ranking joins the
        fusion beside the original's (never replacing it).
        """
        return self.parts.retrieval.search(query, limit, mode, filters, reformulate)

    def index_status(self) -> list[IndexState]:
        """The ANN index of the active embedding space (state, build progress, vectors indexed and changed)."""
        return self.parts.status.index_status()

    # -- the local LLM beside the write path ----------------------------------------------------------

    def suggest_tool(self, task: str, tools: Sequence[str]) -> dict[str, Any]:
        """The local LLM's pick of a tool from `tools` for `task`, with arguments (always valid JSON)."""
        return self.parts.language.suggest_tool(task, tools)

    def summarise_closed_sessions(self, idle_s: float = SUMMARY_IDLE_S, limit: int = 10) -> list[StoredMemory]:
        """Turn sessions closed for `idle_s` into memories (facts plus the LLM's summary; one per session)."""
        return self.parts.sessions.summarise_closed(idle_s, limit)

    # -- the seed's session, learning-queue and tool-cache calls ------------------------------------

    def digest_session(self, session_id: str, outcome: str) -> StoredMemory | None:
        """Store the session's digest, written without an LLM, in place of its previous one (None: nothing
        recorded yet); an LLM summary written later replaces it."""
        return self.parts.sessions.digest(session_id, outcome)

    def get_context(self, session_id: str) -> Session:
        return self.parts.sessions.get(session_id)

    def set_context(self, session_id: str, update: dict[str, Any]) -> Session:
        """Merge `update` into the session: `current_task` replaces, `files` adds, anything else joins `context`."""
        return self.parts.sessions.set(session_id, update)

    def close_session(self, session_id: str) -> Session:
        return self.parts.sessions.close(session_id)

    def list_sessions(self, limit: int = 100) -> list[Session]:
        """Sessions touched in the last seven days, most recent first."""
        return self.parts.sessions.recent(limit)

    def clear_session(self, session_id: str) -> None:
        self.parts.sessions.clear(session_id)

    def add_to_learning_queue(self, interaction: dict[str, Any]) -> int:
        """Record one interaction (user_query, tool_used, result, success) for the trainer."""
        return self.parts.queue.add_interaction(interaction)

    def learning_entries(self, limit: int = 100) -> list[LearningEntry]:
        """This node's learning queue as stored (checked and redacted), newest first."""
        return self.parts.queue.entries(limit)

    def get_tool_cache(self, tool: str, inputs: str) -> str | None:
        return self.parts.queue.get_tool_output(tool, inputs)

    def set_tool_cache(self, tool: str, inputs: str, output: str, ttl_s: float = TOOL_CACHE_TTL_S) -> None:
        self.parts.queue.set_tool_output(tool, inputs, output, ttl_s)

    # -- the learning loop: training rounds and the adapters they publish ----------------------------

    def train_round(
        self,
        major: bool = False,
        progress: Callable[[RoundProgress], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> dict[str, Any]:
        """One training round now, whatever the schedule says; returns its report (verdict, metrics, version)."""
        return self.parts.training.train_round(major, progress, should_stop)

    def train_if_due(
        self, progress: Callable[[RoundProgress], None] | None = None, should_stop: Callable[[], bool] | None = None
    ) -> dict[str, Any] | None:
        """The train role's scheduled round: runs only when the interval has passed and enough entries wait."""
        return self.parts.training.train_if_due(progress, should_stop)

    def training_history(self, limit: int = 50) -> list[dict[str, Any]]:
        return self.parts.training.history(limit)

    def adapters(self) -> list[AdapterInfo]:
        return self.parts.training.adapters()

    def active_adapter(self) -> AdapterInfo | None:
        return self.parts.training.active_adapter()

    def activate_adapter(self, version: int | None) -> AdapterInfo | None:
        """Make `version` the adapter every infer node serves (None: the base model); a rollback is this too."""
        return self.parts.training.activate(version)

    def fetch_adapter(self, version: int) -> Path:
        """The adapter's file on this node, its checksum verified (AdapterError if corrupt)."""
        return self.parts.training.fetch(version)

    def learning_status(self) -> dict[str, Any]:
        return self.parts.training.status()

    # -- status -------------------------------------------------------------------------------------

    def status(self) -> HiveStatus:
        return self.parts.status.status()
