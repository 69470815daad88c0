"""The index's file set (store/ann/files.py, manager.py): files of dropped or unknown spaces are deleted."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hivemind_app.store.ann import index_dir
from tests.store.ann.helpers import DIM, Store, clustered


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
