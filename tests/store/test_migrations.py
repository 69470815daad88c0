from __future__ import annotations

import stat
from pathlib import Path

import apsw
import pytest

from hivemind_app.errors import MigrationError
from hivemind_app.store.database import Database
from hivemind_app.store.db import connect
from hivemind_app.store.migrations import applied_versions, available_migrations, migrate


def names_after(version: int) -> list[str]:
    return [f"{m.version:04d}_{m.name}" for m in available_migrations() if m.version > version]


def test_an_empty_file_gets_every_migration_in_order(tmp_path: Path) -> None:
    db = Database(tmp_path / "hive.db", node_name="n")
    versions = [m.version for m in available_migrations()]
    assert versions == list(range(1, len(versions) + 1))
    assert applied_versions(db.conn) == versions
    assert db.applied_now == [f"{m.version:04d}_{m.name}" for m in available_migrations()]
    db.close()


def test_the_database_file_is_private_to_its_owner(tmp_path: Path) -> None:
    db = Database(tmp_path / "sub" / "hive.db", node_name="n")
    assert stat.S_IMODE((tmp_path / "sub" / "hive.db").stat().st_mode) == 0o600
    db.close()


def test_a_store_from_the_previous_schema_is_upgraded_and_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = connect(path, 1000)
    migrate(conn, upto=1)
    conn.execute(
        "INSERT INTO memories(id, text, created_at, updated_at, origin_node, version) "
        "VALUES ('abc1', 'kept across upgrades', 1, 1, 'old', 1)"
    )
    conn.close()

    db = Database(path, node_name="n")
    assert db.applied_now == names_after(1)
    rows = db.conn.execute("SELECT text FROM memories").fetchall()
    assert rows == [("kept across upgrades",)]
    # the keyword index was filled by the old schema's trigger and still answers
    assert db.conn.execute("SELECT rowid FROM memories_fts WHERE memories_fts MATCH 'upgrades'").fetchall()
    db.close()


def test_sessions_from_the_schema_before_summaries_survive_the_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    conn = connect(path, 1000)
    migrate(conn, upto=2)
    conn.execute(
        "INSERT INTO sessions(session_id, context, files, current_task, updated_at, version, closed_at) "
        "VALUES ('s1', '{}', '[\"a.py\"]', 'ship it', 1, 1, 2)"
    )
    conn.close()
    db = Database(path, node_name="n")
    assert db.applied_now == names_after(2)
    assert db.conn.execute("SELECT current_task, summarised_at FROM sessions").fetchall() == [("ship it", None)]
    db.close()


def test_opening_twice_applies_nothing_the_second_time(tmp_path: Path) -> None:
    Database(tmp_path / "hive.db", node_name="n").close()
    again = Database(tmp_path / "hive.db", node_name="n")
    assert again.applied_now == []
    again.close()


def test_a_failing_migration_leaves_no_half_applied_schema(tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "0001_good.sql").write_text("CREATE TABLE a (x);")
    (migrations / "0002_bad.sql").write_text("CREATE TABLE b (x); CREATE TABLE a (x);")
    conn = connect(tmp_path / "hive.db", 1000)
    with pytest.raises(MigrationError, match="0002_bad failed"):
        migrate(conn, directory=migrations)
    assert applied_versions(conn) == [1]
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "b" not in tables


def test_a_store_newer_than_this_program_is_refused(tmp_path: Path) -> None:
    conn = connect(tmp_path / "hive.db", 1000)
    migrate(conn)
    conn.execute("INSERT INTO schema_migrations VALUES (99, 'future', 0)")
    with pytest.raises(MigrationError, match="upgrade hivemind-app"):
        migrate(conn)


def test_a_store_whose_migration_of_a_number_has_another_name_is_refused_before_anything_is_applied(
    tmp_path: Path,
) -> None:
    # e.g. a store made by a development build whose migration 12 was another change than this build's 12
    conn = connect(tmp_path / "hive.db", 1000)
    migrate(conn, upto=11)
    conn.execute("UPDATE schema_migrations SET name = 'something_else' WHERE version = 11")
    with pytest.raises(MigrationError, match="records migration 11 as 'something_else'"):
        migrate(conn)
    assert max(applied_versions(conn)) == 11  # nothing applied on top of it


def test_sqlite_vec_is_loaded_into_every_connection(tmp_path: Path) -> None:
    conn = connect(tmp_path / "hive.db", 1000)
    assert conn.execute("SELECT vec_version()").fetchone()[0].startswith("v0.1")
    assert isinstance(conn, apsw.Connection)


def test_a_store_from_before_the_quarantine_gets_an_empty_one(tmp_path: Path) -> None:
    path = tmp_path / "v6.db"
    conn = connect(path, 1000)
    migrate(conn, upto=6)
    conn.close()
    db = Database(path, node_name="n")
    assert db.applied_now == names_after(6)
    columns = [r[1] for r in db.conn.execute("PRAGMA table_info(quarantine)")]
    assert columns == ["key", "raw", "reason", "quarantined_at", "seen"]
    assert db.conn.execute("SELECT count(*) FROM quarantine").fetchone()[0] == 0
    db.close()


def test_an_outbox_with_a_record_queued_twice_keeps_only_its_newest_row_after_the_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "v9.db"
    conn = connect(path, 1000)
    migrate(conn, upto=9)
    conn.execute(
        "INSERT INTO outbox(seq, kind, key, created_at) VALUES "
        "(1, 'memory', 'm1', 1), (2, 'session', 's1', 1), (3, 'memory', 'm1', 2), (4, 'learning', '7', 2)"
    )
    conn.close()

    db = Database(path, node_name="n")
    assert db.conn.execute("SELECT seq, kind, key FROM outbox ORDER BY seq").fetchall() == [
        (2, "session", "s1"),
        (3, "memory", "m1"),
        (4, "learning", "7"),
    ]
    db.close()


def test_rows_from_before_stamps_carry_no_version_node(tmp_path: Path) -> None:
    path = tmp_path / "v8.db"
    conn = connect(path, 1000)
    migrate(conn, upto=8)
    conn.execute(
        "INSERT INTO memories(id, text, created_at, updated_at, origin_node, version) "
        "VALUES ('abc1', 'from before stamps', 1, 1, 'old', 5)"
    )
    conn.close()

    db = Database(path, node_name="n")
    assert db.conn.execute("SELECT version, version_node FROM memories").fetchall() == [(5, "")]
    db.close()


def test_memories_from_before_lives_are_in_their_first_life(tmp_path: Path) -> None:
    path = tmp_path / "v10.db"
    conn = connect(path, 1000)
    migrate(conn, upto=10)
    conn.execute(
        "INSERT INTO memories(id, text, created_at, updated_at, origin_node, version, version_node) "
        "VALUES ('abc1', 'from before lives', 1, 1, 'old', 5, 'n1')"
    )
    conn.close()

    db = Database(path, node_name="n")
    assert db.conn.execute("SELECT born_version, born_node FROM memories").fetchall() == [(0, "")]
    db.close()


def test_a_session_whose_base_is_its_own_edit_gets_that_edits_node_as_its_base_node(tmp_path: Path) -> None:
    path = tmp_path / "v11.db"
    conn = connect(path, 1000)
    migrate(conn, upto=11)
    for session_id, version, synced in (("synced", 7, 7), ("edited-since", 9, 7), ("never-synced", 5, None)):
        conn.execute(
            "INSERT INTO sessions(session_id, context, files, current_task, updated_at, version, synced_version, "
            "version_node) VALUES (?, '{}', '[]', '', 1, ?, ?, 'n1')",
            (session_id, version, synced),
        )
    conn.close()

    db = Database(path, node_name="n")
    rows = db.conn.execute("SELECT session_id, synced_node FROM sessions ORDER BY session_id").fetchall()
    assert rows == [("edited-since", ""), ("never-synced", ""), ("synced", "n1")]
    db.close()


def test_tags_and_sources_from_before_label_stamps_take_the_stamp_of_their_memorys_row(tmp_path: Path) -> None:
    path = tmp_path / "v12.db"
    conn = connect(path, 1000)
    migrate(conn, upto=12)
    conn.execute(
        "INSERT INTO memories(id, text, created_at, updated_at, origin_node, version, version_node) "
        "VALUES ('abc1', 'from before label stamps', 1, 1, 'old', 5, 'n1')"
    )
    conn.execute("INSERT INTO memory_tags(memory_rowid, tag) SELECT rowid, 'ops' FROM memories")
    conn.execute("INSERT INTO memory_sources(memory_rowid, source, position) SELECT rowid, 'notes', 0 FROM memories")
    conn.close()

    db = Database(path, node_name="n")
    assert db.conn.execute("SELECT tag, version, version_node FROM memory_tags").fetchall() == [("ops", 5, "n1")]
    assert db.conn.execute("SELECT source, version, version_node FROM memory_sources").fetchall() == [
        ("notes", 5, "n1")
    ]
    db.close()


def test_memories_from_before_occurred_at_describe_no_time_and_a_time_filter_reads_the_new_index(
    tmp_path: Path,
) -> None:
    from hivemind_app.records.memories import SearchFilters
    from hivemind_app.store.search import filter_candidates, when_sql

    path = tmp_path / "v15.db"
    conn = connect(path, 1000)
    migrate(conn, upto=15)
    conn.execute(
        "INSERT INTO memories(id, text, created_at, updated_at, origin_node, version, version_node) "
        "VALUES ('abc1', 'from before occurred_at', 100, 100, 'old', 5, 'n1')"
    )
    conn.close()

    db = Database(path, node_name="n")
    assert db.conn.execute("SELECT occurred_at FROM memories").fetchall() == [(None,)]
    assert filter_candidates(db.conn, SearchFilters(since=50, until=150), 10) == [1]  # its stored time
    plan = " ".join(
        str(row[-1])
        for row in db.conn.execute(
            f"EXPLAIN QUERY PLAN SELECT rowid FROM memories WHERE deleted = 0 AND {when_sql('')} >= 1 "
            f"AND {when_sql('')} < 2"
        )
    )
    assert "memories_when" in plan
    db.close()
