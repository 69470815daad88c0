"""The settings file and the adapters directory followed live with real watchfiles (no polling)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from hivemind_app.config import Settings
from hivemind_app.nodes.follow import SettingsFollower, follow, in_dir
from hivemind_app.nodes.supervisor import Supervisor
from tests.nodes.test_watcher import wait_until


@pytest.fixture
def following(isolated_env: Path) -> Iterator[tuple[Settings, SettingsFollower]]:
    settings = Settings()
    supervisor = Supervisor()
    follower = SettingsFollower(settings, lambda: supervisor.stopping, supervisor.wait, poll_s=0.2)
    supervisor.spawn("settings-watch", follower.run, 0.0)
    wait_until(lambda: supervisor.workers["settings-watch"].state == "running", "the follower")
    threading.Event().wait(0.3)  # watches in place
    yield settings, follower
    supervisor.stop()
    assert supervisor.workers["settings-watch"].crashes == 0


def config_file() -> Path:
    return Path(os.environ["HIVEMIND_CONFIG"])


def test_a_safe_setting_is_applied_to_the_running_node(following: tuple[Settings, SettingsFollower]) -> None:
    settings, follower = following
    config_file().write_text("[search]\nrrf_k = 30\n\n[importer]\nchunk_chars = 900\n")
    wait_until(lambda: settings.search.rrf_k == 30 and settings.importer.chunk_chars == 900, "the new settings")
    assert follower.applied == ["importer.chunk_chars", "search.rrf_k"] and follower.refused is None


def test_an_invalid_file_is_refused_with_the_reason_and_the_old_settings_stay(
    following: tuple[Settings, SettingsFollower],
) -> None:
    settings, follower = following
    config_file().write_text("[search]\nrrf_k = 30\n")
    wait_until(lambda: settings.search.rrf_k == 30, "the first change")
    config_file().write_text("[search]\nrrf_k = 0\n")
    wait_until(lambda: follower.refused is not None, "the refusal")
    assert "search.rrf_k" in (follower.refused or "") and settings.search.rrf_k == 30
    config_file().write_text("[search\nrrf_k = 5\n")
    wait_until(lambda: "not valid TOML" in (follower.refused or ""), "the TOML refusal")
    assert settings.search.rrf_k == 30


def test_a_setting_that_needs_a_restart_is_reported_not_applied(
    following: tuple[Settings, SettingsFollower],
) -> None:
    settings, follower = following
    port = settings.node.port
    config_file().write_text("[node]\nport = 9999\n\n[search]\nann_expansion_search = 64\nrrf_k = 40\n")
    wait_until(lambda: settings.search.rrf_k == 40, "the safe part")
    assert follower.needs_restart == ["node.port", "search.ann_expansion_search"]
    assert settings.node.port == port and settings.search.ann_expansion_search != 64


def test_a_new_adapter_file_is_seen_at_once_also_in_a_directory_made_later(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    seen: list[int] = []
    supervisor = Supervisor()
    supervisor.spawn(
        "adapter-watch",
        lambda: follow([data], in_dir(data / "adapters"), lambda: seen.append(1), lambda: supervisor.stopping),
        0.0,
    )
    try:
        threading.Event().wait(0.5)
        (data / "unrelated.txt").write_text("not an adapter")
        threading.Event().wait(0.8)
        assert seen == []  # other files in the data dir wake nothing
        (data / "adapters").mkdir()
        (data / "adapters" / "v1.gguf").write_bytes(b"GGUF")
        wait_until(lambda: len(seen) >= 1, "the new adapter", timeout_s=5.0)
    finally:
        supervisor.stop()


def test_a_settings_directory_made_later_is_followed_once_it_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HIVEMIND_CONFIG", str(tmp_path / "later" / "config.toml"))
    settings = Settings()
    supervisor = Supervisor()
    follower = SettingsFollower(settings, lambda: supervisor.stopping, supervisor.wait, poll_s=0.2)
    supervisor.spawn("settings-watch", follower.run, 0.0)
    try:
        threading.Event().wait(0.3)
        (tmp_path / "later").mkdir()
        (tmp_path / "later" / "config.toml").write_text("[search]\nrrf_k = 7\n")
        wait_until(lambda: settings.search.rrf_k == 7, "the file in the new directory", timeout_s=5.0)
    finally:
        supervisor.stop()


def test_an_empty_settings_file_is_a_save_in_progress_and_changes_nothing(
    following: tuple[Settings, SettingsFollower],
) -> None:
    settings, follower = following
    config_file().write_text("[search]\nrrf_k = 30\n")
    wait_until(lambda: settings.search.rrf_k == 30, "the first change")
    checks = follower.checks
    config_file().write_text("")  # an editor that truncates, then writes
    wait_until(lambda: follower.checks > checks and follower.ignored is not None, "the empty file to be seen")
    assert "empty" in (follower.ignored or "") and settings.search.rrf_k == 30 and follower.refused is None
    config_file().write_text("[search]\nrrf_k = 40\n")
    wait_until(lambda: settings.search.rrf_k == 40, "the finished save")
    assert follower.ignored is None
