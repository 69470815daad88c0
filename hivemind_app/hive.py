"""The facade every front end uses: the seed's `HiveMindMCP` interface, made real on the local store.

CLI, MCP server, hooks, TUI and the node's HTTP API all call this object, so each behaviour (validation,
dedup, embedding, fallback to keyword search) lives in exactly one place.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from hivemind_app.config import Settings, default_config_path, load_settings, redact_url
from hivemind_app.content import check_label, check_text, normalise, text_hash
from hivemind_app.errors import ConfigError, EmbedderUnavailableError, InvalidInputError, StoreError
from hivemind_app.hub.sync import HubSync, SyncReport
from hivemind_app.learning import LearningLoop
from hivemind_app.ml.adapters import AdapterInfo
from hivemind_app.ml.backends import configured_space, local_embedder
from hivemind_app.ml.embedder import Embedder
from hivemind_app.ml.llm import (
    LLMUnavailableError,
    LocalLLM,
    RemoteLLM,
    clean_reformulation,
    reformulation_prompt,
)
from hivemind_app.ml.remote import FailoverEmbedder, RemoteEmbedder, local_node_health
from hivemind_app.ml.trainer import RoundProgress
from hivemind_app.redact import redact, redact_value
from hivemind_app.store.ann import AnnConfig, AnnManager
from hivemind_app.store.database import Database
from hivemind_app.store.local_state import LearningEntry, LocalState
from hivemind_app.store.memory_store import MemoryStore, NewMemory, Vector
from hivemind_app.services.hub_link import HubLink
from hivemind_app.store.models import EmbeddingSpace, Hit, Memory, SearchFilters, StoredMemory, StoreStats
from hivemind_app.store.search import MAX_KNN_K, reciprocal_rank_fusion
from hivemind_app.timespec import parse_time

log = logging.getLogger(__name__)

SearchMode = Literal["hybrid", "vector", "keyword"]
SEARCH_MODES: tuple[str, ...] = ("hybrid", "vector", "keyword")
TOOL_CACHE_TTL_S = 3600.0
# A session is summarised once it has been closed this long (Claude Code closes it after every reply).
SUMMARY_IDLE_S = 600.0
# A read pulls from the hub at most this often per process (a running node pulls continuously).
READ_SYNC_INTERVAL_S = 1.0
# Opportunistic backfill on a store call: enough to drain a small backlog, small enough to stay fast.
_BACKFILL_ON_STORE = 64


@dataclass(frozen=True)
class SearchResult:
    query: str
    mode: str
    requested_mode: str
    hits: list[Hit]
    fallback: str | None = None
    took_ms: float = 0.0
    reformulated: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "reformulated": self.reformulated,
            "mode": self.mode,
            "requested_mode": self.requested_mode,
            "fallback": self.fallback,
            "took_ms": round(self.took_ms, 3),
            "results": [hit.to_dict() for hit in self.hits],
        }


@dataclass(frozen=True)
class MemoryDraft:
    """Input for `Hive.store_memories`: unvalidated, as a caller hands it over."""

    text: str
    tags: Sequence[str] = ()
    source: str | None = None
    session_id: str | None = None


@dataclass
class ReembedProgress:
    model: str
    total: int
    done: int = 0
    finished: bool = False
    dropped: list[str] = field(default_factory=list)


class Hive:
    """One node's view of the hive memory."""

    def __init__(
        self,
        settings: Settings | None = None,
        embedder: Embedder | None = None,
        embedder_factory: Callable[[str], Embedder] | None = None,
        llm: LocalLLM | RemoteLLM | None = None,
        sync_on_read: bool = True,
    ) -> None:
        self.settings = settings or load_settings()
        self.settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.db = Database(
            self.settings.db_path,
            node_name=self.settings.node.name,
            busy_timeout_ms=self.settings.store.busy_timeout_ms,
            track_outbox=self.settings.redis.url is not None,
        )
        self.memories = MemoryStore(self.db, ann=self._ann_manager())
        self.local = LocalState(self.db)
        self.hub = HubSync(self.settings, self.db, self.memories) if self.settings.redis.url else None
        self.learning = LearningLoop(self.settings, self.db, self.hub)
        self._last_pull = 0.0
        # Hooks turn this off: a hook must answer in well under a second, and pulling is the node's job.
        self.sync_on_read = sync_on_read
        self._sync_lock = threading.RLock()
        self._embedders: dict[str, Embedder] = {}
        self._embedder_factory = embedder_factory or self._local_node_then_in_process
        if embedder is not None:
            self._embedders[embedder.model_name] = embedder
        self._query_cache: OrderedDict[tuple[str, str], Vector] = OrderedDict()
        self._fallback_logged = False
        self._lock = threading.Lock()
        self._llm: LocalLLM | RemoteLLM | None = llm

    # -- identity and the narrow hub view front ends may hold -----------------------------------------

    @property
    def node_id(self) -> str:
        """This node's id in the hive (stored in the local database, minted once)."""
        return self.db.node_id

    @property
    def hub_configured(self) -> bool:
        """Whether a hub (redis.url) is configured, reachable or not."""
        return self.hub is not None

    @property
    def hub_link(self) -> HubLink | None:
        """Liveness, nudges and heartbeats of the hub (None without one); never Redis itself."""
        return self.hub

    def check_store(self) -> tuple[StoreStats, str]:
        """The store's counts and SQLite's `quick_check` verdict ('ok' when the file is sound)."""
        stats = self.memories.stats()
        row = self.db.conn.execute("PRAGMA quick_check").fetchone()
        return stats, str(row[0]) if row else "no answer"

    # -- lifecycle ----------------------------------------------------------------------------------

    def _ann_manager(self) -> AnnManager:
        search = self.settings.search
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
        return AnnManager(self.settings.db_path, config, busy_timeout_ms=self.settings.store.busy_timeout_ms)

    def index_status(self) -> list[dict[str, Any]]:
        """The ANN index of the active embedding space: state (off, exact, missing, building, ready, failed),
        build progress (0..1), vectors in the index file and changed since it was saved."""
        return [status.to_dict() for status in self.memories.index_status()]

    def close(self) -> None:
        if self.hub is not None:
            self.hub.close()
        self.memories.close_index()
        self.db.close()

    # -- the hub: push after writes, pull before reads; never an error for being offline -------------

    def sync(self, force: bool = False) -> SyncReport | None:
        """One push-and-pull pass with the hub now (None when no hub is configured)."""
        if self.hub is None:
            return None
        with self._sync_lock:
            self._last_pull = time.monotonic()
            return self.hub.sync_once(force=force)

    def _require_hub(self) -> HubSync:
        if self.hub is None:
            raise ConfigError("No hub configured: set redis.url (hivemind-app config set redis.url redis://...).")
        return self.hub

    def verify_sync(self, repair: bool = True) -> dict[str, int]:
        """Anti-entropy: compare every memory here with Redis and repair the drift found."""
        return self._require_hub().verify(repair=repair)

    def conflicts(self, sync: bool = True) -> dict[str, dict[str, Any]]:
        """Sessions edited on two nodes while apart: {session: {winner, loser}}, until resolved."""
        hub = self._require_hub()
        if sync:
            self.sync()
        return hub.replica.conflicts()

    def hub_nodes(self) -> list[dict[str, Any]]:
        """Nodes with a live heartbeat in Redis ([] with no hub or while it is unreachable)."""
        if self.hub is None or not self.hub.should_try():
            return []
        try:
            return self.hub.live_nodes()
        except Exception:  # unreachable right now: the next sync reports it
            return []

    def resolve_conflict(self, session_id: str, keep: str) -> dict[str, Any]:
        """Keep "A" (the winning edit) or "B" (the other one, written again as the newest edit)."""
        if keep not in ("A", "B"):
            raise InvalidInputError("keep must be A (the winner) or B (the other edit).")
        return self._require_hub().resolve_conflict(check_label(session_id, "the session id"), keep)

    def _after_write(self) -> None:
        if self.hub is not None:
            with self._sync_lock:
                self.hub.sync_once(pull=False)

    def _before_read(self) -> None:
        if self.hub is not None and self.sync_on_read and time.monotonic() - self._last_pull > READ_SYNC_INTERVAL_S:
            self.sync()

    def __enter__(self) -> Hive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- embedding ----------------------------------------------------------------------------------

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
                self._embedders[model] = self._embedder_factory(model)
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

    def _search_space(self) -> tuple[Embedder, EmbeddingSpace]:
        """The embedder and vector space for searching and storing; raises EmbedderUnavailableError."""
        active = self.memories.active_space()
        embedder = self.embedder_for(active.model if active else self.configured_model)
        space = active or self.memories.ensure_space(embedder.model_name, embedder.dim)
        return embedder, space

    def embed_query(self, text: str) -> tuple[Vector, EmbeddingSpace]:
        embedder, space = self._search_space()
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

    def _note_fallback(self, reason: str) -> None:
        if not self._fallback_logged:
            log.warning("%s", reason)
            self._fallback_logged = True

    # -- memories -----------------------------------------------------------------------------------

    def _prepare(self, draft: MemoryDraft) -> NewMemory:
        limit = self.settings.store.max_text_bytes
        # Secrets never reach the store (nor Redis, nor other machines): the id is that of the redacted text.
        text = redact(check_text(draft.text, limit))
        if isinstance(draft.tags, str):
            raise InvalidInputError("tags must be a list of strings, not one string.")
        tags = tuple(sorted({check_label(t, "a tag", 100).lower() for t in draft.tags}))
        sources = (check_label(draft.source, "the source", 1000),) if draft.source else ()
        session_id = check_label(draft.session_id, "the session id") if draft.session_id else None
        return NewMemory(id=text_hash(text), text=text, tags=tags, sources=sources, session_id=session_id)

    def store_memory(
        self,
        text: str,
        tags: Sequence[str] = (),
        source: str | None = None,
        session_id: str | None = None,
    ) -> StoredMemory:
        """Store one memory (or merge tags and source into the existing one with the same text)."""
        return self.store_memories([MemoryDraft(text, tags, source, session_id)])[0]

    def store_memories(
        self, drafts: Sequence[MemoryDraft], progress: Callable[[int], None] | None = None
    ) -> list[StoredMemory]:
        """Store many memories: validated first (all or nothing), embedded in batches, written in one transaction."""
        items = [self._prepare(d) for d in drafts]
        redacted = [item.text != normalise(d.text) for item, d in zip(items, drafts, strict=True)]
        vectors: list[Vector | None] = [None] * len(items)
        space: EmbeddingSpace | None = None
        try:
            embedder, space = self._search_space()
            todo = [i for i, item in enumerate(items) if not self.memories.has_vector(item.id, space)]
            unique: dict[str, int] = {}
            for i in todo:
                unique.setdefault(items[i].id, i)
            if unique:
                order = list(unique.values())
                encoded = embedder.embed([items[i].text for i in order], progress=progress)
                by_id = {items[i].id: encoded[n] for n, i in enumerate(order)}
                vectors = [by_id.get(item.id) for item in items]
        except EmbedderUnavailableError as exc:
            self._note_fallback(f"{exc} Memories are stored without vectors and embedded later.")
            space = None
        results = [
            replace(stored, redacted=was) if was else stored
            for stored, was in zip(self.memories.put_many(items, vectors, space), redacted, strict=True)
        ]
        if space is not None and self.memories.may_have_pending_vectors():
            self._backfill(space, _BACKFILL_ON_STORE)
        self._after_write()
        return results

    def _backfill(self, space: EmbeddingSpace, limit: int, progress: Callable[[int], None] | None = None) -> int:
        pending = self.memories.memories_missing_vectors(space, limit)
        if not pending:
            return 0
        vectors = self.embedder_for(space.model).embed([text for _, text in pending], progress=progress)
        return self.memories.set_vectors(space, list(zip((rowid for rowid, _ in pending), vectors, strict=True)))

    def backfill_embeddings(self, batch: int = 256, progress: Callable[[int], None] | None = None) -> int:
        """Embed every live memory that has no vector in the active space; returns how many were embedded."""
        _, space = self._search_space()
        total = 0
        while True:
            done = self._backfill(space, batch, progress)
            if not done:
                return total
            total += done

    def reembed(
        self, model: str | None = None, batch: int = 256, progress: Callable[[ReembedProgress], None] | None = None
    ) -> ReembedProgress:
        """Embed every memory with `model` (default: the configured one; its int8 space on `onnx-int8`) and
        switch searches to it.

        Resumable: vectors already written for the new model are kept, so an interrupted run picks up
        where it stopped. Searches keep using the old model until the last memory has its new vector.
        """
        # `--model M` on the int8 backend means M's int8 space, as the settings would
        model = (
            configured_space(self.settings.embedding.model_copy(update={"model": model}))
            if model
            else self.configured_model
        )
        embedder = self.embedder_for(model)
        space = self.memories.ensure_space(model, embedder.dim)
        state = ReembedProgress(model=model, total=self.memories.count_missing_vectors(space))
        if progress:
            progress(state)

        def advance(n: int) -> None:
            state.done += n
            if progress:
                progress(state)

        while self._backfill(space, batch, advance):
            pass
        if not space.active:
            state.dropped = self.memories.activate_space(space)
        state.finished = True
        if progress:
            progress(state)
        return state

    def get_memory(self, memory_id: str) -> Memory:
        return self.memories.get(memory_id)

    def delete_memory(self, memory_id: str) -> Memory:
        deleted = self.memories.delete(memory_id)
        self._after_write()
        return deleted

    def recent_memories(self, limit: int = 20, filters: SearchFilters | None = None) -> list[Memory]:
        return self.memories.recent(limit, filters)

    # -- search -------------------------------------------------------------------------------------

    def make_filters(
        self,
        session_id: str | None = None,
        source: str | None = None,
        tags: Sequence[str] = (),
        since: str | float | None = None,
        until: str | float | None = None,
    ) -> SearchFilters:
        if isinstance(tags, str):
            raise InvalidInputError("tags must be a list of strings, not one string.")
        return SearchFilters(
            session_id=check_label(session_id, "the session id") if session_id else None,
            source=check_label(source, "the source", 1000) if source else None,
            tags=tuple(sorted({check_label(t, "a tag", 100).lower() for t in tags})),
            since=parse_time(since) if since is not None else None,
            until=parse_time(until) if until is not None else None,
        )

    def search_memory(
        self,
        query: str,
        limit: int | None = None,
        mode: str = "hybrid",
        filters: SearchFilters | None = None,
        reformulate: bool = False,
    ) -> SearchResult:
        """The seed's semantic search: hybrid (vector + BM25, fused by reciprocal rank) unless told otherwise.

        With `reformulate`, the local LLM rewrites the query first and the rewrite's ranking joins the
        fusion beside the original's (never replacing it: a small model's rewrite can be off the mark).
        """
        started = time.perf_counter()
        if not isinstance(query, str) or not query.strip():
            raise InvalidInputError("The query is empty; give some words to search for.")
        self._before_read()
        query = check_text(query, self.settings.store.max_text_bytes, "the query")
        limit = self.settings.search.default_limit if limit is None else limit
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= self.settings.search.max_limit:
            raise InvalidInputError(f"limit must be a whole number from 1 to {self.settings.search.max_limit}.")
        if mode not in SEARCH_MODES:
            raise InvalidInputError(f"Unknown search mode {mode!r}; use one of {', '.join(SEARCH_MODES)}.")
        filters = filters or SearchFilters()
        candidates = limit if mode != "hybrid" else min(MAX_KNN_K, max(limit * 5, 50))

        vector_hits: list[tuple[int, float]] | None = None
        fallback = None
        if mode in ("hybrid", "vector"):
            try:
                vector, space = self.embed_query(query)
                vector_hits = self.memories.vector_search(space, vector, candidates, filters)
            except EmbedderUnavailableError as exc:
                fallback = f"Vector search is unavailable, so this is a keyword search: {exc}"
                self._note_fallback(fallback)
        # In hybrid mode the vector list covers loose matches, so the keyword list keeps to strict ones.
        keyword_hits = (
            self.memories.keyword_search(query, candidates, filters, relax=vector_hits is None)
            if mode != "vector" or fallback
            else []
        )

        used = mode if fallback is None else "keyword"
        rewrite = self._reformulate(query) if reformulate else None
        extra: list[int] = []
        if rewrite:
            if used == "keyword":
                extra = [r for r, _ in self.memories.keyword_search(rewrite, candidates, filters)]
            else:
                vector, space = self.embed_query(rewrite)
                extra = [r for r, _ in self.memories.vector_search(space, vector, candidates, filters)]
        ranked: list[tuple[int, float, int | None, int | None]]
        if extra:
            base = [r for r, _ in (keyword_hits if used == "keyword" else vector_hits or [])]
            lists = [base, extra] + ([[r for r, _ in keyword_hits]] if used == "hybrid" else [])
            fused = reciprocal_rank_fusion(lists, self.settings.search.rrf_k)
            ranked = [(rowid, score, ranks[0], ranks[-1]) for rowid, score, ranks in fused]
        elif used == "keyword":
            ranked = [(rowid, score, None, rank) for rank, (rowid, score) in enumerate(keyword_hits, 1)]
        elif used == "vector":
            ranked = [(rowid, score, rank, None) for rank, (rowid, score) in enumerate(vector_hits or [], 1)]
        else:
            fused = reciprocal_rank_fusion(
                [[r for r, _ in vector_hits or []], [r for r, _ in keyword_hits]], self.settings.search.rrf_k
            )
            ranked = [(rowid, score, ranks[0], ranks[1]) for rowid, score, ranks in fused]
        ranked = ranked[:limit]
        loaded = self.memories.get_many(r[0] for r in ranked)
        hits = [
            Hit(memory=loaded[rowid], score=score, vector_rank=vr, keyword_rank=kr)
            for rowid, score, vr, kr in ranked
            if rowid in loaded and not loaded[rowid].deleted
        ]
        return SearchResult(
            query=query,
            mode=used,
            requested_mode=mode,
            hits=hits,
            fallback=fallback,
            took_ms=(time.perf_counter() - started) * 1000,
            reformulated=rewrite,
        )

    def _llm_client(self) -> LocalLLM | RemoteLLM:
        """The local node's LLM when a node with the infer role runs here, else one in-process."""
        if self._llm is None:
            node = self.settings.node
            health = local_node_health(node.local_url, node.hive)
            url = node.local_url if health and health.get("llm_model") else None
            infer = self.settings.infer
            self._llm = RemoteLLM(url) if url else LocalLLM(infer.model_path, infer.n_ctx, infer.threads)
        return self._llm

    def suggest_tool(self, task: str, tools: Sequence[str]) -> dict[str, Any]:
        """The local LLM's pick of a tool from `tools` for `task`, with arguments (always valid JSON)."""
        if not isinstance(task, str) or not task.strip():
            raise InvalidInputError("The task is empty; describe what should be done.")
        if isinstance(tools, str) or not tools or not all(isinstance(t, str) for t in tools):
            raise InvalidInputError("tools must be a non-empty list of tool names.")
        return self._llm_client().suggest_tool(check_text(task, 10_000, "the task"), list(tools))

    def summarise_closed_sessions(self, idle_s: float = SUMMARY_IDLE_S, limit: int = 10) -> list[StoredMemory]:
        """Turn sessions closed for `idle_s` into memories: the task, files and tools used, and the LLM's summary.

        The facts are written out whatever the LLM says, so even a poor summary leaves a useful memory. A
        session reopened and closed again gets a fresh summary that replaces its previous one.
        """
        stored = []
        for session in self.local.sessions_to_summarise(idle_s, limit):
            previous = self.recent_memories(
                10, self.make_filters(source=f"session:{session.session_id}", tags=["session-summary"])
            )
            entries = self.local.session_entries(session.session_id)
            tools = sorted({e.tool_used for e in entries})
            failures = sum(not e.success for e in entries)
            facts = [f"Task: {session.current_task or '(none recorded)'}"]
            if session.files:
                facts.append("Files: " + ", ".join(session.files[:20]))
            if tools:
                facts.append(f"Tools: {', '.join(tools)} ({len(entries)} uses, {failures} failed)")
            summary = ""
            if session.current_task or entries:
                prompt = "Summarise this coding session in two sentences for the developer's notes.\n" + "\n".join(
                    facts
                )
                try:
                    summary = " ".join(self._llm_client().complete(prompt, max_tokens=96).text.split())
                except LLMUnavailableError as exc:
                    self._note_fallback(f"Sessions are summarised without an LLM: {exc}")
            day = time.strftime("%Y-%m-%d", time.localtime(session.closed_at or session.updated_at))
            text = "\n".join(
                [f"Coding session {session.session_id[:12]} on {day}." + (f" {summary}" if summary else ""), *facts]
            )
            written = self.store_memory(
                text, tags=["session-summary"], source=f"session:{session.session_id}", session_id=session.session_id
            )
            for old in previous:
                if old.id != written.memory.id:
                    self.delete_memory(old.id)
            stored.append(written)
            self.local.mark_summarised(session.session_id)
        return stored

    def _reformulate(self, query: str) -> str | None:
        """The local LLM's rewrite of `query`, or None when there is no LLM or no different rewrite."""
        try:
            rewrite = clean_reformulation(self._llm_client().complete(reformulation_prompt(query), max_tokens=48).text)
        except LLMUnavailableError as exc:
            self._note_fallback(f"Query reformulation is unavailable: {exc}")
            return None
        return rewrite if rewrite and rewrite.lower() != query.lower() else None

    # -- the seed's session, learning-queue and tool-cache calls ------------------------------------

    def get_context(self, session_id: str) -> dict[str, Any]:
        session_id = check_label(session_id, "the session id")
        self._before_read()
        session = self.local.get_session(session_id)
        if session is None:
            return {"session_id": session_id, "timestamp": None, "context": {}, "files": [], "current_task": ""}
        return session.to_dict()

    def set_context(self, session_id: str, update: dict[str, Any]) -> dict[str, Any]:
        """Merge `update` into the session: `current_task` replaces, `files` adds, anything else joins `context`."""
        session_id = check_label(session_id, "the session id")
        if not isinstance(update, dict):
            raise InvalidInputError("The session update must be a JSON object.")
        update = dict(update)
        task = update.pop("current_task", None)
        files = update.pop("files", None)
        context = update.pop("context", {})
        if task is not None and not isinstance(task, str):
            raise InvalidInputError("current_task must be a string.")
        if files is not None and (not isinstance(files, list) or not all(isinstance(f, str) for f in files)):
            raise InvalidInputError("files must be a list of paths (strings).")
        if not isinstance(context, dict):
            raise InvalidInputError("context must be a JSON object.")
        context = redact_value({**context, **update})
        task = redact(task) if isinstance(task, str) else task
        try:
            size = len(json.dumps(context)) + len(task or "") + len(json.dumps(files or []))
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"The session update is not plain JSON data: {exc}.") from exc
        if size > self.settings.store.max_text_bytes:
            raise InvalidInputError(
                f"The session update is {size:,} bytes, over the {self.settings.store.max_text_bytes:,}-byte limit."
            )
        session = self.local.update_session(session_id, context=context, files=files, current_task=task)
        self._after_write()
        return session.to_dict()

    def close_session(self, session_id: str) -> dict[str, Any]:
        session_id = check_label(session_id, "the session id")
        closed = self.local.update_session(session_id, closed=True).to_dict()
        self._after_write()
        return closed

    def list_sessions(self, limit: int = 100) -> list[dict[str, Any]]:
        """Sessions touched in the last seven days, most recent first."""
        return [session.to_dict() for session in self.local.list_sessions(limit)]

    def clear_session(self, session_id: str) -> None:
        self.local.clear_session(check_label(session_id, "the session id"))
        self._after_write()

    def add_to_learning_queue(self, interaction: dict[str, Any]) -> int:
        """Record one interaction (user_query, tool_used, result, success) for the trainer."""
        if not isinstance(interaction, dict):
            raise InvalidInputError("An interaction must be a JSON object.")
        limit = self.settings.store.max_text_bytes
        query = interaction.get("user_query", "")
        tool = interaction.get("tool_used")
        success = interaction.get("success", True)
        if not isinstance(tool, str) or not tool.strip():
            raise InvalidInputError("tool_used must be a non-empty string.")
        if not isinstance(query, str):
            raise InvalidInputError("user_query must be a string.")
        if not isinstance(success, bool):
            raise InvalidInputError("success must be true or false.")
        tool_input = interaction.get("tool_input", "")
        result = interaction.get("result", "")
        tool_input = redact(tool_input if isinstance(tool_input, str) else json.dumps(tool_input, default=str))
        result = redact(result if isinstance(result, str) else json.dumps(result, default=str))
        query = redact(query)
        for name, value in (("user_query", query), ("tool_input", tool_input), ("result", result)):
            if len(value.encode("utf-8", "replace")) > limit:
                raise InvalidInputError(f"{name} is over the {limit:,}-byte limit.")
        session_id = interaction.get("session_id")
        entry = LearningEntry(
            user_query=query,
            tool_used=tool.strip(),
            tool_input=tool_input,
            result=result,
            success=success,
            session_id=check_label(session_id, "the session id") if session_id else None,
            timestamp=float(interaction.get("timestamp") or time.time()),
        )
        entry_id = self.local.add_learning(entry)
        self._after_write()
        return entry_id

    @staticmethod
    def _tool_key(tool: str, inputs: str) -> tuple[str, str]:
        tool = check_label(tool, "the tool name")
        if not isinstance(inputs, str):
            raise InvalidInputError("inputs must be a string (serialise structured inputs as JSON).")
        return tool, hashlib.sha256(inputs.encode("utf-8", "surrogatepass")).hexdigest()

    def get_tool_cache(self, tool: str, inputs: str) -> str | None:
        """The seed's cache lives in Redis (shared by the hive); the local copy answers when it is away."""
        key = self._tool_key(tool, inputs)
        if self.hub is not None and self.hub.should_try():
            try:
                found = self.hub.get_tool_output(*key)
            except Exception:  # any hub failure: the local copy answers, the next sync reports the outage
                found = None
            if found is not None:
                return found
        return self.local.get_tool_output(*key)

    def set_tool_cache(self, tool: str, inputs: str, output: str, ttl_s: float = TOOL_CACHE_TTL_S) -> None:
        key = self._tool_key(tool, inputs)
        output = check_text(output, self.settings.store.max_text_bytes, "the tool output") if output else output
        if not isinstance(output, str):
            raise InvalidInputError("output must be a string.")
        if not 0 < ttl_s <= 7 * 86400:
            raise InvalidInputError("ttl must be between 1 second and 7 days.")
        self.local.put_tool_output(*key, output, ttl_s)
        self._after_write()

    # -- the learning loop: training rounds and the adapters they publish ----------------------------

    def train_round(
        self,
        major: bool = False,
        progress: Callable[[RoundProgress], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> dict[str, Any]:
        """One training round now, whatever the schedule says; returns its report (verdict, metrics, version)."""
        if self.hub is not None:
            self.sync()  # this node's own queue entries go to the hive's queue first
        return self.learning.run_round(major=major, progress=progress, should_stop=should_stop)

    def train_if_due(
        self, progress: Callable[[RoundProgress], None] | None = None, should_stop: Callable[[], bool] | None = None
    ) -> dict[str, Any] | None:
        """The train role's scheduled round: runs only when the interval has passed and enough entries wait."""
        if self.hub is not None and not self.hub.should_try():
            return None
        return self.learning.run_if_due(progress=progress, should_stop=should_stop)

    def training_history(self, limit: int = 50) -> list[dict[str, Any]]:
        if not 1 <= limit <= 500:
            raise InvalidInputError("limit must be from 1 to 500.")
        return self.learning.registry.rounds(limit)

    def adapters(self) -> list[AdapterInfo]:
        return self.learning.registry.adapters()

    def active_adapter(self) -> AdapterInfo | None:
        return self.learning.registry.active()

    def activate_adapter(self, version: int | None) -> AdapterInfo | None:
        """Make `version` the adapter every infer node serves (None: the base model); a rollback is this too."""
        if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
            raise InvalidInputError("An adapter version is a whole number from 1 (see `hivemind-app adapters`).")
        return self.learning.registry.activate(version)

    def fetch_adapter(self, version: int) -> Path:
        """The adapter's file on this node, its checksum verified (AdapterError if corrupt)."""
        return self.learning.registry.fetch(version)

    def learning_status(self) -> dict[str, Any]:
        if self.hub is not None and not self.hub.should_try():
            return {"source": "hub", "offline": True, "pool": self.learning.state.pool_size()}
        return self.learning.status()

    # -- status -------------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        stats = self.memories.stats()
        url = self.settings.redis.url
        return {
            "node": {"name": self.settings.node.name, "id": self.db.node_id},
            "store": {
                "path": stats.path,
                "file_bytes": stats.file_bytes,
                "wal_bytes": stats.wal_bytes,
                "schema_version": stats.schema_version,
            },
            "memories": {
                "live": stats.memories,
                "deleted": stats.deleted,
                "embedded": stats.embedded,
                "pending_embeddings": stats.pending_embeddings,
                "tags": stats.tags,
            },
            "sessions": stats.sessions,
            "learning_queue": stats.learning_queue,
            "embedding": {
                "model": stats.active_model or self.configured_model,
                "dim": stats.active_dim,
                "configured_model": self.configured_model,
                "mismatch": self.model_mismatch,
                "other_spaces": stats.other_spaces,
            },
            "redis": {"configured": url is not None, "url": redact_url(url.get_secret_value()) if url else None},
            "sync": self.hub.status() if self.hub is not None else {"configured": False},
            "vector_index": next(iter(self.index_status()), None),
            "config_path": str(default_config_path()),
        }
