"""Storing, deleting and (re-)embedding memories: validation, redaction, content ids, vectors, one transaction.

Invariants: secrets never reach the store (the id is that of the redacted text); a batch is validated whole
before anything is written (all or nothing); embedding happens before the write transaction, never inside
it; a memory whose vector could not be made is stored anyway and embedded later by a backfill.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from hivemind_app.config import Settings
from hivemind_app.content import MAX_TAGS, check_count, check_label, check_text, normalise, text_hash
from hivemind_app.errors import EmbedderUnavailableError, InvalidInputError
from hivemind_app.ml.backends import configured_space
from hivemind_app.records.memories import (
    MAX_PROJECT_CHARS,
    Memory,
    MemoryDraft,
    NewMemory,
    ReembedProgress,
    SearchFilters,
    StoredMemory,
)
from hivemind_app.services.embedding import EmbeddingService
from hivemind_app.services.notices import Notices
from hivemind_app.services.sync import SyncService
from hivemind_app.store.memory_store import MemoryStore, Vector
from hivemind_app.store.models import EmbeddingSpace
from hivemind_app.timespec import occurred_time
from hivemind_app.trust.redact import redact

# Opportunistic backfill on a store call: enough to drain a small backlog, small enough to stay fast.
BACKFILL_ON_STORE = 64


def clean_tags(tags: Sequence[str]) -> tuple[str, ...]:
    """Tags as the store keeps them: validated labels, lower case, sorted, each once."""
    if isinstance(tags, str):
        raise InvalidInputError("tags must be a list of strings, not one string.")
    check_count(tags, "tags", MAX_TAGS)
    return tuple(sorted({check_label(t, "a tag", 100).lower() for t in tags}))


class MemoryService:
    def __init__(
        self,
        settings: Settings,
        store: MemoryStore,
        embedding: EmbeddingService,
        sync: SyncService,
        notices: Notices,
    ) -> None:
        self.settings = settings
        self.store = store
        self.embedding = embedding
        self.sync = sync
        self.notices = notices

    def prepare(self, draft: MemoryDraft) -> NewMemory:
        text = redact(check_text(draft.text, self.settings.store.max_text_bytes))
        # every field is stored and pushed to the hub, not just the text: a source URL or a tag can carry a token
        raw_tags = draft.tags
        if not isinstance(raw_tags, str):  # redacted before lower-casing, which would hide a key's format
            raw_tags = [redact(t) if isinstance(t, str) else t for t in raw_tags]
        tags = clean_tags(raw_tags)
        sources = (redact(check_label(draft.source, "the source", 1000)),) if draft.source else ()
        session_id = check_label(draft.session_id, "the session id") if draft.session_id else None
        project = redact(check_label(draft.project, "the project", MAX_PROJECT_CHARS)) if draft.project else None
        return NewMemory(
            id=text_hash(text),
            text=text,
            tags=tags,
            sources=sources,
            session_id=session_id,
            project=project,
            occurred_at=occurred_time(draft.occurred_at),
        )

    def store_many(
        self,
        drafts: Sequence[MemoryDraft],
        progress: Callable[[int], None] | None = None,
        replacing: str | None = None,
    ) -> list[StoredMemory]:
        """Store many memories: validated first (all or nothing), embedded in batches, written in one transaction
        (which also deletes the memory `replacing`, when given: a supersede)."""
        items = [self.prepare(d) for d in drafts]
        redacted = [item.text != normalise(d.text) for item, d in zip(items, drafts, strict=True)]
        vectors, space = self._vectors_for(items, progress)
        results = [
            replace(stored, redacted=was) if was else stored
            for stored, was in zip(self.store.put_many(items, vectors, space, replacing), redacted, strict=True)
        ]
        if space is not None and self.store.may_have_pending_vectors():
            self._backfill(space, BACKFILL_ON_STORE)
        self.sync.after_write()
        return results

    def _vectors_for(
        self, items: list[NewMemory], progress: Callable[[int], None] | None
    ) -> tuple[list[Vector | None], EmbeddingSpace | None]:
        """A vector for each item that lacks one in the search space (each distinct text embedded once)."""
        try:
            embedder, space = self.embedding.search_space()
            unique: dict[str, int] = {}
            for i, item in enumerate(items):
                if not self.store.has_vector(item.id, space):
                    unique.setdefault(item.id, i)
            if not unique:
                return [None] * len(items), space
            order = list(unique.values())
            encoded = embedder.embed([items[i].text for i in order], progress=progress)
            by_id = {items[i].id: encoded[n] for n, i in enumerate(order)}
            return [by_id.get(item.id) for item in items], space
        except EmbedderUnavailableError as exc:
            self.notices.fallback(f"{exc} Memories are stored without vectors and embedded later.")
            return [None] * len(items), None

    def _backfill(self, space: EmbeddingSpace, limit: int, progress: Callable[[int], None] | None = None) -> int:
        pending = self.store.memories_missing_vectors(space, limit)
        if not pending:
            return 0
        vectors = self.embedding.embedder_for(space.model).embed([text for _, text in pending], progress=progress)
        return self.store.set_vectors(space, list(zip((rowid for rowid, _ in pending), vectors, strict=True)))

    def backfill(self, batch: int = 256, progress: Callable[[int], None] | None = None) -> int:
        """Embed every live memory that has no vector in the active space; returns how many were embedded."""
        _, space = self.embedding.search_space()
        total = 0
        while done := self._backfill(space, batch, progress):
            total += done
        return total

    def reembed(
        self, model: str | None = None, batch: int = 256, progress: Callable[[ReembedProgress], None] | None = None
    ) -> ReembedProgress:
        """Embed every memory with `model` (default: the configured one; its int8 space on `onnx-int8`) and
        switch searches to it.

        Resumable: vectors already written for the new model are kept, so an interrupted run picks up
        where it stopped. Searches keep using the old model until the last memory has its new vector.
        """
        # `--model M` on the int8 backend means M's int8 space, as the settings would
        settings = self.settings.embedding
        target = configured_space(settings.model_copy(update={"model": model}) if model else settings)
        embedder = self.embedding.embedder_for(target)
        space = self.store.ensure_space(target, embedder.dim)
        state = ReembedProgress(model=target, total=self.store.count_missing_vectors(space))

        def report() -> None:
            if progress:
                progress(state)

        def advance(n: int) -> None:
            state.done += n
            report()

        report()
        while self._backfill(space, batch, advance):
            pass
        if not space.active:
            state.dropped = self.store.activate_space(space)
        state.finished = True
        report()
        return state

    def supersede(self, memory_id: str, text: str, tags: Sequence[str] = ()) -> tuple[StoredMemory, Memory]:
        """Replace a memory's text: the new memory keeps the old one's tags (plus `tags`), sources, session and
        project, and names it in its sources (`supersedes:<id>`); the old one is deleted everywhere, in the same
        transaction as the new one is written (a crash leaves the old one or the new one, never both or neither;
        an old one deleted meanwhile by another process fails it, and nothing is written). Returns (the new
        memory, the old one). The same text again only merges the tags."""
        old = self.store.get(memory_id)
        if old.deleted:
            raise InvalidInputError(f"Memory {old.id[:12]} is deleted; store the new text instead of updating it.")
        first = MemoryDraft(
            text, tags=[*old.tags, *tags], session_id=old.session_id, project=old.project, occurred_at=old.occurred_at
        )
        same = self.prepare(first).id == old.id
        sources = [*old.sources] if same else [*old.sources, f"supersedes:{old.id}"]
        # one draft a source (a draft names one): the same text, so they merge into one memory in one call
        drafts = [replace(first, source=source) for source in sources] or [first]
        stored = self.store_many(drafts, replacing=None if same else old.id)
        new = replace(stored[-1], created=stored[0].created, redacted=stored[0].redacted)
        return new, old

    def get(self, memory_id: str) -> Memory:
        return self.store.get(memory_id)

    def delete(self, memory_id: str) -> Memory:
        deleted = self.store.delete(memory_id)
        self.sync.after_write()
        return deleted

    def recent(self, limit: int = 20, filters: SearchFilters | None = None) -> list[Memory]:
        return self.store.recent(limit, filters)
