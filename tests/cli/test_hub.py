"""Two machines' CLIs sharing one real redis-server: store on A, recall on B."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.support.console import console_script
from tests.support.redis_server import RedisServer, free_port

EXE = console_script()


def run(machine: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "HIVEMIND_DATA_DIR": str(machine / "data"),
        "HIVEMIND_CONFIG": str(machine / "c.toml"),
        "HIVEMIND_NODE__NAME": machine.name,
        "HIVEMIND_REDIS__URL": url,
        "HIVEMIND_NODE__PORT": "0",
    }
    return subprocess.run([EXE, *args], env=env, capture_output=True, text=True, timeout=180)


def test_a_memory_stored_on_the_laptop_is_recalled_on_the_desktop(tmp_path: Path, redis_server: RedisServer) -> None:
    laptop, desktop = tmp_path / "laptop", tmp_path / "desktop"
    stored = run(laptop, redis_server.url, "store", "The staging DB is on port 5433", "--json")
    assert stored.returncode == 0, stored.stderr
    found = run(desktop, redis_server.url, "recall", "which port is staging on?", "--json")
    assert found.returncode == 0, found.stderr
    result = json.loads(found.stdout)["results"][0]
    assert result["text"] == "The staging DB is on port 5433" and result["origin_node"] == "laptop"

    status = run(desktop, redis_server.url, "sync", "--status", "--json")
    data = json.loads(status.stdout)
    assert data["online"] is True and data["outbox"] == 0 and data["conflicts"] == 0 and data["feed_cursor"]
    text = run(laptop, redis_server.url, "sync")
    assert text.returncode == 0 and "synced with 127.0.0.1" in text.stdout and "outbox:    0 writes" in text.stdout
    assert run(laptop, redis_server.url, "conflicts").stdout.strip() == "no conflicts"


def test_with_the_hub_down_the_cli_keeps_working_and_says_so_once(tmp_path: Path) -> None:
    url = f"redis://:s3cret@127.0.0.1:{free_port()}/0"
    machine = tmp_path / "laptop"
    stored = run(machine, url, "store", "written while the NAS is off")
    assert stored.returncode == 0 and stored.stdout.startswith("stored")
    assert stored.stderr.count("Working offline") == 1 and "s3cret" not in stored.stderr
    found = run(machine, url, "recall", "NAS is off", "--mode", "keyword", "--json")
    assert json.loads(found.stdout)["results"][0]["text"] == "written while the NAS is off"
    status = run(machine, url, "sync", "--status")
    assert status.returncode == 69 and "offline since" in status.stdout and "1 writes waiting" in status.stdout
    assert "s3cret" not in status.stdout + status.stderr


def test_sync_without_a_hub_is_a_clear_error(tmp_path: Path) -> None:
    env = {**os.environ, "HIVEMIND_DATA_DIR": str(tmp_path / "d"), "HIVEMIND_CONFIG": str(tmp_path / "c.toml")}
    result = subprocess.run([EXE, "sync"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 78 and "No hub configured" in result.stderr


def test_sync_verify_says_when_redis_holds_a_memory_this_node_cannot_read(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    laptop, desktop = tmp_path / "laptop", tmp_path / "desktop"
    stored = json.loads(run(laptop, redis_server.url, "store", "only the laptop holds this", "--json").stdout)
    redis_server.client().hset(f"hive:embedding:{stored['id']}", "tags", "null")  # damaged in place
    verified = run(desktop, redis_server.url, "sync", "--verify")
    assert verified.returncode == 0, verified.stderr
    assert "1 in Redis this node cannot read (hivemind-app sync --quarantined)" in verified.stdout


def test_sync_quarantined_prints_keys_and_values_from_redis_as_visible_escapes(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    desktop = tmp_path / "desktop"
    run(desktop, redis_server.url, "sync")
    hostile = "evil\x1b]52;c;cm0gLXJmIH4=\x07\x9b2J\u202e"
    r = redis_server.client()
    r.hset(f"hive:session:{hostile}", mapping={"timestamp": "1", "current_task": f"task {hostile}"})
    r.xadd("hive:memory:changes", {"kind": "session", "id": hostile, "version": "1", "node": "rogue"})
    warned = run(desktop, redis_server.url, "sync")
    assert "quarantined" in warned.stderr and "\x1b" not in warned.stderr  # the warning is escaped too
    listed = run(desktop, redis_server.url, "sync", "--quarantined")
    assert listed.returncode == 0, listed.stderr
    assert "records from Redis quarantined" in listed.stdout
    for raw in ("\x1b", "\x07", "\x9b", "\u202e"):
        assert raw not in listed.stdout
    assert "evil\\x1b]52;c;cm0gLXJmIH4=\\x07\\x9b2J\\u202e" in listed.stdout


def test_sync_status_of_a_node_that_never_synced_says_the_hub_is_not_reached_yet_rather_than_online(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    machine = tmp_path / "new"
    before = run(machine, redis_server.url, "sync", "--status")
    assert before.returncode == 0, before.stderr
    assert "(not reached yet: run `hivemind-app sync`)" in before.stdout and "(online)" not in before.stdout
    assert run(machine, redis_server.url, "sync").returncode == 0
    assert (
        f"{redis_server.url.split('//')[1].split('/')[0]} (online)"
        in run(machine, redis_server.url, "sync", "--status").stdout
    )
