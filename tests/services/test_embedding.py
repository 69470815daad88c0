"""Which model embeds what (services/embedding.py, services/memories.py): storing without a model and
embedding later, the opportunistic backfill, and switching models with a resumable reembed."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from hivemind_app.config import Settings
from hivemind_app.hive import Hive, MemoryDraft
from hivemind_app.ml.embedder import Embedder, bundled_model_path
from tests.support import on_disk


def may_have_pending_vectors(hive: Hive) -> bool:
    """The store's on-disk flag (store/memory_rows.py): False only when a backfill found nothing since the last
    memory stored without a vector, so that later stores can skip the scan."""
    return on_disk.meta(hive.settings.db_path, "pending_vectors") != "0"


@pytest.mark.ranking
def test_without_an_embedder_memories_are_stored_and_found_by_keyword_then_embedded_later(
    isolated_env: Path, embedder: Embedder, caplog: pytest.LogCaptureFixture
) -> None:
    broken = Settings(embedding={"model": "/nonexistent/model-dir"})
    with Hive(broken) as hive, caplog.at_level(logging.WARNING, logger="hivemind_app"):
        stored = hive.store_memory("The staging Postgres listens on port 5433")
        assert stored.created and not stored.embedded
        hive.store_memory("Nightly backups run at 02:00")
        result = hive.search_memory("staging port 5433")
        second = hive.search_memory("backups")
        assert result.mode == "keyword" and result.requested_mode == "hybrid"
        assert "Vector search is unavailable" in (result.fallback or "")
        assert result.hits[0].memory.id == stored.memory.id
        assert second.fallback and second.hits
        assert hive.status().memories.pending_embeddings == 2
    # said once per process, not once per call
    assert sum("could not be loaded" in r.getMessage() for r in caplog.records) == 1

    with Hive(Settings(), embedder=embedder) as hive:
        assert hive.backfill_embeddings() == 2
        result = hive.search_memory("which port does the pre-production database use", mode="vector")
        assert result.fallback is None
        assert result.hits[0].memory.id == stored.memory.id
        assert hive.status().memories.pending_embeddings == 0


def test_storing_with_a_working_model_also_embeds_a_small_backlog(settings: Settings, embedder: Embedder) -> None:
    with Hive(Settings(embedding={"model": "/nonexistent"})) as hive:
        hive.store_memories([MemoryDraft(f"offline note {n}") for n in range(5)])
    with Hive(settings, embedder=embedder) as hive:
        assert may_have_pending_vectors(hive)
        hive.store_memory("back online")
        assert hive.status().memories.pending_embeddings == 0
        hive.store_memory("and again")  # the scan found nothing: later stores skip it
        assert not may_have_pending_vectors(hive)


@pytest.mark.ranking
@pytest.mark.slow  # ~30 s: converts and loads a second copy of the model
def test_changing_the_model_is_reported_and_reembed_switches_resumably(
    tmp_path: Path, isolated_env: Path, embedder: Embedder
) -> None:
    with Hive(Settings(), embedder=embedder) as hive:
        hive.store_memories([MemoryDraft(f"note {n} about redis replication lag") for n in range(12)])
    bundled = bundled_model_path()
    assert bundled is not None
    other_model = str(shutil.copytree(bundled, tmp_path / "minilm-copy"))

    with Hive(Settings(embedding={"model": other_model}), embedder=embedder) as hive:
        assert "run `hivemind-app reembed`" in (hive.model_mismatch or "")
        assert hive.search_model == "all-MiniLM-L6-v2"
        assert hive.search_memory("redis replication", mode="vector").hits  # still served by the old vectors

        calls = 0

        def interrupt_in_second_batch(state: object) -> None:
            nonlocal calls
            calls += 1
            if getattr(state, "done", 0) >= 10:  # during the second batch: the first is written
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            hive.reembed(batch=5, progress=interrupt_in_second_batch)
        assert hive.search_model == "all-MiniLM-L6-v2"
        partial = hive.status().embedding.other_spaces
        assert partial == [{"model": other_model, "dim": 384, "embedded": 5}]

        state = hive.reembed(batch=5)
        assert state.finished and state.total == 7 and state.done == 7
        assert state.dropped == ["all-MiniLM-L6-v2"]
        assert hive.search_model == other_model and hive.model_mismatch is None
        hits = hive.search_memory("redis replication", mode="vector").hits
        assert len(hits) == 10 and hits[0].score > 0.5
