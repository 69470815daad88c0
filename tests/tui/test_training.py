"""The Queue view's learning loop: the active adapter and past rounds, a progress bar while a round runs,
and `t` to run one now."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import ProgressBar, Static

from hivemind_app.config import Settings
from hivemind_app.hive import Hive
from hivemind_app.ml.trainer import RoundProgress
from hivemind_app.tui.app import HivemindApp
from hivemind_app.tui.panels import QueueView
from tests.tui.support import settle

pytestmark = pytest.mark.anyio


def figures(app: HivemindApp) -> str:
    return str(app.query_one("#training-figures", Static).render())


@pytest.mark.slow
@pytest.mark.timeout(2400)  # may pay for the session's training round
async def test_the_queue_view_shows_the_active_adapter_and_the_last_round(
    learned_round: dict[str, Any], tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    shutil.copytree(learned_round["settings"].data_dir, data_dir, ignore=shutil.ignore_patterns("training", "models"))
    with Hive(Settings(data_dir=data_dir, discovery={"enabled": False})) as hive:
        app = HivemindApp(hive, refresh_seconds=0)
        async with app.run_test(size=(140, 40)) as pilot:
            await settle(pilot)
            app.action_show_tab("queue")
            await pilot.pause()
            shown = figures(app)
    accuracy = learned_round["report"]["evaluation"]["accuracy"]
    assert f"v1 active, held-out accuracy {accuracy:.0%}" in shown
    assert "promoted as v1, base" in shown and "0 queue entries wait" in shown


async def test_a_running_round_shows_its_stage_and_progress(hive: Hive) -> None:
    app = HivemindApp(hive, refresh_seconds=0)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        app.action_show_tab("queue")
        view = app.query_one(QueueView)
        view.post_message(QueueView.RoundProgressed(RoundProgress("training", 12, 30, "2.6 examples/s", 0.48)))
        await pilot.pause()
        bar = app.query_one("#training-progress", ProgressBar)
        assert app.query_one("#training-run").has_class("running")
        assert (bar.progress, bar.total) == (12, 30)
        assert "training: 2.6 examples/s, loss 0.480" in str(app.query_one("#training-stage").render())
        view.post_message(QueueView.RoundProgressed(None))
        await pilot.pause()
        assert not app.query_one("#training-run").has_class("running")


async def test_pressing_t_in_the_queue_view_runs_a_round_and_reports_its_verdict(hive: Hive) -> None:
    app = HivemindApp(hive, refresh_seconds=0)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        app.action_show_tab("queue")
        app.query_one(QueueView).focus()
        await pilot.press("t")
        await settle(pilot)
        messages = [n.message for n in app._notifications]
        assert any("skipped: the learning queue is empty" in m for m in messages), messages
        assert "skipped" in figures(app)
