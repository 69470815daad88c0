"""The right memory ranks first, with the real MiniLM model and real sqlite-vec + FTS5.

Keyword ranking and score order do not depend on the model: those tests run on the hashing embedder.
"""

from __future__ import annotations

import pytest

from hivemind_app.hive import Hive, MemoryDraft

NOTES = {
    "compile": "Benchmarked torch.compile on the 4090: 1.8x over eager for the ResNet-50 training step",
    "staging": "The staging Postgres database listens on port 5433, production on 5432",
    "bisect": "Found the sync regression with git bisect run pytest tests/test_sync.py; culprit was a1b2c3d",
    "aof": "Redis AOF rewrite stalls writes for about 200 ms on the NAS; appendfsync everysec is acceptable",
    "uvicorn": "Bumped uvicorn to 0.30 in api/ because of the h11 request smuggling CVE",
    "oom": "The CI runner OOM-kills the test job when pytest-xdist uses more than 4 workers",
    "dns": "mDNS does not cross the VLAN boundary, so the lab boxes need static peers in config",
    "lora": "LoRA rank 16 with alpha 32 on q_proj and v_proj was enough for the tool-selection adapter",
    "tz": "All timestamps in the events table are UTC; the dashboard converts to Europe/Berlin",
    "flaky": "test_reconnect_backoff is flaky on macOS because the loopback socket closes late",
    "docker": "docker compose v2 needs `docker compose` with a space; the old docker-compose binary is gone",
    "ssh": "Use ProxyJump bastion.lab in ~/.ssh/config to reach the GPU box from outside",
    "pnpm": "Switched the frontend from npm to pnpm: install time went from 90 s to 20 s",
    "cuda": "CUDA out of memory at batch size 64 on the 3060; batch 32 with gradient accumulation 2 works",
    "regex": "The log parser regex ^(\\d{4}-\\d{2}-\\d{2}) misses lines with a leading BOM",
    "cron": "Nightly retraining runs from cron at 02:30 on beast, weekly full retrain on Sundays",
    "pydantic": "pydantic v2 renamed parse_obj to model_validate and dict() to model_dump()",
    "sqlite": "SQLITE_BUSY went away after switching writers to BEGIN IMMEDIATE with a busy timeout",
    "nginx": "nginx returns 413 for uploads over 1 MB unless client_max_body_size is raised",
    "k8s": "kubectl rollout restart deployment/api picks up the new ConfigMap without downtime",
}


@pytest.fixture
def corpus(hive: Hive) -> dict[str, str]:
    stored = hive.store_memories([MemoryDraft(text, tags=[key]) for key, text in NOTES.items()])
    return {key: s.memory.id for key, s in zip(NOTES, stored, strict=True)}


PARAPHRASES = [
    ("what was I doing with PyTorch benchmarks?", "compile"),
    ("which port does the pre-production database use", "staging"),
    ("how did we track down the commit that broke syncing", "bisect"),
    ("why do writes pause on the network storage box", "aof"),
    ("tests killed for running out of memory on the build server", "oom"),
    ("service discovery doesn't work across network segments", "dns"),
    ("GPU memory error when training with large batches", "cuda"),
    ("when does the model fine-tuning job run", "cron"),
    ("database locked errors with several writers", "sqlite"),
    ("request entity too large when uploading files", "nginx"),
]

IDENTIFIERS = [
    ("torch.compile", "compile"),
    ("5433", "staging"),
    ("appendfsync", "aof"),
    ("test_reconnect_backoff", "flaky"),
    ("client_max_body_size", "nginx"),
    ("model_validate", "pydantic"),
    ("ProxyJump", "ssh"),
    ("q_proj", "lora"),
]


@pytest.mark.ranking
@pytest.mark.parametrize(("query", "expected"), PARAPHRASES)
def test_vector_search_ranks_the_paraphrased_memory_first(
    hive: Hive, corpus: dict[str, str], query: str, expected: str
) -> None:
    result = hive.search_memory(query, limit=3, mode="vector")
    assert result.mode == "vector" and result.fallback is None
    assert result.hits[0].memory.id == corpus[expected], [h.memory.text for h in result.hits]


@pytest.mark.parametrize(("query", "expected"), IDENTIFIERS)
def test_keyword_search_ranks_the_exact_identifier_first(
    hive: Hive, corpus: dict[str, str], query: str, expected: str
) -> None:
    result = hive.search_memory(query, limit=3, mode="keyword")
    assert result.hits[0].memory.id == corpus[expected], [h.memory.text for h in result.hits]


@pytest.mark.ranking
@pytest.mark.parametrize(("query", "expected"), PARAPHRASES + IDENTIFIERS)
def test_hybrid_search_ranks_the_right_memory_first_for_both_kinds_of_query(
    hive: Hive, corpus: dict[str, str], query: str, expected: str
) -> None:
    result = hive.search_memory(query, limit=5)
    assert result.mode == "hybrid"
    assert result.hits[0].memory.id == corpus[expected], [h.memory.text for h in result.hits]


def test_scores_are_ordered_best_first(hive: Hive, corpus: dict[str, str]) -> None:
    for mode in ("hybrid", "vector", "keyword"):
        scores = [h.score for h in hive.search_memory("redis writes on the NAS", limit=10, mode=mode).hits]
        assert scores == sorted(scores, reverse=True) and scores, mode
