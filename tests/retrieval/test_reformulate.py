"""`recall --reformulate`: the bundled SmolLM2 rewrites the query; the rewrite joins the ranking, never replaces it."""

from __future__ import annotations

import pytest

from hivemind_app.config import Settings
from hivemind_app.hive import Hive, MemoryDraft
from hivemind_app.ml.embedder import Embedder
from hivemind_app.ml.llm import clean_reformulation

NOTES = [
    "The staging Postgres database listens on port 5433, production on 5432",
    "Benchmarked torch.compile on the 4090: 1.8x over eager",
    "Nightly backups run at 02:00 on the NAS",
]


@pytest.mark.ranking
@pytest.mark.slow  # ~27 s on 2 cores: loads the bundled SmolLM2 in-process
def test_a_reformulated_recall_reports_the_rewrite_and_keeps_the_right_memory_first(
    settings: Settings, embedder: Embedder
) -> None:
    settings.node.port = 0  # no local node to ask: the LLM is loaded in-process
    with Hive(settings, embedder=embedder) as hive:
        hive.store_memories([MemoryDraft(text) for text in NOTES])
        plain = hive.search_memory("which port does the pre-production database use", limit=3)
        rewritten = hive.search_memory("which port does the pre-production database use", limit=3, reformulate=True)
    assert plain.reformulated is None
    assert rewritten.reformulated and rewritten.reformulated != rewritten.query
    assert rewritten.hits[0].memory.text == NOTES[0]
    assert rewritten.to_dict()["reformulated"] == rewritten.reformulated


def test_model_chatter_is_trimmed_from_a_rewrite() -> None:
    assert clean_reformulation('Query: "postgres staging port"\nHope this helps!') == "postgres staging port"
    assert clean_reformulation("\n\n") == ""
