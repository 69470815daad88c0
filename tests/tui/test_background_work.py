"""The line above the status bar: the embedding model's one-off conversion and the vector index build."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from textual.widgets import DataTable, Label

from hivemind_app.config import Settings
from hivemind_app.hive import Hive, MemoryDraft
from hivemind_app.records.status import IndexState
from hivemind_app.tui.app import HivemindApp
from hivemind_app.tui.background import BackgroundWork
from tests.tui.support import settle

pytestmark = pytest.mark.anyio


def _label(app: HivemindApp) -> str:
    return str(app.query_one("#background-label", Label).render())


async def test_the_first_vector_search_shows_the_model_conversion_and_hides_it_when_done(
    isolated_env: Path, tmp_path: Path
) -> None:
    with Hive(Settings(embedding={"backend": "torch"})) as hive:  # vectors made without any conversion
        hive.store_memories([MemoryDraft("The staging Postgres database listens on port 5433")])
    with Hive(Settings(embedding={"converted_dir": tmp_path / "fresh"})) as hive:
        app = HivemindApp(hive, refresh_seconds=0)
        async with app.run_test(size=(100, 30)) as pilot:
            work = app.query_one(BackgroundWork)
            assert not work.has_class("-busy")
            await pilot.press(*"pre-production database port")
            seen: set[str] = set()
            table = app.query_one("#results", DataTable)
            for _ in range(1200):  # the conversion takes ~5-15 s here
                await asyncio.sleep(0.05)
                if work.has_class("-busy"):
                    seen.add(_label(app))
                elif seen and table.row_count:
                    break
            await settle(pilot)
            assert any("converting the embedding model (once)" in text for text in seen), seen
            assert not work.has_class("-busy")
            assert "5433" in str(table.get_row_at(0)[1])


async def test_an_index_being_built_shows_its_progress_until_it_is_ready(hive: Hive) -> None:
    app = HivemindApp(hive, refresh_seconds=0)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)  # the first status refresh (no index building) lands before the one shown here
        work = app.query_one(BackgroundWork)
        work.show_index(IndexState(state="building", progress=0.42))
        await pilot.pause()
        assert work.has_class("-busy") and "building the vector index" in _label(app)
        assert app.query_one("#background-bar").progress == 42  # type: ignore[attr-defined]
        work.show_index(IndexState(state="ready", indexed=25_000))
        await pilot.pause()
        assert not work.has_class("-busy")
