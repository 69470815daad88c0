"""The sync vocabulary (`store/kinds.py`) agrees with the schema and with the Lua scripts that use it."""

from __future__ import annotations

import re
from pathlib import Path

from hivemind_app.hub import scripts
from hivemind_app.store.database import Database
from hivemind_app.store.kinds import ApplyOutcome, LearningPush, MemoryPush, RecordKind, SessionPush


def test_the_record_kinds_are_exactly_the_outbox_check_constraints_list(tmp_path: Path) -> None:
    db = Database(tmp_path / "hive.db", node_name="test")
    row = db.conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'outbox'").fetchone()
    db.close()
    assert row is not None
    check = re.search(r"kind\s+IN\s*\(([^)]*)\)", str(row[0]))
    assert check is not None
    allowed = [value.strip().strip("'") for value in check.group(1).split(",")]
    assert sorted(allowed) == sorted(kind.value for kind in RecordKind)


def test_stored_values_stay_the_plain_strings_and_numbers_they_were() -> None:
    assert [str(k) for k in RecordKind] == ["memory", "session", "learning", "toolcache"]
    assert {o.value for o in ApplyOutcome} == {"older", "applied", "merged", "deleted", "pending", "cleared"}
    assert ApplyOutcome("merged") == "merged" and RecordKind("memory") == "memory"
    assert [int(c) for c in MemoryPush] == [0, 1] and [int(c) for c in LearningPush] == [0, 1]
    assert [int(c) for c in SessionPush] == [1, 2, 3, 4]
    assert {o for o in ApplyOutcome if o.changed} == {ApplyOutcome.APPLIED, ApplyOutcome.MERGED, ApplyOutcome.DELETED}


def test_the_lua_scripts_use_the_registry_and_have_no_placeholder_left() -> None:
    for lua in (scripts.PUSH_MEMORY, scripts.PUSH_SESSION, scripts.PUSH_LEARNING):
        assert "$" not in lua
    assert f"'kind', '{RecordKind.MEMORY}'" in scripts.PUSH_MEMORY
    assert f"'kind', '{RecordKind.SESSION}'" in scripts.PUSH_SESSION
    assert f"return {{{SessionPush.LOST_CONFLICT.value}, cur, their_node}}" in scripts.PUSH_SESSION
    assert f"then return {{{SessionPush.COPY_CHANGED.value}}} end" in scripts.PUSH_SESSION
    assert f"return {MemoryPush.OLDER.value} end" in scripts.PUSH_MEMORY
