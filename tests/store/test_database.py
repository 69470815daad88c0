"""The node's clock (`Database.next_version`, `observe`): hybrid-logical-clock versions that never go back and
never overflow SQLite's 64-bit INTEGER, on a real store file."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hivemind_app.store.database import VERSION_CAP, Database, version_ceiling, wall_version


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(tmp_path / "hive.db", node_name="laptop")
    yield database
    database.close()


def set_clock(db: Database, version: int) -> None:
    with db.write() as conn:
        conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('hlc', ?)", (str(version),))


def test_a_clock_already_next_to_2_63_restarts_from_the_wall_clock_instead_of_overflowing(db: Database) -> None:
    set_clock(db, VERSION_CAP - 1)  # dragged there by a hub record before versions were bounded
    version = db.next_version_now()
    assert wall_version(time.time() - 60) < version <= wall_version(time.time() + 1)
    assert db.next_version_now() > version


def test_a_version_beyond_a_day_ahead_never_moves_the_clock(db: Database) -> None:
    with db.write() as conn:
        db.observe(conn, VERSION_CAP)
        db.observe(conn, wall_version(time.time() + 2 * 86400))
    assert db.next_version_now() < wall_version(time.time() + 60)


def test_a_version_from_a_clock_an_hour_ahead_moves_ours_past_it(db: Database) -> None:
    ahead = wall_version(time.time() + 3600)
    with db.write() as conn:
        db.observe(conn, ahead)
    assert db.next_version_now() == ahead + 1


def test_a_wall_clock_stepped_back_never_makes_versions_go_back(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    before = db.next_version_now()
    wall = time.time
    monkeypatch.setattr(time, "time", lambda: wall() - 2 * 86400)
    assert db.next_version_now() > before


def test_the_ceiling_is_a_day_ahead_and_leaves_room_below_the_largest_integer() -> None:
    now = time.time()
    assert version_ceiling(now) == wall_version(now + 86400)
    assert version_ceiling(1e12) < VERSION_CAP  # even a clock in the year 33658
