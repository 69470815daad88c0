"""The retrieval pipeline's behaviours through a real Hive: keyword fallback without an embedder, a query
rewrite joining the fusion under its own name, and hydration dropping a memory deleted after ranking.

The LLM here is a fixed stand-in (`FixedRewrite`): these tests are about the pipeline, not about the model's
rewrites (tests/retrieval/test_reformulate.py runs the real SmolLM2).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
import pytest

from hivemind_app.config import Settings
from hivemind_app.errors import EmbedderUnavailableError
from hivemind_app.hive import Hive, MemoryDraft
from hivemind_app.ml.embedder import Embedder
from hivemind_app.ml.llm import Completion

NOTES = [
    "The staging Postgres database listens on port 5433",
    "Nightly backups run at 02:00 on the NAS",
    "Benchmarked torch.compile on the 4090",
]


class UnavailableEmbedder:
    """An embedder for the configured model that cannot embed (no model installed, no node to ask)."""

    dim = 32

    def __init__(self, model_name: str) -> None:
        self.model_name = model_name
        self.calls = 0

    def embed(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        self.calls += 1
        raise EmbedderUnavailableError("the test's embedding model is switched off.")


class FixedRewrite:
    """An LLM whose every completion is the same rewrite; `before` runs first (a concurrent writer, say)."""

    def __init__(self, text: str, before: Callable[[], None] | None = None) -> None:
        self.text = text
        self.before = before
        self.prompts: list[str | None] = []

    def complete(self, prompt: str | None = None, max_tokens: int = 128, **_: object) -> Completion:
        self.prompts.append(prompt)
        if self.before is not None:
            self.before()
        return Completion(text=self.text, prompt_tokens=1, completion_tokens=1, model="fixed-rewrite", adapter=None)


def ids(hive: Hive) -> dict[str, str]:
    """The stored NOTES' ids by text."""
    return {m.text: m.id for m in hive.recent_memories(10)}


@pytest.fixture
def offline(settings: Settings) -> Iterator[Hive]:
    """A Hive whose embedder is unavailable, holding NOTES (stored without vectors)."""
    with Hive(settings, embedder=UnavailableEmbedder(settings.embedding.model)) as hive:
        stored = hive.store_memories([MemoryDraft(text) for text in NOTES])
        assert all(s.created and not s.embedded for s in stored)
        yield hive


def test_without_an_embedder_vector_and_hybrid_searches_become_relaxed_keyword_searches(offline: Hive) -> None:
    by_text = ids(offline)
    for mode in ("hybrid", "vector"):
        # strict keyword matching would need both terms; with no vector ranking beside it, any term will do
        result = offline.search_memory("backups db", mode=mode)
        assert (result.mode, result.requested_mode) == ("keyword", mode)
        assert result.fallback == (
            "Vector search is unavailable, so this is a keyword search: the test's embedding model is switched off."
        )
        assert [(h.memory.id, h.keyword_rank, h.vector_rank) for h in result.hits] == [(by_text[NOTES[1]], 1, None)]
    keyword = offline.search_memory("backups db", mode="keyword")
    assert keyword.fallback is None and keyword.mode == keyword.requested_mode == "keyword"
    assert offline.status().memories.pending_embeddings == len(NOTES)


@pytest.mark.parametrize("fusion", ["score", "rrf"])
def test_a_rewrite_ranks_as_vector_rewrite_and_never_as_the_original_ranking(
    settings: Settings, embedder: Embedder, fusion: str
) -> None:
    settings.search.fusion = fusion  # type: ignore[assignment]
    llm = FixedRewrite("")
    with Hive(settings, embedder=embedder, llm=llm) as hive:  # type: ignore[arg-type]
        hive.store_memories([MemoryDraft(text) for text in NOTES])
        plain = hive.search_memory("pre-production db")
        last = max(plain.hits, key=lambda h: h.vector_rank or 0)
        llm.text = last.memory.text  # the rewrite's own vector ranking puts this note first
        rewritten = hive.search_memory("pre-production db", reformulate=True)
    assert plain.reformulated is None and len(llm.prompts) == 1 and "pre-production db" in (llm.prompts[0] or "")
    assert rewritten.reformulated == last.memory.text and rewritten.query == "pre-production db"
    before = {h.memory.id: h for h in plain.hits}
    after = {h.memory.id: h for h in rewritten.hits}
    assert set(after) == set(before) and len(before) == len(NOTES)
    assert after[last.memory.id].vector_rank == len(NOTES)  # first for the rewrite, still last for the query
    for memory_id, hit in after.items():
        # the original's ranks are untouched: the rewrite's vector ranking is its own generator ...
        assert hit.vector_rank == before[memory_id].vector_rank is not None
        # ... and never poses as the keyword ranking (the original query matches no keyword)
        assert hit.keyword_rank is None and before[memory_id].keyword_rank is None
        # ... yet it joined the fusion: by rank, every memory it ranked gained score; by score, each memory's
        # vector side is the better of the two similarities, so none lost and the rewrite's favourite gained
        if fusion == "rrf":
            assert hit.score > before[memory_id].score
        else:
            assert hit.score >= before[memory_id].score
    if fusion == "score":
        assert after[last.memory.id].score > before[last.memory.id].score


@pytest.mark.parametrize("fusion", ["score", "rrf"])
def test_a_rewrite_in_a_keyword_fallback_ranks_as_keyword_rewrite(settings: Settings, fusion: str) -> None:
    settings.search.fusion = fusion  # type: ignore[assignment]
    llm = FixedRewrite("staging postgres")
    with Hive(settings, embedder=UnavailableEmbedder(settings.embedding.model), llm=llm) as hive:  # type: ignore[arg-type]
        hive.store_memories([MemoryDraft(text) for text in NOTES])
        by_text = ids(hive)
        result = hive.search_memory("backups db", reformulate=True)
    assert result.mode == "keyword" and result.fallback and result.reformulated == "staging postgres"
    # the staging note is found by the rewrite alone: it has no keyword rank of the original query's
    assert [(h.memory.id, h.keyword_rank, h.vector_rank) for h in result.hits] == [
        (by_text[NOTES[0]], None, None),  # rrf: 1/(k+1) each, the tie going to the older row; score: the
        (by_text[NOTES[1]], 1, None),  # rewrite matches both its terms, the query one of its two
    ]
    if fusion == "rrf":
        assert result.hits[0].score == result.hits[1].score == pytest.approx(1 / (settings.search.rrf_k + 1))
    else:
        assert result.hits[0].score > result.hits[1].score > 0


def test_a_memory_deleted_after_ranking_is_dropped_from_the_hits(settings: Settings, embedder: Embedder) -> None:
    with Hive(settings, embedder=embedder) as other:  # another process sharing the store
        other.store_memories([MemoryDraft(text) for text in NOTES])
        doomed = ids(other)[NOTES[0]]
        llm = FixedRewrite("postgres port 5433", before=lambda: other.delete_memory(doomed))
        with Hive(settings, embedder=embedder, llm=llm) as hive:  # type: ignore[arg-type]
            assert doomed in {h.memory.id for h in hive.search_memory("staging postgres").hits}
            # ranked by the original query, then deleted by the other process while the LLM rewrote it
            result = hive.search_memory("staging postgres", reformulate=True)
            live = set(ids(hive).values())
    assert len(llm.prompts) == 1 and result.reformulated == "postgres port 5433"
    assert doomed not in {h.memory.id for h in result.hits} and doomed not in live
    assert {h.memory.id for h in result.hits} == live and len(live) == len(NOTES) - 1
    assert all(not h.memory.deleted for h in result.hits)
