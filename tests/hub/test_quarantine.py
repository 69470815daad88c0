"""Records in Redis that no hivemind-app node of this hive wrote (or that were damaged) are quarantined, not
applied, and never stop the change feed or a bootstrap: against a real redis-server."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from hivemind_app.hive import Hive
from tests.hub.conftest import NodeFactory
from tests.support.console import console_script
from tests.support.redis_server import RedisServer

ROGUE_ID = "f" * 64  # a well-formed memory id that no node wrote
VERSION_CAP = (1 << 63) - 1  # the largest INTEGER SQLite holds


def wall_version(at: float) -> int:
    """The version a node's clock gives at unix time `at` (milliseconds, 16 bits of counter below)."""
    return int(at * 1000) << 16


def live_texts(hive: Hive) -> set[str]:
    return {m.text for m in hive.recent_memories(1000)}


def good_record(r: redis.Redis, hive: Hive) -> dict[bytes, bytes]:
    """The hash of a memory `hive` pushed, as a template for a forged one."""
    stored = hive.store_memory("a template for forged records")
    return dict(r.hgetall(f"hive:embedding:{stored.memory.id}"))


def plant_memory(r: redis.Redis, fields: dict[bytes, bytes], drop: tuple[bytes, ...] = ()) -> None:
    """Write a memory hash as another program would, and announce it in the change feed."""
    record = {**fields, b"id": ROGUE_ID.encode(), b"text": fields.get(b"text", b"forged")}
    for name in drop:
        record.pop(name, None)
    r.hset(f"hive:embedding:{ROGUE_ID}", mapping=record)  # type: ignore[arg-type]
    r.xadd("hive:memory:changes", {"kind": "memory", "id": ROGUE_ID, "version": "1", "node": "rogue"})


POISONS: dict[str, tuple[dict[bytes, Any], tuple[bytes, ...], str]] = {
    "tags null": ({b"tags": b"null"}, (), "'tags' is null, not a JSON list of strings"),
    "tags not a list": ({b"tags": b'"ops"'}, (), "'tags' is \"ops\", not a JSON list of strings"),
    "text not a string": ({b"text": b"\xff\xfe\x00binary"}, (), "'text' is not UTF-8 text"),
    "missing fields": ({}, (b"id", b"deleted"), "it has no 'id' field"),
    "non-JSON": ({b"sources": b"[not json"}, (), "'sources' is not JSON"),
    # deeper than the parser's recursion limit: RecursionError, not ValueError, which once crashed every sync
    "JSON nested too deep": ({b"tags": b"[" * 5_000}, (), "'tags' is not JSON (or is nested too deep"),
    "label stamps nested too deep": ({b"label_stamps": b'{"a":' * 2_000}, (), "'label_stamps' is not JSON"),
    "project on two lines": ({b"project": b"github.com/a/b\nrm -rf /"}, (), "not a project name"),
    "occurred_at not a number": ({b"occurred_at": b"last Tuesday"}, (), "'last Tuesday', not a number"),
    "occurred_at past the year 9999": ({b"occurred_at": b"1e300"}, (), "'occurred_at' is 1e+300, not a time"),
    "occurred_at infinite": ({b"occurred_at": b"inf"}, (), "'occurred_at' is 'inf', not a finite number"),
    "version not an integer": ({b"version": b"12.5"}, (), "its version '12.5' is not a whole number"),
    "absurd version": ({b"version": str(VERSION_CAP).encode()}, (), "days ahead of this node's clock"),
    "label stamp not a stamp": (
        {b"label_stamps": b'{"tags": {"ops": "yesterday"}}'},
        (),
        "the stamp of tag 'ops' is 'yesterday', not 'version:node'",
    ),
}


@pytest.mark.parametrize("poison", list(POISONS), ids=list(POISONS))
def test_a_malformed_memory_in_redis_is_quarantined_and_later_writes_still_arrive(
    poison: str, make_node: NodeFactory, redis_server: RedisServer
) -> None:
    a, b = make_node("a"), make_node("b")
    r = redis_server.client()
    b.sync()
    changes, drop, reason = POISONS[poison]
    plant_memory(r, {**good_record(r, a), b"text": b"forged", **changes}, drop)
    a.store_memory("written after the poison")

    report = b.sync()  # must not raise, and must not stall on the bad record
    assert report is not None and report.online
    assert live_texts(b) == {"a template for forged records", "written after the poison"}
    status = b.status().sync
    assert status.quarantined == 1 and status.feed_cursor == r.xrevrange("hive:memory:changes", count=1)[0][0].decode()
    record = status.quarantine[0]
    assert record.key == f"hive:embedding:{ROGUE_ID}" and reason in record.reason and record.quarantined_at > 0
    assert json.loads(record.raw)["origin"] == "a"  # the raw value, kept to look at

    a.store_memory("written later still")
    b.sync()
    assert "written later still" in live_texts(b)

    c = make_node("c")  # a node new to the hub bootstraps everything good
    c.sync()
    assert live_texts(c) == live_texts(a) and c.status().sync.quarantined == 1


def test_a_session_hash_in_the_seeds_own_format_is_quarantined_and_does_not_stop_a_bootstrap(
    make_node: NodeFactory, redis_server: RedisServer
) -> None:
    a, b = make_node("a"), make_node("b")
    b.sync()
    a.set_context("s-good", {"current_task": "kept in sync"})
    r = redis_server.client()
    seed_format = {"timestamp": str(time.time()), "context": "{}", "files": "[]", "current_task": "from the seed"}
    r.hset("hive:session:s-seed", mapping=seed_format)
    r.xadd("hive:memory:changes", {"kind": "session", "id": "s-seed", "version": "1", "node": "rogue"})
    a.store_memory("after the seed session")

    b.sync()
    assert b.get_context("s-good").current_task == "kept in sync"
    assert "after the seed session" in live_texts(b)
    assert [q.key for q in b.status().sync.quarantine] == ["hive:session:s-seed"]
    assert "seed's own format" in b.status().sync.quarantine[0].reason

    c = make_node("c")
    c.sync()
    assert c.get_context("s-good").current_task == "kept in sync" and c.get_context("s-seed").updated_at is None
    assert live_texts(c) == live_texts(a) and c.status().sync.quarantined == 1


def test_a_change_feed_entry_of_no_known_kind_is_quarantined_and_the_feed_moves_on(
    make_node: NodeFactory, redis_server: RedisServer
) -> None:
    a, b = make_node("a"), make_node("b")
    b.sync()
    r = redis_server.client()
    entry = r.xadd("hive:memory:changes", {"kind": "gossip", "id": "x", "node": "rogue"}).decode()
    a.store_memory("after the odd entry")
    b.sync()
    assert "after the odd entry" in live_texts(b)
    assert [q.key for q in b.status().sync.quarantine] == [f"hive:memory:changes#{entry}"]


def test_a_version_near_2_63_from_the_hub_never_reaches_the_clock_so_local_writes_still_work(
    make_node: NodeFactory, redis_server: RedisServer
) -> None:
    a, b = make_node("a"), make_node("b")
    b.sync()
    r = redis_server.client()
    plant_memory(r, {**good_record(r, a), b"version": str(VERSION_CAP - 5).encode()})
    b.sync()
    assert b.status().sync.quarantined == 1
    stored = b.store_memory("written on b after the absurd version")  # an OverflowError before
    assert stored.memory.version < wall_version(time.time() + 60)
    a.sync()
    assert "written on b after the absurd version" in live_texts(a)


def test_a_version_more_than_a_day_ahead_is_quarantined_with_advice_about_clocks(
    make_node: NodeFactory, redis_server: RedisServer
) -> None:
    a, b = make_node("a"), make_node("b")
    b.sync()
    r = redis_server.client()
    plant_memory(r, {**good_record(r, a), b"version": str(wall_version(time.time() + 3 * 86400)).encode()})
    b.sync()
    [record] = b.status().sync.quarantine
    assert "3.0 days ahead" in record.reason and "check the clock" in record.reason


def test_a_good_record_written_over_a_quarantined_one_takes_it_out_of_quarantine(
    make_node: NodeFactory, redis_server: RedisServer
) -> None:
    a, b = make_node("a"), make_node("b")
    b.sync()
    r = redis_server.client()
    template = {**good_record(r, a), b"text": b"forged"}
    plant_memory(r, {**template, b"tags": b"null"})
    b.sync()
    assert b.status().sync.quarantined == 1
    plant_memory(r, {**template, b"version": str(wall_version(time.time())).encode()})  # repaired by hand
    b.sync()
    assert b.status().sync.quarantined == 0 and "forged" in live_texts(b)


def test_the_same_bad_record_read_again_is_one_entry_counted_twice(
    make_node: NodeFactory, redis_server: RedisServer
) -> None:
    a, b = make_node("a"), make_node("b")
    b.sync()
    r = redis_server.client()
    plant_memory(r, {**good_record(r, a), b"tags": b"{}"})
    b.sync()
    assert b.parts.hub is not None
    b.parts.hub.verify()  # anti-entropy reads it once more
    [record] = b.status().sync.quarantine
    assert b.status().sync.quarantined == 1 and record.seen == 2


def run_cli(machine: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "HIVEMIND_DATA_DIR": str(machine / "data"),
        "HIVEMIND_CONFIG": str(machine / "c.toml"),
        "HIVEMIND_NODE__NAME": machine.name,
        "HIVEMIND_REDIS__URL": url,
        "HIVEMIND_REDIS__PREFIX": "hive",
        "HIVEMIND_NODE__PORT": "0",
    }
    return subprocess.run([console_script(), *args], env=env, capture_output=True, text=True, timeout=180)


def test_sync_status_counts_the_quarantine_and_sync_quarantined_lists_it_with_what_to_do(
    tmp_path: Path, make_node: NodeFactory, redis_server: RedisServer
) -> None:
    a = make_node("a")
    r = redis_server.client()
    plant_memory(r, {**good_record(r, a), b"tags": b"null"})
    desktop = tmp_path / "desktop"
    assert run_cli(desktop, redis_server.url, "sync").returncode == 0

    status = run_cli(desktop, redis_server.url, "sync", "--status")
    assert status.returncode == 0, status.stderr
    assert "quarantined: 1 records refused (hivemind-app sync --quarantined)" in status.stdout
    data = json.loads(run_cli(desktop, redis_server.url, "sync", "--status", "--json").stdout)
    assert data["quarantined"] == 1 and data["quarantine"][0]["key"] == f"hive:embedding:{ROGUE_ID}"

    listed = run_cli(desktop, redis_server.url, "sync", "--quarantined")
    assert listed.returncode == 0, listed.stderr
    assert f"hive:embedding:{ROGUE_ID}" in listed.stdout
    assert "reason: a memory: 'tags' is null, not a JSON list of strings" in listed.stdout
    assert "redis-cli DEL KEY" in listed.stdout and "sync --verify" in listed.stdout
    as_json = json.loads(run_cli(desktop, redis_server.url, "sync", "--quarantined", "--json").stdout)
    assert as_json["quarantined"] == 1 and as_json["records"][0]["seen"] == 1
