"""The node id and the fingerprint of where the store was made (store/identity.py), on real store files."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from hivemind_app.store.database import Database


def open_db(path: Path) -> Database:
    return Database(path, node_name="laptop")


def test_a_store_reopened_where_it_was_made_keeps_its_id(tmp_path: Path) -> None:
    first = open_db(tmp_path / "hive.db")
    node_id = first.node_id
    first.close()
    again = open_db(tmp_path / "hive.db")
    assert again.node_id == node_id and again.identity.rekeyed_from is None
    again.close()


def test_a_copy_at_another_path_is_rekeyed_once_says_so_and_remembers_the_old_id(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "a").mkdir()
    original = open_db(tmp_path / "a" / "hive.db")
    old_id = original.node_id
    original.close()
    (tmp_path / "b").mkdir()
    shutil.copy2(tmp_path / "a" / "hive.db", tmp_path / "b" / "hive.db")

    with caplog.at_level(logging.WARNING, logger="hivemind_app.store.identity"):
        copy = open_db(tmp_path / "b" / "hive.db")
    assert copy.node_id != old_id and copy.identity.rekeyed_from == old_id
    assert "restored backup or a copy" in caplog.text and "Nothing was lost" in caplog.text
    with copy.read() as conn:
        previous = conn.execute("SELECT value FROM meta WHERE key = 'previous_node_ids'").fetchone()
    assert json.loads(previous[0]) == [old_id]
    new_id = copy.node_id
    copy.close()

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hivemind_app.store.identity"):
        reopened = open_db(tmp_path / "b" / "hive.db")
    assert reopened.node_id == new_id and not caplog.text  # once, not at every open
    reopened.close()


def test_a_store_from_before_fingerprints_adopts_the_place_it_is_in_and_keeps_its_id(tmp_path: Path) -> None:
    db = open_db(tmp_path / "hive.db")
    node_id = db.node_id
    with db.write() as conn:
        conn.execute("DELETE FROM meta WHERE key = 'node_fingerprint'")
    db.close()
    again = open_db(tmp_path / "hive.db")
    assert again.node_id == node_id and again.identity.rekeyed_from is None
    again.close()


def test_a_store_moved_to_another_machine_is_rekeyed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = open_db(tmp_path / "hive.db")
    node_id = db.node_id
    db.close()
    other_machine = tmp_path / "machine-id"
    other_machine.write_text("0123456789abcdef0123456789abcdef\n")
    monkeypatch.setattr("hivemind_app.store.identity.MACHINE_ID_FILES", (other_machine,))
    moved = open_db(tmp_path / "hive.db")
    assert moved.node_id != node_id and moved.identity.rekeyed_from == node_id
    moved.close()


def test_a_new_host_name_alone_does_not_rekey_the_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = open_db(tmp_path / "hive.db")
    node_id = db.node_id
    db.close()
    monkeypatch.setattr("socket.gethostname", lambda: "laptop-on-another-network")
    again = open_db(tmp_path / "hive.db")
    assert again.node_id == node_id and again.identity.rekeyed_from is None
    again.close()
