"""`hivemind-app train` and `hivemind-app adapters` as a user runs them, on a node that trained once."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.cli.runner import assert_one_line_error, run

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]  # may pay for the session's training round


@pytest.fixture
def trained_env(learned_round: dict[str, Any], tmp_path: Path) -> dict[str, str]:
    data_dir = tmp_path / "data"
    shutil.copytree(learned_round["settings"].data_dir, data_dir, ignore=shutil.ignore_patterns("training", "models"))
    return {"HIVEMIND_DATA_DIR": str(data_dir)}


def test_history_lists_the_round_with_its_scores_and_verdict(
    trained_env: dict[str, str], learned_round: dict[str, Any]
) -> None:
    evaluation = learned_round["report"]["evaluation"]
    shown = run("train", "--history", env=trained_env)
    assert shown.returncode == 0, shown.stderr
    assert f"base {evaluation['reference_accuracy']:.0%} -> new {evaluation['accuracy']:.0%}" in shown.stdout
    assert "promoted as v1" in shown.stdout
    as_json = json.loads(run("train", "--history", "--json", env=trained_env).stdout)
    assert as_json[0]["adapter_version"] == 1 and as_json[0]["evaluation"] == evaluation


def test_adapters_lists_marks_the_active_one_and_activate_rolls_back(trained_env: dict[str, str]) -> None:
    listed = run("adapters", env=trained_env)
    assert listed.returncode == 0 and listed.stdout.startswith("* v1 ")
    assert (
        run("adapters", "activate", "base", env=trained_env).stdout.strip() == "the base model is active (no adapter)"
    )
    assert json.loads(run("adapters", "--json", env=trained_env).stdout)[0]["active"] is False
    assert run("adapters", "activate", "v1", env=trained_env).stdout.strip() == "adapter v1 is active"
    assert_one_line_error(run("adapters", "activate", "v9", env=trained_env), 65, "No adapter v9")
    assert_one_line_error(run("adapters", "activate", "latest", env=trained_env), 65, "not an adapter version")


def test_train_needs_now_or_history_and_an_empty_queue_round_says_so() -> None:
    usage = run("train")
    assert usage.returncode == 2 and "Give --now" in usage.stderr
    empty = run("train", "--now")
    assert empty.returncode == 0, empty.stderr
    assert empty.stdout.strip() == "skipped: the learning queue is empty: nothing to learn from"
