"""The TUI hosting a real node runtime: a second node on loopback appears in Nodes, then goes dead."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from textual.widgets import DataTable

from hivemind_app.config import Settings
from hivemind_app.nodes.runtime import NodeRuntime
from hivemind_app.tui.app import HivemindApp
from tests.support.hive_key import hive_key_file

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
BEAT_S = 0.5


def node_settings(tmp_path: Path, name: str) -> Settings:
    return Settings(
        data_dir=tmp_path / name,
        node={"name": name, "hive": "tui-hive", "port": 0, "heartbeat_s": BEAT_S},
        discovery={"interfaces": ["127.0.0.1"]},
        hive={"key_file": hive_key_file(tmp_path)},  # one key: the nodes of a test are one hive
    )


def health_of(app: HivemindApp, name: str) -> str | None:
    table = app.query_one("#nodes-table", DataTable)
    for row in range(table.row_count):
        cells = table.get_row_at(row)
        if cells[0] == name:
            return str(cells[-1])
    return None


async def wait_for(app: HivemindApp, name: str, health: str, timeout_s: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        if health_of(app, name) == health:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{name} never showed {health}; last: {health_of(app, name)}")


async def test_a_second_node_appears_in_nodes_and_is_marked_dead_after_it_stops(tmp_path: Path) -> None:
    runtime = NodeRuntime(node_settings(tmp_path, "desk"), roles=[])
    other = NodeRuntime(node_settings(tmp_path, "beast"), roles=[])
    app = HivemindApp(runtime.hive, refresh_seconds=0.25, node=runtime)
    async with app.run_test(size=(120, 30)) as pilot:
        app.action_show_tab("nodes")
        await pilot.pause()
        # zeroconf's blocking API refuses to run on an event loop's thread, as a real second machine would not
        await asyncio.to_thread(other.start)
        try:
            await wait_for(app, "beast", "alive", 30)
            workers = str(app.query_one("#workers").render())
            assert "heartbeat running" in workers
        finally:
            await asyncio.to_thread(other.stop)
        await wait_for(app, "beast", "dead", BEAT_S * 3 + 8)
    runtime.hive.close()
