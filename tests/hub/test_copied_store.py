"""A `hive.db` copied to a second place (a backup restored on another machine, a second data dir) must not
keep the original's node id: a node skips feed entries under its own id, so the two copies would ignore each
other's writes for ever. Real redis-server, two real stores."""

from __future__ import annotations

import shutil
from pathlib import Path

from hivemind_app.hive import Hive
from tests.hub.conftest import NodeFactory


def store_file(hive: Hive) -> Path:
    return Path(hive.check_store()[0].path)


def test_a_copied_store_takes_a_new_node_id_and_both_copies_then_see_each_others_writes(
    make_node: NodeFactory, tmp_path: Path
) -> None:
    original = make_node("a")
    before_copy = original.store_memory("written before the backup was taken")
    original.sync()
    original_id = original.node_id
    source = store_file(original)
    original.close()
    (tmp_path / "b").mkdir()
    shutil.copy2(source, tmp_path / "b" / "hive.db")

    original = make_node("a")
    copy = make_node("b")

    assert original.node_id == original_id  # the original, reopened where it was made, keeps its id
    assert copy.node_id != original_id and copy.node_rekeyed_from == original_id
    assert copy.get_memory(before_copy.memory.id).text == "written before the backup was taken"  # nothing lost

    from_original = original.store_memory("written on the original after the copy")
    original.sync()
    copy.sync()
    assert copy.get_memory(from_original.memory.id).text == "written on the original after the copy"

    from_copy = copy.store_memory("written on the copy")
    copy.sync()
    original.sync()
    assert original.get_memory(from_copy.memory.id).text == "written on the copy"


def test_reset_id_gives_a_new_id_that_survives_reopening(make_node: NodeFactory) -> None:
    node = make_node("a")
    old, new = node.reset_node_id()
    assert old != new and node.node_id == new and len(new) == 12
    node.close()
    assert make_node("a").node_id == new
