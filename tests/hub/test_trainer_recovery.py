"""A trainer killed mid-round loses no queue entries: another trainer claims and finishes them."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from hivemind_app.hive import Hive
from tests.support.console import console_script
from tests.support.redis_server import RedisServer
from tests.support.tool_uses import tool_uses
from tests.support.training import training_settings

# A module that may pay for the session's training round (learned_round) gets more than the default 300 s.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]
ENTRIES = 120


def test_a_trainer_killed_mid_round_leaves_its_entries_for_another_trainer(
    tmp_path: Path, hf_base: Path, redis_server: RedisServer
) -> None:
    laptop = training_settings(tmp_path / "laptop", hf_base, name="laptop", redis_url=redis_server.url)
    with Hive(laptop) as hive:
        for item in tool_uses(ENTRIES, seed=11):
            hive.add_to_learning_queue(item)
        hive.sync()
    client = redis_server.client()
    assert client.xlen("hive:learning:queue") == ENTRIES

    env = {
        **os.environ,
        "HIVEMIND_DATA_DIR": str(tmp_path / "trainer-a"),
        "HIVEMIND_NODE__NAME": "trainer-a",
        "HIVEMIND_REDIS__URL": redis_server.url,
        "HIVEMIND_TRAIN__BASE_MODEL_PATH": str(hf_base),
        "HIVEMIND_TRAIN__STEPS": "100000",  # it would train for hours: it is killed mid-round
    }
    doomed = subprocess.Popen(
        [console_script(), "train", "--now"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and doomed.poll() is None:
            info = client.xinfo_groups("hive:learning:queue") if client.exists("hive:learning:queue") else []
            if info and info[0]["pending"] == ENTRIES:
                break
            time.sleep(0.2)
        assert doomed.poll() is None, doomed.stderr.read().decode() if doomed.stderr else ""
        time.sleep(3)  # into the round proper: loading the base model, training
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(10)
    finally:
        if doomed.poll() is None:
            doomed.kill()
    assert client.xpending("hive:learning:queue", "trainers")["pending"] == ENTRIES
    assert client.llen("hive:training:rounds") == 0

    survivor = training_settings(
        tmp_path / "trainer-b",
        hf_base,
        name="trainer-b",
        redis_url=redis_server.url,
        steps=2,
        claim_idle_s=0.1,
        eval_limit=8,
        min_held_out=2,
    )
    with Hive(survivor) as hive:
        report = hive.train_round()
    assert report["queue"]["taken"] == ENTRIES
    assert report["verdict"] in ("promoted", "rejected")
    assert client.xpending("hive:learning:queue", "trainers")["pending"] == 0
    assert client.xinfo_groups("hive:learning:queue")[0]["lag"] == 0
