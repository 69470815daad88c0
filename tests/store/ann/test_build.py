"""Building and rebuilding index files (store/ann/build.py, sidecar.py): progress, a missing, stale, foreign or
corrupt file rebuilt while searches stay exact, and compaction folding the change log into a new file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from hivemind_app.store.ann import index_dir
from tests.store.ann.helpers import Store, clustered, memory


def test_a_build_reports_its_progress(store: Store) -> None:
    store.built()
    states = [p.state for p in store.progress]
    assert "building" in states and states[-1] == "ready"
    fractions = [p.progress for p in store.progress if p.progress is not None]
    assert fractions and fractions[-1] == 1.0


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
