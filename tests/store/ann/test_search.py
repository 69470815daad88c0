"""Searching through the index (store/ann/index.py): it agrees with exact search, sees every write, delete
and sync apply at once, and keeps every filter's promise."""

from __future__ import annotations

import hashlib
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from hivemind_app.config import Settings
from hivemind_app.hive import Hive, MemoryDraft
from hivemind_app.ml.embedder import Embedder
from hivemind_app.records.memories import NewMemory, SearchFilters
from hivemind_app.store.ann import index_dir
from hivemind_app.store.database import wall_version
from hivemind_app.store.remote import RemoteMemory
from hivemind_app.store.replica import Replica
from tests.store.ann.helpers import Store, clustered, memory


def test_a_small_store_is_searched_exactly_without_an_index(path: Path) -> None:
    s = Store(path, min_vectors=1000)
    s.put([f"note {i}" for i in range(20)], clustered(20))
    assert s.search(clustered(20)[3], k=1) == ["note 3"]
    assert s.index().state == "exact"
    assert not index_dir(path).exists()
    s.close()


def test_the_index_agrees_with_exact_search_on_thousands_of_clustered_vectors(path: Path) -> None:
    s = Store(path)
    vectors = clustered(4000, seed=1)
    s.put([f"note {i}" for i in range(4000)], vectors)
    assert s.built().state == "ready"
    queries = clustered(100, seed=2)
    recall = np.mean([len(set(s.search(q)) & set(s.exact(q))) / 10 for q in queries])
    assert recall >= 0.95
    assert s.index().indexed == 4000
    s.close()


def test_a_memory_stored_after_the_build_is_found_at_once(store: Store) -> None:
    store.built()
    fresh = clustered(1, seed=99)
    store.put(["the new one"], fresh)
    assert store.search(fresh[0], k=1) == ["the new one"]
    assert store.index().delta == 1


def test_a_deleted_memory_is_never_returned(store: Store) -> None:
    store.built()
    target = clustered(600)[42]
    assert store.search(target, k=1) == ["note 42"]
    store.memories.delete(memory("note 42").id)
    found = store.search(target, k=10)
    assert "note 42" not in found
    assert len(found) == 10


def test_a_write_by_another_process_shows_up_in_the_next_search(store: Store, path: Path) -> None:
    store.built()
    other = Store(path)
    fresh = clustered(1, seed=7)
    other.put(["written elsewhere"], fresh)
    other.memories.delete(memory("note 5").id)
    assert store.search(fresh[0], k=1) == ["written elsewhere"]
    assert "note 5" not in store.search(clustered(600)[5], k=10)
    other.close()


# A version from a node whose clock runs an hour ahead: newer than anything this store minted.
AHEAD = wall_version(time.time() + 3600)


def test_a_sync_apply_updates_the_index(store: Store) -> None:
    store.built()
    replica = Replica(store.db)
    pulled = clustered(1, seed=11)[0]
    remote = RemoteMemory(
        id=memory("from the hub").id,
        text="from the hub",
        version=AHEAD,
        deleted=False,
        timestamp=1.0,
        updated_at=1.0,
        origin="laptop",
        vector=pulled.tobytes(),
        model="test-model",
    )
    with store.db.write() as conn:
        replica.apply_memory(conn, remote, store.space)
    assert store.search(pulled, k=1) == ["from the hub"]
    with store.db.write() as conn:
        replica.apply_memory(conn, replace(remote, version=AHEAD + 1, deleted=True), store.space)
    assert "from the hub" not in store.search(pulled, k=10)


@pytest.mark.parametrize("exact_filter_limit", [100, 0], ids=["exact-over-matches", "index-with-filter"])
def test_a_filter_finds_a_rare_tags_matches_that_a_plain_top_k_would_miss(path: Path, exact_filter_limit: int) -> None:
    s = Store(path, exact_filter_limit=exact_filter_limit)
    vectors = clustered(800, seed=4)
    s.put([f"note {i}" for i in range(800)], vectors)
    query = vectors[0]
    far = np.argsort(vectors @ query)[:5]  # the five notes least like the query
    s.put([f"rare {i}" for i in range(5)], vectors[far] * 0.999, tags=("rare",))
    s.built()
    assert not any(t.startswith("rare") for t in s.search(query, k=10))
    found = s.search(query, k=10, filters=SearchFilters(tags=("rare",)))
    assert sorted(found) == [f"rare {i}" for i in range(5)]
    assert found == s.exact(query, k=10, filters=SearchFilters(tags=("rare",)))
    s.close()


def test_every_kind_of_filter_gives_what_exact_search_gives(path: Path) -> None:
    s = Store(path, exact_filter_limit=150)
    vectors = clustered(900, seed=12)
    items = [
        NewMemory(
            id=hashlib.sha256(f"note {i}".encode()).hexdigest(),
            text=f"note {i}",
            tags=(f"t{i % 3}", "common"),
            sources=(f"/src/{'a' if i % 2 else 'b'}/{i}.md",),
            session_id=f"s{i % 9}",
        )
        for i in range(600)
    ]
    s.memories.put_many(items, list(vectors[:600]), s.space)
    middle = s.memories.get(items[-1].id).created_at + 1e-3
    time_later = [memory(f"later {i}", tags=("t1",)) for i in range(300)]
    while __import__("time").time() <= middle:
        pass
    s.memories.put_many(time_later, list(vectors[600:]), s.space)
    s.built()
    filter_sets = [
        SearchFilters(tags=("t1",)),  # 200 + 300 rows: broad, the index searches with the filter
        SearchFilters(session_id="s4"),  # 67 rows: exact over them
        SearchFilters(tags=("t1",), session_id="s4"),
        SearchFilters(source="/src/a/*"),
        SearchFilters(since=middle),
        SearchFilters(until=middle, tags=("t2",)),
        SearchFilters(tags=("t0", "t1")),  # nothing has both
    ]
    for filters in filter_sets:
        overlap = []
        for q in clustered(5, seed=13):
            found, exact = s.search(q, k=10, filters=filters), s.exact(q, k=10, filters=filters)
            assert len(found) == len(exact), filters
            assert set(found) <= set(s.exact(q, k=900, filters=filters)), filters  # every hit passes the filter
            overlap.append(len(set(found) & set(exact)) / len(exact) if exact else 1.0)
        # few matches (<= exact_filter_limit): exact; more: the index, approximate like an unfiltered search
        assert np.mean(overlap) >= 0.9, filters
    s.close()


def test_the_hive_searches_through_the_index_and_reports_its_state(settings: Settings, embedder: Embedder) -> None:
    settings.search.ann_min_vectors = 5
    notes = [f"note {i}: the staging redis listens on port {6000 + i}" for i in range(12)]
    with Hive(settings, embedder=embedder) as hive:
        hive.store_memory("the nightly backup job writes to the NAS at 02:00", tags=["ops"])
        hive.store_memories([MemoryDraft(text) for text in notes])
        first = hive.search_memory("when does the backup run", mode="vector", limit=1)
        assert first.hits[0].memory.text.startswith("the nightly backup")  # exact while the index is built
        hive.parts.store.ann.index_for(hive.parts.store.active_space()).wait(60)  # type: ignore[union-attr]
        hive.store_memory("the GPU box is called tensor and sits under the desk")
        found = hive.search_memory("which machine has the GPU", mode="hybrid", limit=1)
        assert found.hits[0].memory.text.startswith("the GPU box")
        status = hive.index_status()
        assert status[0].state == "ready" and status[0].indexed == 13 and status[0].delta == 1
