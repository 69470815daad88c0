"""Candidate generators: each turns a query into one `Ranking` over the filtered live memories.

Filters are applied inside each generator (by the store), never after it, so a rare tag cannot lose its
matches to a top-k cut.
"""

from __future__ import annotations

from hivemind_app.records.memories import SearchFilters
from hivemind_app.retrieval.candidates import Candidate, Generator, Ranking
from hivemind_app.services.embedding import EmbeddingService
from hivemind_app.store.memory_store import MemoryStore


def _ranking(generator: Generator, hits: list[tuple[int, float]], scale: float | None = None) -> Ranking:
    return Ranking(generator, tuple(Candidate(rowid, score) for rowid, score in hits), scale)


class VectorGenerator:
    """Nearest neighbours of the query's embedding (ANN index when the store has one, else exact).

    Raises EmbedderUnavailableError when no embedder can make the query vector.
    """

    def __init__(self, store: MemoryStore, embedding: EmbeddingService) -> None:
        self.store = store
        self.embedding = embedding

    def generate(
        self, text: str, depth: int, filters: SearchFilters, generator: Generator = Generator.VECTOR
    ) -> Ranking:
        vector, space = self.embedding.embed_query(text)
        return _ranking(generator, self.store.vector_search(space, vector, depth, filters))


class KeywordGenerator:
    """BM25 over FTS5. Strict first (a long query needs two of its terms); `relax` retries with any term when the
    strict query finds nothing. `scaled` also measures the query's ideal score (`Ranking.scale`) for fusion."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    def generate(
        self,
        text: str,
        depth: int,
        filters: SearchFilters,
        relax: bool = True,
        generator: Generator = Generator.KEYWORD,
        scaled: bool = False,
    ) -> Ranking:
        hits = self.store.keyword_search(text, depth, filters, relax=relax)
        return _ranking(generator, hits, self.store.keyword_scale(text) if scaled and hits else None)
