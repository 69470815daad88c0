"""Sessions in the local store (`LocalState`): a cleared session is a tombstone no reader returns, keeping
the versions sync needs, on a real store file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hivemind_app.errors import NotFoundError
from hivemind_app.store.database import Database
from hivemind_app.store.local_state import LocalState
from hivemind_app.store.remote import RemoteSession
from hivemind_app.store.replica import Replica


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(tmp_path / "hive.db", node_name="laptop")
    yield database
    database.close()


def test_a_cleared_session_is_gone_for_readers_but_keeps_its_new_version_and_its_base(db: Database) -> None:
    local, replica = LocalState(db), Replica(db)
    written = local.update_session("s1", context={"k": "v"}, files=["a.py"], current_task="t", closed=True)
    with db.write() as conn:
        replica.mark_session_synced(conn, "s1", written.version, db.node_id)
    local.clear_session("s1")
    assert local.get_session("s1") is None and local.list_sessions() == []
    assert local.sessions_to_summarise(idle_s=0) == []
    pushed = replica.session_fields("s1")
    assert pushed is not None and pushed["state"] is None
    assert pushed["version"] > written.version and pushed["synced_version"] == written.version
    assert pushed["synced_node"] == db.node_id
    with pytest.raises(NotFoundError):
        local.clear_session("s1")


def test_a_session_written_again_after_a_clear_starts_empty_from_the_clears_base(db: Database) -> None:
    local, replica = LocalState(db), Replica(db)
    first = local.update_session("s1", context={"old": 1}, files=["old.py"], current_task="old")
    with db.write() as conn:
        replica.mark_session_synced(conn, "s1", first.version, db.node_id)
    local.clear_session("s1")
    again = local.update_session("s1", current_task="new")
    assert again.context == {} and again.files == () and again.current_task == "new"
    pushed = replica.session_fields("s1")
    assert pushed is not None and (pushed["synced_version"], pushed["synced_node"]) == (first.version, db.node_id)


def test_a_clear_pulled_from_the_hub_leaves_a_tombstone_at_the_hubs_version(db: Database) -> None:
    local, replica = LocalState(db), Replica(db)
    local.update_session("s1", current_task="here")
    with db.write() as conn:
        conn.execute("DELETE FROM outbox")
        hub_version = db.next_version(conn) + 10
        replica.apply_session(conn, "s1", RemoteSession(hub_version, None, "other"))
        replica.apply_session(conn, "never-seen", RemoteSession(hub_version, None, "other"))
    assert local.get_session("s1") is None and local.get_session("never-seen") is None
    tombstone = {
        "version": hub_version,
        "synced_version": hub_version,
        "synced_node": "other",
        "state": None,
        "node": "other",
    }
    assert replica.session_fields("s1") == replica.session_fields("never-seen") == tombstone
