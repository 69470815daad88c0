"""The approximate (usearch HNSW) index beside sqlite-vec: kept current by every write, delete and sync apply,
rebuilt when missing, stale or corrupt, and never the reason a search is wrong."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from hivemind_app.config import Settings
from hivemind_app.hive import Hive, MemoryDraft
from hivemind_app.ml.embedder import Embedder
from hivemind_app.store import search
from hivemind_app.store.ann import AnnConfig, AnnManager, AnnStatus, index_dir
from hivemind_app.store.database import Database
from hivemind_app.store.memory_store import MemoryStore
from hivemind_app.store.models import NewMemory, SearchFilters
from hivemind_app.store.replica import Replica

DIM = 32
Matrix = npt.NDArray[np.float32]


def clustered(n: int, seed: int = 0, clusters: int = 40) -> Matrix:
    """Unit vectors around a few dozen centres, the way real embeddings bunch up."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, DIM))
    vectors = centres[rng.integers(0, clusters, n)] + rng.normal(0, 0.35, size=(n, DIM))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype(np.float32)


def memory(text: str, tags: tuple[str, ...] = (), session: str | None = None) -> NewMemory:
    return NewMemory(id=hashlib.sha256(text.encode()).hexdigest(), text=text, tags=tags, session_id=session)


class Store:
    """A store file with its own connection and ANN manager: one per "process"."""

    def __init__(self, path: Path, **config: object) -> None:
        self.progress: list[AnnStatus] = []
        self.db = Database(path, node_name="test")
        options: dict[str, object] = {"min_vectors": 50, "exact_filter_limit": 100, "compact_changes": 1000}
        options.update(config)
        self.ann = AnnManager(
            path,
            AnnConfig(**options),  # type: ignore[arg-type]
            on_progress=lambda s: self.progress.append(AnnStatus(**s.to_dict())),
        )
        self.memories = MemoryStore(self.db, ann=self.ann)
        self.space = self.memories.ensure_space("test-model", DIM)

    def put(self, texts: list[str], vectors: Matrix, tags: tuple[str, ...] = ()) -> None:
        self.memories.put_many([memory(t, tags) for t in texts], list(vectors), self.space)

    def search(self, vector: Matrix, k: int = 10, filters: SearchFilters | None = None) -> list[str]:
        hits = self.memories.vector_search(self.space, vector, k, filters or SearchFilters())
        loaded = self.memories.get_many(r for r, _ in hits)
        return [loaded[r].text for r, _ in hits]

    def exact(self, vector: Matrix, k: int = 10, filters: SearchFilters | None = None) -> list[str]:
        hits = search.vector_search(self.db.conn, self.space, vector, k, filters or SearchFilters())
        loaded = self.memories.get_many(r for r, _ in hits)
        return [loaded[r].text for r, _ in hits]

    def index(self) -> AnnStatus:
        index = self.ann.index_for(self.space)
        assert index is not None
        return index.status

    def built(self) -> AnnStatus:
        """Search once (which starts a build when there is no usable index), wait for the build, refresh."""
        index = self.ann.index_for(self.space)
        assert index is not None
        self.search(np.ones(DIM, dtype=np.float32))
        assert index.wait(60)
        self.search(np.ones(DIM, dtype=np.float32))
        return index.status

    def close(self) -> None:
        self.ann.close(wait=True)
        self.db.close()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "hive.db"


@pytest.fixture
def store(path: Path) -> Iterator[Store]:
    s = Store(path)
    s.put([f"note {i}" for i in range(600)], clustered(600))
    yield s
    s.close()


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


def test_a_build_reports_its_progress(store: Store) -> None:
    store.built()
    states = [p.state for p in store.progress]
    assert "building" in states and states[-1] == "ready"
    fractions = [p.progress for p in store.progress if p.progress is not None]
    assert fractions and fractions[-1] == 1.0


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


def test_a_sync_apply_updates_the_index(store: Store) -> None:
    store.built()
    replica = Replica(store.db)
    pulled = clustered(1, seed=11)[0]
    remote = {
        "id": memory("from the hub").id,
        "text": "from the hub",
        "version": str(1 << 62),
        "timestamp": "1",
        "updated_at": "1",
        "origin": "laptop",
        "deleted": "0",
        "vector": pulled.tobytes(),
        "model": "test-model",
    }
    with store.db.write() as conn:
        replica.apply_memory(conn, remote, store.space)
    assert store.search(pulled, k=1) == ["from the hub"]
    with store.db.write() as conn:
        replica.apply_memory(conn, {**remote, "version": str((1 << 62) + 1), "deleted": "1"}, store.space)
    assert "from the hub" not in store.search(pulled, k=10)


def test_a_missing_index_file_is_rebuilt_and_searches_stay_exact_meanwhile(store: Store, path: Path) -> None:
    store.built()
    store.close()
    shutil.rmtree(index_dir(path))
    again = Store(path)
    index = again.ann.index_for(again.space)
    assert index is not None
    target = clustered(600)[8]
    assert again.search(target, k=1) == ["note 8"]  # exact while the build runs
    assert index.wait(60)
    assert again.built().state == "ready"
    assert again.search(target, k=1) == ["note 8"]
    again.close()


def test_switching_spaces_deletes_the_old_spaces_index_files(store: Store, path: Path) -> None:
    store.built()
    old_files = sorted(p.name for p in index_dir(path).glob(f"space-{store.space.space_id}*"))
    assert any(name.endswith(".usearch") for name in old_files)
    new_space = store.memories.ensure_space("test-model+int8", DIM)
    missing = store.memories.memories_missing_vectors(new_space, 10_000)
    store.memories.set_vectors(
        new_space, [(rowid, v) for (rowid, _), v in zip(missing, clustered(600, 5), strict=True)]
    )
    assert store.memories.activate_space(new_space) == ["test-model"]
    assert list(index_dir(path).glob(f"space-{store.space.space_id}[.-]*")) == []
    store.space = new_space
    assert store.built().state == "ready" and store.index().indexed == 600  # the new space gets its own


def test_index_files_of_a_space_the_store_no_longer_has_are_deleted_when_it_opens(store: Store, path: Path) -> None:
    store.built()
    kept = sorted(p.name for p in index_dir(path).iterdir())
    # what a process that dropped space 7 and died before deleting its files leaves behind
    # (and of space 12, whose name starts like the live space 1's)
    leftovers = ("space-7.json", "space-7-3-abc.usearch", ".space-7-4-def.tmp", "space-7.lock", "space-12.json")
    for name in (*leftovers, "space-12-5-0a1b.usearch", "space-12-5-0a1b.usearch.vectors"):
        (index_dir(path) / name).write_text("left behind")
    store.close()
    again = Store(path)
    assert sorted(p.name for p in index_dir(path).iterdir()) == kept
    again.search(np.ones(DIM, dtype=np.float32))
    assert again.index().state == "ready"  # the live space's index is untouched and still used, not rebuilt
    assert not any(status.state == "building" for status in again.progress)
    again.close()


def test_an_index_file_older_than_the_pruned_log_is_detected_and_rebuilt(path: Path, tmp_path: Path) -> None:
    s = Store(path, compact_changes=10)
    s.put([f"note {i}" for i in range(600)], clustered(600))
    s.built()
    old = tmp_path / "old-index"
    shutil.copytree(index_dir(path), old)
    late = clustered(30, seed=5)
    s.put([f"late {i}" for i in range(30)], late)
    index = s.ann.index_for(s.space)
    assert index is not None
    s.search(late[0])  # 30 changes > 10: a new file is written in the background and the log pruned
    assert index.wait(60)
    s.close()
    shutil.rmtree(index_dir(path))
    shutil.copytree(old, index_dir(path))  # the file from before, as if the new one never reached the disk
    again = Store(path)
    assert again.search(late[0], k=1) == ["late 0"]  # exact: the old file is not used
    assert "misses changes" in again.index().detail
    assert again.built().state == "ready"
    assert again.index().indexed == 630
    assert again.search(late[3], k=1) == ["late 3"]
    again.close()


def test_an_index_file_of_another_store_is_not_used(path: Path, tmp_path: Path) -> None:
    s = Store(path)
    s.put([f"note {i}" for i in range(600)], clustered(600))
    s.built()
    s.close()
    other_path = tmp_path / "other" / "hive.db"
    other = Store(other_path)
    other.put([f"other {i}" for i in range(600)], clustered(600, seed=3))
    shutil.copytree(index_dir(path), index_dir(other_path))
    assert other.search(clustered(600, seed=3)[1], k=1) == ["other 1"]
    assert "generation" in other.index().detail
    other.close()


def test_a_corrupt_index_file_falls_back_to_exact_and_is_rebuilt(store: Store, path: Path) -> None:
    store.built()
    store.close()
    sidecar = json.loads((index_dir(path) / "space-1.json").read_text())
    (index_dir(path) / sidecar["file"]).write_bytes(b"not an index" * 100)
    again = Store(path)
    assert again.search(clustered(600)[9], k=1) == ["note 9"]
    assert any("corrupt" in e for e in again.index().errors)
    assert again.built().state == "ready"
    again.close()


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


def test_many_changes_are_folded_into_a_new_file_and_the_log_pruned(path: Path) -> None:
    s = Store(path, compact_changes=20)
    s.put([f"note {i}" for i in range(600)], clustered(600))
    s.built()
    s.put([f"more {i}" for i in range(50)], clustered(50, seed=8))
    s.memories.delete(memory("note 1").id)
    index = s.ann.index_for(s.space)
    assert index is not None
    s.search(clustered(1, seed=9)[0])
    assert index.wait(60)
    s.search(clustered(1, seed=9)[0])
    assert s.index().indexed == 649 and s.index().delta == 0
    logged = s.db.conn.execute("SELECT count(*) FROM vector_changes").fetchone()
    assert logged is not None and logged[0] == 0
    assert s.search(clustered(50, seed=8)[7], k=1) == ["more 7"]
    assert "note 1" not in s.search(clustered(600)[1], k=10)
    assert len(list(index_dir(path).glob("*.usearch"))) == 1
    s.close()


def test_an_unknown_index_dtype_is_refused_with_a_clear_error() -> None:
    with pytest.raises(ValueError, match="dtype must be one of f32, f16, i8"):
        AnnConfig(dtype="f64")


def test_settings_turn_the_index_off(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HIVEMIND_SEARCH__ANN", "false")
    monkeypatch.setenv("HIVEMIND_SEARCH__ANN_MIN_VECTORS", "5")
    settings = Settings()
    assert settings.search.ann is False and settings.search.ann_min_vectors == 5


def test_an_exact_space_without_an_index_is_reported_off_when_disabled(path: Path) -> None:
    s = Store(path, enabled=False)
    s.put([f"note {i}" for i in range(100)], clustered(100))
    assert s.search(clustered(100)[4], k=1) == ["note 4"]
    assert [st.state for st in s.memories.index_status()] == ["off"]
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
        hive.memories.ann.index_for(hive.memories.active_space()).wait(60)  # type: ignore[union-attr]
        hive.store_memory("the GPU box is called tensor and sits under the desk")
        found = hive.search_memory("which machine has the GPU", mode="hybrid", limit=1)
        assert found.hits[0].memory.text.startswith("the GPU box")
        status = hive.index_status()
        assert status[0].state == "ready" and status[0].indexed == 13 and status[0].delta == 1
