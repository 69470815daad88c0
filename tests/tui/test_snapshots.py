"""SVG snapshots pin each view's layout at 80x24 and 160x48, with fixed data and a fixed clock.

Update them after an intended change with `pytest tests/tui/test_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from hivemind_app.config import Settings
from hivemind_app.hive import Hive, MemoryDraft
from hivemind_app.ml.embedder import Embedder
from hivemind_app.store.database import Database
from hivemind_app.tui.app import HivemindApp
from tests.tui.support import settle

NOTES = [
    MemoryDraft("Benchmarked torch.compile on the 4090: 1.8x over eager", tags=["pytorch"], source="notes/gpu.md"),
    MemoryDraft("The staging Postgres database listens on port 5433", tags=["infra"], source="notes/db.md"),
    MemoryDraft("Redis AOF rewrite stalls writes for 200 ms on the NAS", tags=["infra", "redis"], source="chat"),
    MemoryDraft("Use ProxyJump bastion.lab to reach the GPU box from outside", tags=["ssh"], source="notes/ssh.md"),
]
SIZES = [(80, 24), (160, 48)]


def pin_node_id(settings: Settings, node_id: str) -> None:
    """Give the store a fixed node id (it is minted at random when the store is created)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.db_path, node_name=settings.node.name)
    try:
        db.conn.execute("UPDATE meta SET value = ? WHERE key = 'node_id'", (node_id,))
    finally:
        db.close()


@pytest.fixture
def fixed_hive(settings: Settings, embedder: Embedder) -> Iterator[Hive]:
    pin_node_id(settings, "a1b2c3d4e5f6")
    with Hive(settings, embedder=embedder) as hive:
        hive.store_memories(NOTES)
        hive.set_context("sess-42", {"current_task": "fix the flaky reconnect test", "files": ["hub/sync.py"]})
        hive.add_to_learning_queue({"user_query": "show the diff", "tool_used": "git_diff", "success": True})
        yield hive


def make_app(hive: Hive) -> HivemindApp:
    newest = max(m.created_at for m in hive.recent_memories(10))
    return HivemindApp(hive, clock=lambda: newest + 2 * 3600, refresh_seconds=0)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_memories_view_with_a_search(fixed_hive: Hive, snap_compare: Any, size: tuple[int, int]) -> None:
    async def search(pilot: Any) -> None:
        await settle(pilot)
        await pilot.press(*"staging database port", "enter")
        await pilot.pause(0.3)
        await settle(pilot)

    assert snap_compare(make_app(fixed_hive), terminal_size=size, run_before=search)


@pytest.mark.parametrize("tab", ["queue", "nodes", "sessions"])
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_other_views(fixed_hive: Hive, snap_compare: Any, size: tuple[int, int], tab: str) -> None:
    async def show(pilot: Any) -> None:
        await settle(pilot)
        pilot.app.action_show_tab(tab)
        await pilot.pause()

    assert snap_compare(make_app(fixed_hive), terminal_size=size, run_before=show)


def test_help_screen(fixed_hive: Hive, snap_compare: Any) -> None:
    async def help_screen(pilot: Any) -> None:
        await settle(pilot)
        await pilot.press("enter", "question_mark")
        await pilot.pause()

    assert snap_compare(make_app(fixed_hive), terminal_size=(80, 24), run_before=help_screen)
