"""A node reconciles its whole history with the hub by itself: writes made with no hub configured, a hub met
for the first time, a flushed hub, a hub restored from an older snapshot (`hub/epoch.py`)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from hivemind_app.config import Settings
from hivemind_app.hive import Hive
from hivemind_app.hub.sync import SyncReport
from tests.hub.conftest import HASH, NodeFactory
from tests.support.hash_embedder import HashEmbedder
from tests.support.redis_server import RedisServer


def live_ids(hive: Hive) -> set[str]:
    return {m.id for m in hive.recent_memories(100_000)}


def without_hub(tmp_path: Path, name: str) -> Hive:
    """The node `name` of `make_node` opened as an MCP server or hook run without HIVEMIND_REDIS__URL is."""
    settings = Settings(
        data_dir=tmp_path / name, node={"name": name, "port": 0}, embedding={"model": HashEmbedder.model_name}
    )
    return Hive(settings, embedder=HASH)


def sync_after_restart(node: Hive) -> SyncReport:
    """A sync pass once the hub is back (the first may meet the connection the restart dropped)."""
    report = node.sync(force=True)
    if report is None or not report.online:
        report = node.sync(force=True)
    assert report is not None and report.online, report
    return report


def test_a_store_and_a_delete_made_with_no_hub_configured_reach_the_hub_and_the_other_nodes_once_one_is(
    make_node: NodeFactory, redis_server: RedisServer, tmp_path: Path
) -> None:
    a, b = make_node("a"), make_node("b")
    doomed = a.store_memory("The old VPN endpoint is vpn1.example.org").memory.id
    a.sync()
    b.sync()
    a.close()
    alone = without_hub(tmp_path, "a")
    added = alone.store_memory("The new VPN endpoint is vpn2.example.org").memory.id
    alone.delete_memory(doomed)
    alone.close()
    a = make_node("a")  # the hub configured again
    a.sync()
    b.sync()

    assert live_ids(b) == live_ids(a) == {added}
    r = redis_server.client()
    assert r.hget(f"hive:embedding:{doomed}", "deleted") == b"1" and r.hget(f"hive:embedding:{added}", "text")


def test_after_a_flushall_a_plain_sync_restores_the_hub_and_a_joining_node_sees_everything(
    make_node: NodeFactory, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    a, b = make_node("a"), make_node("b")
    ids = {a.store_memory(f"fact {n} from a").memory.id for n in range(3)}
    ids |= {b.store_memory(f"fact {n} from b").memory.id for n in range(2)}
    a.set_context("s1", {"current_task": "kept through the flush"})
    a.sync()
    b.sync()
    before = a.status().sync.hub_epoch
    redis_server.client().flushall()

    with caplog.at_level(logging.WARNING, logger="hivemind_app.hub.epoch"):
        report = a.sync()
        again = a.sync()
    assert report is not None and report.reconciled and "epoch changed" in report.reconciled
    assert again is not None and again.reconciled is None
    assert sum("reconciled this node's whole history" in r.message for r in caplog.records) == 1
    status = a.status().sync
    assert status.hub_epoch not in (None, before) and status.last_reconcile is not None
    assert status.last_reconcile_reason == report.reconciled
    c = make_node("c")
    c.sync()
    assert live_ids(c) == ids and c.get_context("s1").current_task == "kept through the flush"
    b.sync()
    assert live_ids(b) == ids and b.status().sync.hub_epoch == status.hub_epoch


def test_a_hub_restored_from_an_older_snapshot_is_noticed_and_gets_the_writes_it_lost_back(
    make_node: NodeFactory, redis_server: RedisServer, tmp_path: Path
) -> None:
    a, b = make_node("a"), make_node("b")
    first = a.store_memory("Snapshot-era fact").memory.id
    a.set_context("s1", {"current_task": "before the snapshot"})
    a.sync()
    b.sync()
    snapshot = tmp_path / "snapshot"
    redis_server.stop()
    shutil.copytree(redis_server.directory / "appendonlydir", snapshot)
    redis_server.start()
    sync_after_restart(a)
    later = a.store_memory("Written after the snapshot").memory.id
    a.set_context("s1", {"current_task": "after the snapshot"})
    b.store_memory("Also written after the snapshot")
    b.sync()
    redis_server.stop()
    shutil.rmtree(redis_server.directory / "appendonlydir")
    shutil.copytree(snapshot, redis_server.directory / "appendonlydir")
    redis_server.start()
    assert not redis_server.client().exists(f"hive:embedding:{later}")

    report = sync_after_restart(a)
    assert report.reconciled and "restored from an older copy" in report.reconciled
    assert "restored from an older copy" in str(sync_after_restart(b).reconciled)
    a.sync()
    c = make_node("c")
    c.sync()
    assert live_ids(c) == live_ids(a) == live_ids(b) and first in live_ids(c) and later in live_ids(c)
    assert len(live_ids(c)) == 3
    # the hub's older copy of the session is no conflict with the edit it lost: it is simply older
    assert c.get_context("s1").current_task == "after the snapshot" and a.conflicts() == {}


def test_push_only_passes_before_the_first_full_one_queue_the_history_once_not_on_every_write(
    make_node: NodeFactory,
) -> None:
    a = make_node("a")
    for n in range(20):  # each store is followed by a push-only pass, as in a hook
        a.store_memory(f"hook write {n}")
    pushed_by_full_pass = a.sync()
    assert pushed_by_full_pass is not None and pushed_by_full_pass.reconciled is not None
    assert pushed_by_full_pass.pushed == 0 and a.status().sync.outbox == 0


def test_a_node_that_joins_a_feed_trimmed_to_nothing_reconciles_once_not_on_every_pass(
    make_node: NodeFactory, redis_server: RedisServer
) -> None:
    a = make_node("a")
    a.store_memory("written before the trim")
    redis_server.client().xtrim("hive:memory:changes", maxlen=0, approximate=False)
    b = make_node("b")
    first = b.sync(force=True)
    assert first is not None and first.reconciled  # first contact: the bootstrap starts past the trimmed entries
    again = b.sync(force=True)
    assert again is not None and again.reconciled is None, again.reconciled


def test_a_node_away_while_the_feed_was_trimmed_does_not_publish_a_conflict_resolved_meanwhile(
    make_node: NodeFactory, redis_server: RedisServer
) -> None:
    a, b = make_node("a"), make_node("b")
    a.sync()
    b.sync()
    a.set_context("s1", {"current_task": "edited on a"})
    b.set_context("s1", {"current_task": "edited on b"})
    a.sync()
    b.sync()
    assert list(b.conflicts(sync=False)) == ["s1"]
    r = redis_server.client()
    r.hdel("hive:sessions:conflicts", "s1")  # resolved on a while b was away
    a.store_memory("a write the trim takes")
    r.xtrim("hive:memory:changes", maxlen=0, approximate=False)
    report = b.sync(force=True)
    assert report is not None and report.reconciled and "trimmed" in report.reconciled
    assert r.hlen("hive:sessions:conflicts") == 0
    assert list(b.conflicts(sync=False)) == []
