"""The TUI against a real redis-server: the status bar follows Redis going away and coming back, and a
session conflict is resolved from the Sessions view."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from textual.widgets import DataTable

from hivemind_app.config import Settings
from hivemind_app.hive import Hive
from hivemind_app.tui.app import HivemindApp
from tests.support.hash_embedder import HashEmbedder
from tests.support.redis_server import RedisServer, free_port
from tests.tui.support import settle

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


def node(tmp_path: Path, name: str, url: str, connect_timeout_s: float = 0.3) -> Hive:
    """A node in `tmp_path/name`; opened again with another URL, the same node talks to another hub."""
    settings = Settings(
        data_dir=tmp_path / name,
        node={"name": name, "port": 0},
        embedding={"model": HashEmbedder.model_name},
        redis={"url": url, "connect_timeout_s": connect_timeout_s},
    )
    return Hive(settings, embedder=HashEmbedder())


async def wait_for_text(app: HivemindApp, selector: str, fragment: str, timeout_s: float) -> str:
    """What the widget at `selector` shows, once it shows `fragment` (an AssertionError after `timeout_s`)."""
    deadline = time.monotonic() + timeout_s
    text = ""
    while time.monotonic() < deadline:
        text = str(app.query_one(selector).render())
        if fragment in text:
            return text
        await asyncio.sleep(0.1)
    raise AssertionError(f"{selector} never showed {fragment!r}; last: {text!r}")


async def wait_for_status(app: HivemindApp, fragment: str, timeout_s: float) -> str:
    return await wait_for_text(app, "#status-bar", fragment, timeout_s)


async def queue_figures_with(app: HivemindApp, fragment: str, timeout_s: float) -> str:
    app.action_show_tab("queue")
    return await wait_for_text(app, "#queue-figures", fragment, timeout_s)


async def test_the_status_bar_flips_offline_when_redis_dies_and_back_when_it_returns(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    hive = node(tmp_path, "desk", redis_server.url)
    app = HivemindApp(hive, refresh_seconds=0.3)
    async with app.run_test(size=(120, 30)):
        await wait_for_status(app, "redis: online", 10)
        redis_server.kill()
        await wait_for_status(app, "redis: offline", 10)
        hive.store_memory("written while Redis is down")
        await wait_for_status(app, "1 writes kept locally", 10)
        redis_server.start()
        text = await wait_for_status(app, "redis: online", 20)
        assert "to push" not in text  # the outbox drained on return
        hive.add_to_learning_queue({"user_query": "q", "tool_used": "grep", "success": True})
        figures = await queue_figures_with(app, "1 in Redis", 10)
        assert "0 writes to push (online)" in figures
    hive.close()


async def test_a_conflict_is_flagged_in_sessions_and_resolved_there(tmp_path: Path, redis_server: RedisServer) -> None:
    # A partition is a refused connection (instant); the generous timeout only keeps a loaded machine's slow
    # Redis answers from looking like one.
    a, b = (node(tmp_path, name, redis_server.url, connect_timeout_s=3.0) for name in ("a", "b"))
    a.set_context("s1", {"current_task": "start"})
    b.sync()
    a.close()
    a = node(tmp_path, "a", f"redis://127.0.0.1:{free_port()}/0", connect_timeout_s=3.0)  # A's side of a partition
    a.set_context("s1", {"current_task": "edited on A"})
    b.set_context("s1", {"current_task": "edited on B"})
    b.sync(force=True)  # B's edit is in the hub before A comes back
    a.close()
    a = node(tmp_path, "a", redis_server.url, connect_timeout_s=3.0)
    a.sync(force=True)

    app = HivemindApp(a, refresh_seconds=0)
    async with app.run_test(size=(140, 30)) as pilot:
        await settle(pilot)
        app.action_show_tab("sessions")
        await pilot.pause()
        table = app.query_one("#sessions-table", DataTable)
        assert str(table.get_row_at(0)[-1]) == "conflict"
        assert "edited on A" in str(app.query_one("#conflict-detail").render())
        table.focus()
        await pilot.press("b")  # keep the other edit
        await settle(pilot)
        app.action_refresh()
        await settle(pilot)
        assert str(app.query_one("#sessions-table", DataTable).get_row_at(0)[-1]) == ""
    b.sync(force=True)
    assert b.get_context("s1").current_task == "edited on A"
    a.close()
    b.close()


async def test_a_record_quarantined_from_redis_shows_in_the_status_bar_and_the_queue_view(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    hive = node(tmp_path, "desk", redis_server.url)
    hive.sync()
    r = redis_server.client()
    # a session hash in the seed's own format (no version), under a name that is also Rich markup
    r.hset("hive:session:[red]seed[/red]", mapping={"timestamp": "1764640000", "context": "{}", "current_task": "x"})
    r.xadd("hive:memory:changes", {"kind": "session", "id": "[red]seed[/red]", "version": "1", "node": "rogue"})
    app = HivemindApp(hive, refresh_seconds=0.3)
    async with app.run_test(size=(120, 30)):
        await wait_for_status(app, "1 quarantined", 10)
        figures = await queue_figures_with(app, "1 records from Redis refused (hivemind-app sync --quarantined)", 10)
        assert "[red]seed[/red]" in figures  # shown as the text it is, not taken as markup
    hive.close()


def epoch_line(figures: str) -> str:
    return next(line for line in figures.splitlines() if line.startswith("hive epoch"))


async def test_the_queue_view_shows_the_hive_epoch_and_a_reconcile_after_the_hub_is_flushed(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    hive = node(tmp_path, "desk", redis_server.url)
    hive.store_memory("a memory the flushed hub must get back")
    app = HivemindApp(hive, refresh_seconds=0.3)
    async with app.run_test(size=(140, 30)):
        before = epoch_line(await queue_figures_with(app, "last reconciled", 15))
        redis_server.client().flushall()
        deadline = time.monotonic() + 20
        after = before
        while time.monotonic() < deadline and after == before:
            await asyncio.sleep(0.2)
            after = epoch_line(str(app.query_one("#queue-figures").render()))
        assert after != before and "last reconciled" in after, (before, after)
        assert redis_server.client().dbsize() > 0  # the node gave the flushed hub its history back
    hive.close()
