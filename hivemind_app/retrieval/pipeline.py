"""The retrieval pipeline: analyse -> generate -> fuse -> (time boost: which hits it lifts) -> re-score -> hydrate.

Invariants: a missing embedder degrades a search to keyword, says so in `fallback` (and in the log once),
and never fails it; a query rewrite (`reformulate`) joins the fusion as its own ranking beside the
original's, never replacing it (a small model's rewrite can be off the mark); a time the question names
("last week", retrieval/when.py) ranks what is about then first (the time a memory describes when known,
else when it was stored), or keeps only that (`search.time_aware`),
and its words are not searched for; the boost lifts only in-window hits with keyword evidence or a score
near the best (`TIME_BOOST_FLOOR`), never a barely matching one above a strong match from outside the window.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Protocol

from hivemind_app.config import Settings
from hivemind_app.errors import EmbedderUnavailableError
from hivemind_app.records.memories import SearchFilters
from hivemind_app.retrieval import fusion
from hivemind_app.retrieval.candidates import Fused, Generator, Ranking
from hivemind_app.retrieval.context import SessionContext
from hivemind_app.retrieval.generators import KeywordGenerator, VectorGenerator
from hivemind_app.retrieval.query import Query, analyse
from hivemind_app.retrieval.rescore import configured_rescorers
from hivemind_app.retrieval.result import SearchResult, hydrate
from hivemind_app.services.embedding import EmbeddingService
from hivemind_app.services.notices import Notices
from hivemind_app.services.sync import SyncService
from hivemind_app.store.memory_store import MemoryStore

Rewriter = Callable[[str], "str | None"]

TIME_BOOST_FLOOR = 0.4
"""The time boost lifts an in-window hit only if it shares a word with the question or scores at least this
share of the best hit (in or out of the window): a memory stored then that barely matches (one of a large
import that day) keeps its place."""


class Rescorer(Protocol):
    """A second stage over the fused candidates (re-orders or re-scores them; may drop, never adds). The time
    boost decides which window hits it lifts on the fused scores, then this runs over each search (the window's
    too), so it orders the lifted hits among themselves and the rest among themselves; `search.rescore` names
    the configured one (retrieval/rescore.py)."""

    def rescore(self, query: Query, fused: list[Fused]) -> list[Fused]: ...


class Retrieval:
    def __init__(
        self,
        settings: Settings,
        store: MemoryStore,
        embedding: EmbeddingService,
        sync: SyncService,
        notices: Notices,
        rewriter: Rewriter,
        rescorers: Sequence[Rescorer] = (),
    ) -> None:
        self.settings = settings
        self.store = store
        self.sync = sync
        self.notices = notices
        self.rewriter = rewriter
        self.rescorers = list(rescorers) or configured_rescorers(settings, store, lambda: embedding.search_model)
        self.vector = VectorGenerator(store, embedding)
        self.keyword = KeywordGenerator(store)

    def search(
        self,
        text: str,
        limit: int | None = None,
        mode: str = "hybrid",
        filters: SearchFilters | None = None,
        reformulate: bool = False,
    ) -> SearchResult:
        started = time.perf_counter()
        query = analyse(
            text, limit, mode, filters, reformulate, self.settings.search, self.settings.store.max_text_bytes
        )
        self.sync.before_read()
        rankings, fallback = self._generate(query)
        used = query.mode if fallback is None else "keyword"
        rewrite = self.rewriter(query.search_text) if query.reformulate else None
        if rewrite:
            rankings.append(self._generate_rewrite(query, rewrite, used))
        fused = self._fuse(query, rankings)
        if query.window is not None and self.settings.search.time_aware == "boost":
            fused = self._window_first(query, rewrite, used, fused)
        else:
            fused = self._rescore(query, fused)
        return SearchResult(
            query=query.text,
            mode=used,
            requested_mode=query.mode,
            hits=hydrate(self.store, fused[: query.limit]),
            fallback=fallback,
            took_ms=(time.perf_counter() - started) * 1000,
            reformulated=rewrite,
        )

    def _rescore(self, query: Query, fused: list[Fused]) -> list[Fused]:
        for stage in self.rescorers:
            fused = stage.rescore(query, fused)
        return fused

    def _window_first(self, query: Query, rewrite: str | None, used: str, fused: list[Fused]) -> list[Fused]:
        """The time boost: the same search inside the question's window (filtered in each generator, so an
        in-window memory is not lost to a top-k cut); of its hits, those its keyword side matched or scoring at
        least `TIME_BOOST_FLOOR` x the best score of either search come first, then the unfiltered results in
        their order (the window's weak hits among them, where they stood), then the window's weak hits the
        unfiltered search missed.

        Which hits are lifted is decided on the fused scores of both searches (one scale), before the second
        stage; the second stage then re-scores each search (the window's hits keep its order among them). The
        scores shown never rise down the list: a lifted hit shows at least the score of the best hit below it
        (the boost put it there), a weak window hit at the end at most the score of the one above it."""
        inside = query.within_window()
        rankings, _ = self._generate(inside)
        if rewrite:
            rankings.append(self._generate_rewrite(inside, rewrite, used))
        first = self._fuse(inside, rankings)
        best = max((f.score for f in fused[:1] + first[:1]), default=0.0)
        # keyword evidence: a hit that shares a (non-stop) word with the question is about it, whatever its score
        worded = {c.rowid for r in rankings if r.generator in fusion.KEYWORD_GENERATORS for c in r.candidates}
        held = {f.rowid for f in first if f.rowid in worded or (f.score > 0 and f.score >= TIME_BOOST_FLOOR * best)}
        fused = self._rescore(query, fused)
        first = self._rescore(inside, first) if held else first
        lifted = [f for f in first if f.rowid in held]
        rest = [f for f in fused if f.rowid not in held]
        seen = held | {f.rowid for f in rest}
        missed = [f for f in first if f.rowid not in seen]
        if rest:
            missed = [Fused(f.rowid, min(f.score, rest[-1].score), f.ranks) for f in missed]
        below = max((f.score for f in rest + missed), default=0.0)
        lifted = [Fused(f.rowid, max(f.score, below), f.ranks) for f in lifted]
        return lifted + rest + missed

    def _generate(self, query: Query) -> tuple[list[Ranking], str | None]:
        """The mode's rankings (vector first), and why vector search was skipped, if it was."""
        rankings: list[Ranking] = []
        fallback = None
        if query.mode in ("hybrid", "vector"):
            try:
                rankings.append(self.vector.generate(query.search_text, query.depth, query.filters))
            except EmbedderUnavailableError as exc:
                fallback = f"Vector search is unavailable, so this is a keyword search: {exc}"
                self.notices.fallback(fallback)
        if query.mode != "vector" or fallback:
            # Score fusion weighs keyword matches by their evidence, so a strict query that finds nothing is
            # relaxed there as in keyword mode; rank fusion cannot tell a weak match from a strong one, so
            # beside a vector ranking its keyword ranking keeps to strict matches.
            score = self.settings.search.fusion == "score"
            relax = not rankings or score
            text = query.search_text
            rankings.append(self.keyword.generate(text, query.depth, query.filters, relax=relax, scaled=score))
        return rankings, fallback

    def _generate_rewrite(self, query: Query, rewrite: str, used: str) -> Ranking:
        if used == "keyword":
            scaled = self.settings.search.fusion == "score"
            return self.keyword.generate(
                rewrite, query.depth, query.filters, generator=Generator.KEYWORD_REWRITE, scaled=scaled
            )
        return self.vector.generate(rewrite, query.depth, query.filters, generator=Generator.VECTOR_REWRITE)

    def _fuse(self, query: Query, rankings: list[Ranking]) -> list[Fused]:
        """Fused, then scored with each memory's session neighbours when `search.session_context` is on."""
        fused = self._fuse_rankings(query, rankings)
        search = self.settings.search
        if search.session_context:
            return SessionContext(self.store, search.context_weight, search.context_window).rescore(fused)
        return fused

    def _fuse_rankings(self, query: Query, rankings: list[Ranking]) -> list[Fused]:
        """One ranking passes through with its own scores; several (hybrid, or a rewrite with matches) are fused."""
        useful = [r for r in rankings if r.candidates or r.generator in (Generator.VECTOR, Generator.KEYWORD)]
        if len(useful) == 1:
            return fusion.single(useful[0])
        settings = self.settings.search
        if settings.fusion == "rrf":
            return fusion.reciprocal_rank(useful, settings.rrf_k)
        weight = settings.identifier_keyword_weight if query.identifier else settings.keyword_weight
        return fusion.score_aware(useful, weight, settings.keyword_evidence_power)
