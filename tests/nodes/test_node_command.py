"""`hivemind-app node` and `hivemind-app nodes` as real processes on loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess

import httpx

from tests.support.console import console_script
from tests.support.redis_server import free_port

EXE = console_script()


def test_a_headless_node_serves_embed_lists_itself_and_stops_cleanly_on_sigterm() -> None:
    port = free_port()
    env = {
        **os.environ,
        "HIVEMIND_NODE__PORT": str(port),
        "HIVEMIND_DISCOVERY__INTERFACES": "127.0.0.1",
        "HIVEMIND_NODE__HEARTBEAT_S": "0.5",
    }
    proc = subprocess.Popen(
        [EXE, "node", "--roles", "embed"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        banner = proc.stdout.readline() if proc.stdout else ""
        assert f"serving on 127.0.0.1:{port}, roles: embed" in banner, proc.stderr.read() if proc.stderr else ""
        answer = httpx.post(
            f"http://127.0.0.1:{port}/embed", json={"text": "What was I doing with PyTorch benchmarks?"}, timeout=60
        ).json()
        assert answer["dim"] == 384 and len(answer["embedding"]) == 384 and answer["cached"] is False

        # The CLI on the same machine embeds through the running node instead of loading the model itself.
        stored = subprocess.run(
            [EXE, "store", "Deploy freeze starts Friday 17:00", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert json.loads(stored.stdout)["embedded"] is True
        health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).json()
        assert health["embedded_texts"] == 2  # the first /embed, then the CLI's memory
        assert {w["name"] for w in health["workers"]} == {
            "heartbeat", "watch", "settings-watch", "embed-model", "backfill"
        }
        assert all(w["crashes"] == 0 for w in health["workers"])

        listed = subprocess.run([EXE, "nodes", "--json"], env=env, capture_output=True, text=True, timeout=60)
        assert listed.returncode == 0, listed.stderr
        assert json.loads(listed.stdout) == {"source": f"from the local node on port {port}", "peers": []}

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert "stopping" in (proc.stdout.read() if proc.stdout else "")
    finally:
        if proc.poll() is None:
            proc.kill()


def test_an_unknown_role_is_a_clear_error() -> None:
    proc = subprocess.run([EXE, "node", "--roles", "embed,fly"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 78 and "unknown role fly" in proc.stderr and "Traceback" not in proc.stderr


def test_node_reset_id_asks_first_then_gives_the_store_a_new_id_that_status_shows() -> None:
    before = json.loads(subprocess.run([EXE, "status", "--json"], capture_output=True, text=True).stdout)["node"]["id"]

    declined = subprocess.run([EXE, "node", "reset-id"], input="n\n", capture_output=True, text=True)
    assert declined.returncode == 1 and "Aborted" in declined.stderr
    unchanged = json.loads(subprocess.run([EXE, "status", "--json"], capture_output=True, text=True).stdout)
    assert unchanged["node"]["id"] == before

    reset = subprocess.run([EXE, "node", "reset-id", "--yes"], capture_output=True, text=True)
    assert reset.returncode == 0, reset.stderr
    after = json.loads(subprocess.run([EXE, "status", "--json"], capture_output=True, text=True).stdout)["node"]["id"]
    assert after != before and f"node id {before} -> {after}" in reset.stdout
