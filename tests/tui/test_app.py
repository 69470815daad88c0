"""Pilot tests: the TUI against a real store and the real model."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable, Input, TextArea

from hivemind_app.hive import Hive, MemoryDraft
from hivemind_app.ml.backends import local_embedder
from hivemind_app.ml.embedder import Embedder
from hivemind_app.tui.app import HivemindApp
from hivemind_app.tui.dialogs import ConfirmScreen, NewMemoryScreen
from hivemind_app.tui.memories import MemoriesView, parse_query
from tests.tui.support import settle

pytestmark = pytest.mark.anyio

NOTES = [
    MemoryDraft("Benchmarked torch.compile on the 4090: 1.8x over eager", tags=["pytorch"], source="notes/gpu.md"),
    MemoryDraft("The staging Postgres database listens on port 5433", tags=["infra"], source="notes/db.md"),
    MemoryDraft("Redis AOF rewrite stalls writes for 200 ms on the NAS", tags=["infra", "redis"], source="chat"),
]


async def wait_for_results(app: HivemindApp, pilot: object) -> DataTable:  # type: ignore[type-arg]
    await settle(pilot)
    return app.query_one("#results", DataTable)


def first_row_text(table: DataTable) -> str:  # type: ignore[type-arg]
    return str(table.get_row_at(0)[1])


async def test_typing_a_query_shows_the_right_memory_first(hive: Hive) -> None:
    hive.store_memories(NOTES)
    app = HivemindApp(hive, refresh_seconds=0)
    async with app.run_test(size=(100, 30)) as pilot:
        table = await wait_for_results(app, pilot)
        assert table.row_count == 3  # empty query: the most recent memories
        await pilot.press(*"which port does the pre-production database use")
        await pilot.pause(0.3)
        table = await wait_for_results(app, pilot)
        assert "staging Postgres" in first_row_text(table)
        assert "5433" in str(app.query_one("#detail-text").render())


async def test_filters_typed_into_the_search_box_narrow_the_results(hive: Hive) -> None:
    hive.store_memories(NOTES)
    app = HivemindApp(hive, refresh_seconds=0)
    async with app.run_test(size=(100, 30)) as pilot:
        app.query_one("#search", Input).value = "tag:redis writes"
        await pilot.pause(0.3)
        table = await wait_for_results(app, pilot)
        assert table.row_count == 1 and "AOF" in first_row_text(table)


async def test_mode_key_cycles_through_the_search_modes(hive: Hive) -> None:
    app = HivemindApp(hive, refresh_seconds=0)
    async with app.run_test() as pilot:
        await pilot.press("enter")  # leaves the search box for the results, as a user would
        await pilot.press("m")
        assert app.query_one(MemoriesView).mode == "vector"
        await pilot.press("m", "m")
        assert app.query_one(MemoriesView).mode == "hybrid"


async def test_storing_a_memory_through_the_ui_changes_the_store(hive: Hive) -> None:
    app = HivemindApp(hive, refresh_seconds=0)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("enter")  # leaves the search box for the results, as a user would
        await pilot.press("n")
        assert isinstance(app.screen, NewMemoryScreen)
        app.screen.query_one("#text", TextArea).text = "Deploys to prod need two approvals"
        app.screen.query_one("#tags", Input).value = "process, prod"
        await pilot.press("ctrl+s")
        await settle(pilot)
    hits = hive.search_memory("approvals", mode="keyword").hits
    assert [h.memory.tags for h in hits] == [("process", "prod")]


async def test_bad_input_in_the_new_memory_dialog_is_a_notification_not_a_crash(hive: Hive) -> None:
    app = HivemindApp(hive, refresh_seconds=0)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("enter")  # leaves the search box for the results, as a user would
        await pilot.press("n", "ctrl+s")  # empty text
        await settle(pilot)
        assert any("empty" in n.message for n in app._notifications)
    assert hive.status().memories.live == 0


async def test_deleting_asks_first_and_then_removes_the_memory(hive: Hive) -> None:
    hive.store_memories(NOTES[:2])
    app = HivemindApp(hive, refresh_seconds=0)
    async with app.run_test(size=(100, 30)) as pilot:
        table = await wait_for_results(app, pilot)
        table.focus()
        doomed = app.query_one(MemoriesView).selected()
        assert doomed is not None
        await pilot.press("d")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")  # declined: nothing happens
        assert hive.status().memories.live == 2
        await pilot.press("d", "y")
        await settle(pilot)
        table = await wait_for_results(app, pilot)
        assert table.row_count == 1
    assert hive.get_memory(doomed.id).deleted


async def test_queue_nodes_and_sessions_show_what_exists_and_say_what_is_not_configured(hive: Hive) -> None:
    hive.set_context("sess-1", {"current_task": "fix the flaky sync test", "files": ["sync.py"]})
    hive.add_to_learning_queue({"user_query": "show diff", "tool_used": "git_diff", "success": True})
    app = HivemindApp(hive, refresh_seconds=0)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("escape")
        app.action_show_tab("queue")
        await pilot.pause()
        figures = str(app.query_one("#queue-figures").render())
        assert "1 entries" in figures and "not configured" in figures
        app.action_show_tab("nodes")
        nodes = app.query_one("#nodes-table", DataTable)
        assert nodes.get_row_at(0)[0] == "test-node"
        app.action_show_tab("sessions")
        sessions = app.query_one("#sessions-table", DataTable)
        assert sessions.get_row_at(0)[:3] == ["sess-1", "fix the flaky sync test", "1"]
        status = str(app.query_one("#status-bar").render())
        assert "local store only" in status and "0 memories" in status


async def test_the_model_is_not_loaded_before_the_first_paint(hive: Hive) -> None:
    made: list[Embedder] = []  # every embedder the facade asks for, each its own, not yet loaded

    def factory(model: str) -> Embedder:
        made.append(local_embedder(model, hive.settings.embedding))
        return made[-1]

    fresh = Hive(hive.settings, embedder_factory=factory)
    app = HivemindApp(fresh, refresh_seconds=0)
    async with app.run_test() as pilot:
        await pilot.pause()
        assert not any(getattr(e, "loaded", False) for e in made)
    fresh.close()


def test_query_filters_are_parsed_out_of_the_text() -> None:
    parsed = parse_query('tag:infra tag:redis source:"notes/*" since:7d aof rewrite')
    assert parsed.text == "aof rewrite"
    assert parsed.tags == ("infra", "redis") and parsed.source == "notes/*" and parsed.since == "7d"
    assert parse_query('unbalanced "quote').text == 'unbalanced "quote'


async def test_stored_text_that_looks_like_markup_or_holds_escapes_is_shown_as_the_text_it_is(hive: Hive) -> None:
    text = "Use [bold]--force[/] only on [link=x]scratch[/link] branches\x1b[2J, never on main"
    hive.store_memories([MemoryDraft(text, tags=["[red]"])])
    app = HivemindApp(hive, refresh_seconds=0)
    async with app.run_test(size=(140, 30)) as pilot:
        table = await wait_for_results(app, pilot)
        cell = table.get_row_at(0)[1]
        assert cell.plain.startswith("Use [bold]--force[/] only on [link=x]scratch[/link] branches\\x1b[2J")
        assert str(table.get_row_at(0)[3]) == "[red]"
        detail = app.query_one("#detail-text").render()
        assert "[bold]--force[/]" in str(detail) and "\x1b" not in str(detail)
