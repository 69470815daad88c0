"""The node's `watch` worker with real watchfiles on temp dirs: saves, deletes, renames, moves between
folders, bursts, a node stopped while files change, a folder renamed away and back, a .gitignored file."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hivemind_app.config import Settings
from hivemind_app.hive import Hive
from hivemind_app.nodes.supervisor import Supervisor
from hivemind_app.nodes.watcher import FolderWatcher
from tests.support.hash_embedder import HashEmbedder

TIMEOUT_S = 15.0


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def texts(hive: Hive) -> set[str]:
    return {m.text for m in hive.recent_memories(limit=100)}


def searchable(hive: Hive, word: str) -> bool:
    return any(word in hit.memory.text for hit in hive.search_memory(word, mode="keyword").hits)


class Running:
    """A watch worker under a supervisor, as the node runs it (short debounce and poll for the tests)."""

    def __init__(self, hive: Hive, debounce_ms: int = 100) -> None:
        self.supervisor = Supervisor()
        self.watcher = FolderWatcher(
            hive, lambda: self.supervisor.stopping, self.supervisor.wait, debounce_ms=debounce_ms, poll_s=0.3
        )
        self.supervisor.spawn("watch", self.watcher.run, 0.0)
        wait_until(lambda: self.watcher.sessions > 0 and self.watcher.updates > 0, "the first reconcile")
        time.sleep(0.3)  # watchfiles has its watches in place

    def stop(self) -> None:
        self.supervisor.stop()
        assert self.supervisor.workers["watch"].crashes == 0, self.supervisor.workers["watch"].last_error


@pytest.fixture
def hive(isolated_env: Path) -> Iterator[Hive]:
    settings = Settings()
    settings.embedding.model = HashEmbedder.model_name
    with Hive(settings, embedder=HashEmbedder()) as h:
        yield h


@pytest.fixture
def notes(tmp_path: Path, hive: Hive) -> Path:
    root = tmp_path / "notes"
    root.mkdir()
    (root / "db.md").write_text("Staging Postgres listens on 5433.\n")
    hive.watch_folders([root])
    return root


@pytest.fixture
def running(hive: Hive, notes: Path) -> Iterator[Running]:
    node = Running(hive)
    yield node
    node.stop()


def test_a_saved_file_is_searchable_and_its_old_text_is_gone(hive: Hive, notes: Path, running: Running) -> None:
    (notes / "db.md").write_text("Staging Postgres moved to port 6543.\n")
    wait_until(lambda: searchable(hive, "6543"), "the saved text to be searchable")
    # the new chunk is stored before the old one is let go (two writes): the old text goes right after
    wait_until(lambda: texts(hive) == {"Staging Postgres moved to port 6543."}, "the old text to be gone")
    (notes / "new.md").write_text("A new note about bastion hosts.\n")
    wait_until(lambda: searchable(hive, "bastion"), "a new file to be searchable")


def test_a_deleted_file_becomes_tombstones(hive: Hive, notes: Path, running: Running) -> None:
    [memory] = hive.recent_memories()
    (notes / "db.md").unlink()
    wait_until(lambda: hive.get_memory(memory.id).deleted, "the memory to be deleted")


def test_a_renamed_file_keeps_its_memory_under_the_new_path(hive: Hive, notes: Path, running: Running) -> None:
    [memory] = hive.recent_memories()
    (notes / "db.md").rename(notes / "postgres.md")
    wait_until(lambda: [s.path for s in hive.source_spans(memory.id)] == [str(notes / "postgres.md")], "the rename")
    assert not hive.get_memory(memory.id).deleted


def test_a_file_moved_to_another_watched_folder_keeps_its_memory(
    hive: Hive, notes: Path, tmp_path: Path, running: Running
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    hive.watch_folders([docs])  # from another process, as `watch add` would: the worker picks it up
    wait_until(lambda: running.watcher.sessions >= 2, "a session over both folders")
    time.sleep(0.3)
    [memory] = hive.recent_memories()
    shutil.move(notes / "db.md", docs / "db.md")
    wait_until(lambda: [s.path for s in hive.source_spans(memory.id)] == [str(docs / "db.md")], "the move")
    assert not hive.get_memory(memory.id).deleted


def test_a_burst_of_saves_is_one_update_with_the_last_text(hive: Hive, notes: Path) -> None:
    running = Running(hive, debounce_ms=300)  # the node's debounce
    try:
        before = running.watcher.updates
        for n in range(30):
            (notes / "db.md").write_text(f"Draft number {n} of the staging notes.\n")
        wait_until(lambda: texts(hive) == {"Draft number 29 of the staging notes."}, "the last save")
        time.sleep(0.8)
        assert running.watcher.updates - before <= 3  # debounced: not one update per save
    finally:
        running.stop()


def test_changes_while_the_node_is_stopped_are_picked_up_at_start(hive: Hive, notes: Path) -> None:
    first = Running(hive)
    first.stop()
    [old] = hive.recent_memories()
    (notes / "db.md").unlink()
    (notes / "later.md").write_text("Written while no node ran.\n")
    second = Running(hive)
    try:
        assert texts(hive) == {"Written while no node ran."} and hive.get_memory(old.id).deleted
    finally:
        second.stop()


def test_a_folder_renamed_away_and_back_is_not_a_deletion_and_is_followed_again(
    hive: Hive, notes: Path, running: Running
) -> None:
    [memory] = hive.recent_memories()
    away = notes.with_name("unplugged")
    notes.rename(away)
    wait_until(lambda: hive.watched_folders()[0].missing, "the folder to be reported missing")
    assert not hive.get_memory(memory.id).deleted
    (away / "db.md").write_text("Edited while unplugged.\n")
    away.rename(notes)
    wait_until(lambda: not hive.watched_folders()[0].missing, "the folder to be back")
    wait_until(lambda: texts(hive) == {"Edited while unplugged."}, "the edit made while it was away")
    (notes / "db.md").write_text("Followed again after coming back.\n")
    wait_until(lambda: searchable(hive, "coming"), "an edit after it came back")


def test_a_gitignored_file_is_not_stored(hive: Hive, notes: Path, running: Running) -> None:
    (notes / ".gitignore").write_text("scratch.md\n")
    time.sleep(0.3)
    (notes / "scratch.md").write_text("Ignored scratch text.\n")
    (notes / "kept.md").write_text("Kept note text.\n")
    wait_until(lambda: searchable(hive, "Kept"), "the kept note")
    assert "Ignored scratch text." not in texts(hive)
    assert os.path.exists(notes / "scratch.md")


def test_the_node_runs_the_folder_and_settings_workers(hive: Hive) -> None:
    from hivemind_app.nodes.runtime import NodeRuntime

    settings = hive.settings.model_copy(
        update={
            "discovery": hive.settings.discovery.model_copy(update={"enabled": False}),
            "node": hive.settings.node.model_copy(update={"port": 0, "bind": "127.0.0.1"}),
        }
    )
    runtime = NodeRuntime(settings, roles=[])
    runtime.start()
    try:
        workers = runtime.supervisor.workers
        wait_until(lambda: workers["watch"].state == workers["settings-watch"].state == "running", "the workers")
    finally:
        runtime.stop()
    assert workers["watch"].crashes == workers["settings-watch"].crashes == 0


def test_the_file_watch_limit_is_reported_with_what_to_do_and_the_folders_are_still_reconciled(
    hive: Hive, notes: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """watchfiles is made to fail as it does when the system's watch limit is reached (the real limit is
    system-wide and cannot be reached safely in a test); the reconcile around it is real."""
    import watchfiles

    def at_the_limit(*_paths: object, **_options: object) -> Iterator[set[tuple[object, str]]]:
        raise OSError("OS file watch limit reached. about [\"/home\"]")
        yield set()

    monkeypatch.setattr(watchfiles, "watch", at_the_limit)
    waits: list[float] = []
    watcher = FolderWatcher(hive, lambda: False, waits.append)
    (notes / "new.md").write_text("A note written while no watch could be set.\n")
    with caplog.at_level("ERROR"):
        watcher.run()
        watcher.run()
    assert "A note written while no watch could be set." in texts(hive)
    assert sum("max_user_watches" in r.message for r in caplog.records) == 1 and waits and waits[0] >= 30
