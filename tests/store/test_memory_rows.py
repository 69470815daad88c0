"""The one writer of a memory's rows (`MemoryRows`), on a real store file: local puts, tombstones, backfilled
vectors and sync applies, each inside the caller's write transaction."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hivemind_app.errors import StoreError
from hivemind_app.records.memories import NewMemory
from hivemind_app.store.database import Database, wall_version
from hivemind_app.store.kinds import ApplyOutcome
from hivemind_app.store.memory_rows import MemoryRows, PutResult, joined_project, may_have_pending_vectors
from hivemind_app.store.memory_store import MemoryStore
from hivemind_app.store.models import EmbeddingSpace
from hivemind_app.store.remote import RemoteMemory

DIM = 4
PACKAGE = Path(__file__).resolve().parents[2] / "hivemind_app"


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(tmp_path / "hive.db", node_name="laptop")
    yield database
    database.close()


@pytest.fixture
def space(db: Database) -> EmbeddingSpace:
    return MemoryStore(db).ensure_space("test-model", DIM)


@pytest.fixture
def rows(db: Database) -> MemoryRows:
    return MemoryRows(db)


def new(text: str, tags: tuple[str, ...] = (), sources: tuple[str, ...] = (), session: str | None = None) -> NewMemory:
    return NewMemory(hashlib.sha256(text.encode()).hexdigest(), text, tags, sources, session)


def vec(*values: float) -> np.ndarray[Any, np.dtype[np.float32]]:
    return np.array(values, dtype=np.float32)


def put(db: Database, rows: MemoryRows, item: NewMemory, vector: Any = None, space: Any = None) -> PutResult:
    with db.write() as conn:
        return rows.put(conn, item, vector, space, now=1000.0)


def row(db: Database, memory_id: str) -> dict[str, Any]:
    """Everything the writer owns for one memory, read back with plain SQL."""
    conn = db.conn
    r = conn.execute(
        "SELECT rowid, text, session_id, origin_node, version, deleted FROM memories WHERE id = ?", (memory_id,)
    ).fetchone()
    assert r is not None
    rowid = r[0]
    spaces = [
        EmbeddingSpace(int(s[0]), str(s[1]), int(s[2]), bool(s[3])).table
        for s in conn.execute("SELECT space_id, model, dim, active FROM embedding_spaces")
    ]
    return {
        "rowid": rowid,
        "text": r[1],
        "session_id": r[2],
        "origin": r[3],
        "version": r[4],
        "deleted": r[5],
        "tags": sorted(t for (t,) in conn.execute("SELECT tag FROM memory_tags WHERE memory_rowid = ?", (rowid,))),
        "sources": [
            s
            for (s,) in conn.execute(
                "SELECT source FROM memory_sources WHERE memory_rowid = ? ORDER BY position", (rowid,)
            )
        ],
        "vectors": sum(
            conn.execute(f"SELECT count(*) FROM {table} WHERE rowid = ?", (rowid,)).fetchone()[0] for table in spaces
        ),
    }


def outbox(db: Database) -> list[tuple[str, str]]:
    return [(str(k), str(v)) for k, v in db.conn.execute("SELECT kind, key FROM outbox ORDER BY seq")]


def remote(item: NewMemory, version: int, **fields: Any) -> RemoteMemory:
    """A memory as the hub's decoder hands it over from Redis."""
    record = RemoteMemory(
        id=item.id, version=version, text=item.text, deleted=False, timestamp=10.0, updated_at=11.0, origin="desktop"
    )
    return replace(record, **fields)


# A version from another node whose clock runs an hour ahead of ours: newer than anything minted here.
AHEAD = wall_version(time.time() + 3600)


def test_a_new_memory_gets_its_row_tags_sources_vector_and_outbox_row(
    db: Database, rows: MemoryRows, space: EmbeddingSpace
) -> None:
    item = new("staging listens on 5433", tags=("infra", "db"), sources=("notes.md", "chat"), session="s1")
    result = put(db, rows, item, vec(1, 0, 0, 0), space)
    assert result.created and result.embedded
    assert row(db, item.id) | {"rowid": 0, "version": 0} == {
        "rowid": 0,
        "text": "staging listens on 5433",
        "session_id": "s1",
        "origin": "laptop",
        "version": 0,
        "deleted": 0,
        "tags": ["db", "infra"],
        "sources": ["notes.md", "chat"],
        "vectors": 1,
    }
    assert outbox(db) == [("memory", item.id)]


def test_storing_the_same_text_again_adds_tags_and_sources_and_keeps_the_first_vector(
    db: Database, rows: MemoryRows, space: EmbeddingSpace
) -> None:
    first = new("one memory", tags=("a",), sources=("x",))
    put(db, rows, first, vec(1, 0, 0, 0), space)
    before = row(db, first.id)
    again_item = new("one memory", tags=("b", "a"), sources=("y", "x"), session="later")
    again = put(db, rows, again_item, vec(0, 1, 0, 0), space)
    after = row(db, first.id)
    assert not again.created and again.embedded and again.rowid == before["rowid"]
    assert after["tags"] == ["a", "b"] and after["sources"] == ["x", "y"]  # add-only, first source first
    assert after["session_id"] == "later"  # it had none: the first session given sticks
    assert after["version"] > before["version"]
    stored = db.conn.execute(f"SELECT embedding FROM {space.table} WHERE rowid = ?", (before["rowid"],)).fetchone()
    assert np.frombuffer(stored[0], dtype="<f4").tolist() == [1, 0, 0, 0]


def test_a_memory_without_a_vector_raises_the_pending_flag(
    db: Database, rows: MemoryRows, space: EmbeddingSpace
) -> None:
    put(db, rows, new("embedded"), vec(1, 0, 0, 0), space)
    with db.write() as conn:
        conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('pending_vectors', '0')")
    assert not may_have_pending_vectors(db.conn)
    result = put(db, rows, new("no vector yet"), None, space)
    assert not result.embedded and may_have_pending_vectors(db.conn)
    assert row(db, new("no vector yet").id)["vectors"] == 0


def test_a_vector_of_the_wrong_dimension_is_refused_and_nothing_is_written(
    db: Database, rows: MemoryRows, space: EmbeddingSpace
) -> None:
    with pytest.raises(StoreError, match="3 dimensions; this embedding space has 4"):
        put(db, rows, new("bad vector"), vec(1, 0, 0), space)
    assert db.conn.execute("SELECT count(*) FROM memories").fetchone()[0] == 0
    assert outbox(db) == []


def test_a_tombstone_keeps_id_and_a_newer_version_and_drops_everything_else(
    db: Database, rows: MemoryRows, space: EmbeddingSpace
) -> None:
    other = MemoryStore(db).ensure_space("other-model", DIM)
    item = new("to be deleted", tags=("t",), sources=("s",))
    result = put(db, rows, item, vec(1, 0, 0, 0), space)
    with db.write() as conn:
        assert rows.attach_vector(conn, other, result.rowid, vec(0, 0, 1, 0))
    before = row(db, item.id)
    assert before["vectors"] == 2
    with db.write() as conn:
        rows.tombstone(conn, result.rowid, item.id)
    after = row(db, item.id)
    assert after["deleted"] == 1 and after["text"] == ""
    assert after["tags"] == [] and after["sources"] == [] and after["vectors"] == 0
    assert after["version"] > before["version"]
    assert outbox(db) == [("memory", item.id)]  # one row a record: the push sends its current state
    brought_back = put(db, rows, item, vec(1, 0, 0, 0), space)
    assert brought_back.created and row(db, item.id)["text"] == "to be deleted"


def test_a_backfilled_vector_goes_only_to_a_live_memory_that_lacks_one(
    db: Database, rows: MemoryRows, space: EmbeddingSpace
) -> None:
    live = put(db, rows, new("live"), None, space)
    gone = put(db, rows, new("gone"), None, space)
    with db.write() as conn:
        rows.tombstone(conn, gone.rowid, new("gone").id)
    with db.write() as conn:
        assert rows.attach_vector(conn, space, live.rowid, vec(1, 0, 0, 0))
        assert not rows.attach_vector(conn, space, live.rowid, vec(0, 1, 0, 0))  # has one now
        assert not rows.attach_vector(conn, space, gone.rowid, vec(1, 0, 0, 0))
    assert row(db, new("live").id)["vectors"] == 1 and row(db, new("gone").id)["vectors"] == 0


def test_every_vector_change_is_logged_for_the_ann_index_once_it_exists(
    db: Database, rows: MemoryRows, space: EmbeddingSpace
) -> None:
    put(db, rows, new("before any index"), vec(1, 0, 0, 0), space)
    with db.write() as conn:
        conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('ann_log', '1')")
    result = put(db, rows, new("after"), vec(0, 1, 0, 0), space)
    with db.write() as conn:
        rows.tombstone(conn, result.rowid, new("after").id)
    logged = db.conn.execute("SELECT space_id, memory_rowid, vector IS NULL FROM vector_changes ORDER BY seq")
    assert [tuple(r) for r in logged] == [(space.space_id, result.rowid, 0), (space.space_id, result.rowid, 1)]


def test_a_pulled_memory_is_applied_with_its_vector_and_moves_the_clock(
    db: Database, rows: MemoryRows, space: EmbeddingSpace
) -> None:
    item = new("from the desktop")
    version = AHEAD
    record = remote(item, version, tags=("ops",), sources=("a.md",), vector=vec(0, 0, 0, 1).tobytes())
    with db.write() as conn:
        assert rows.apply(conn, replace(record, model="test-model"), space) is ApplyOutcome.APPLIED
    applied = row(db, item.id)
    assert applied["text"] == "from the desktop" and applied["origin"] == "desktop" and applied["version"] == version
    assert applied["tags"] == ["ops"] and applied["sources"] == ["a.md"] and applied["vectors"] == 1
    assert outbox(db) == []  # nothing of ours to publish
    with db.write() as conn:
        assert db.next_version(conn) > version
        assert rows.apply(conn, replace(record, model="test-model"), space) is ApplyOutcome.OLDER


def test_an_older_record_changes_nothing(db: Database, rows: MemoryRows, space: EmbeddingSpace) -> None:
    item = new("ours is newer")
    put(db, rows, item, vec(1, 0, 0, 0), space)
    before = row(db, item.id)
    with db.write() as conn:
        outcome = rows.apply(conn, remote(item, before["version"], text="stale", deleted=True), space)
    assert outcome is ApplyOutcome.OLDER and row(db, item.id) == before


def test_tags_and_sources_only_we_have_survive_an_apply_and_go_out_again_at_the_records_own_stamp(
    db: Database, rows: MemoryRows, space: EmbeddingSpace
) -> None:
    item = new("seen on both", tags=("ours",), sources=("mine.md",))
    put(db, rows, item, vec(1, 0, 0, 0), space)
    version = AHEAD
    record = remote(item, version, tags=("theirs",), sources=("theirs.md",), vector=vec(0, 1, 0, 0).tobytes())
    with db.write() as conn:
        assert rows.apply(conn, replace(record, model="test-model"), space) is ApplyOutcome.MERGED
    merged = row(db, item.id)
    assert merged["tags"] == ["ours", "theirs"] and merged["sources"] == ["theirs.md", "mine.md"]
    # the union goes out at the record's stamp: a newer one could out-stamp a delete this node has not seen
    assert merged["version"] == version
    assert outbox(db) == [("memory", item.id)]  # one row a record: the push sends its current state
    assert merged["vectors"] == 1


def test_a_pulled_tombstone_clears_text_tags_sources_and_vectors(
    db: Database, rows: MemoryRows, space: EmbeddingSpace
) -> None:
    item = new("deleted elsewhere", tags=("t",), sources=("s",))
    put(db, rows, item, vec(1, 0, 0, 0), space)
    with db.write() as conn:
        outcome = rows.apply(conn, remote(item, AHEAD, deleted=True, text="ignored"), space)
    gone = row(db, item.id)
    assert outcome is ApplyOutcome.DELETED
    assert gone["deleted"] == 1 and gone["text"] == "" and gone["tags"] == [] and gone["sources"] == []
    assert gone["vectors"] == 0 and outbox(db) == [("memory", item.id)]


@pytest.mark.parametrize(
    "vector, model",
    [
        (vec(1, 0, 0, 0).tobytes(), "another-model"),
        (vec(1, 0, 0).tobytes(), "test-model"),
        (vec(1, float("nan"), 0, 0).tobytes(), "test-model"),
        (b"", "test-model"),
    ],
    ids=["other model", "other dimension", "not finite", "none"],
)
def test_a_pulled_vector_this_space_cannot_hold_is_left_for_the_backfill(
    db: Database, rows: MemoryRows, space: EmbeddingSpace, vector: bytes, model: str
) -> None:
    with db.write() as conn:
        conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('pending_vectors', '0')")
        item = new("vector from elsewhere")
        assert rows.apply(conn, remote(item, AHEAD, vector=vector, model=model), space) is ApplyOutcome.APPLIED
    assert row(db, item.id)["vectors"] == 0 and may_have_pending_vectors(db.conn)


def test_no_module_names_a_vector_table_but_the_embedding_space() -> None:
    literal = re.compile(r"vec_space_")
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if literal.search(path.read_text(encoding="utf-8")) and path.relative_to(PACKAGE) != Path("store/models.py")
    ]
    assert offenders == []


def test_a_backfilled_vector_in_the_active_space_goes_out_to_the_hub_at_the_stamp_of_the_write_it_embeds(
    db: Database, rows: MemoryRows, space: EmbeddingSpace
) -> None:
    item = new("stored while the model was down")
    stored = put(db, rows, item, None, space)
    before = row(db, item.id)["version"]
    with db.write() as conn:
        conn.execute("DELETE FROM outbox")  # its first push went out without a vector
        assert rows.attach_vector(conn, space, stored.rowid, vec(1, 0, 0, 0))
    # a newer version would out-stamp a delete made elsewhere that has not reached this node yet
    assert outbox(db) == [("memory", item.id)] and row(db, item.id)["version"] == before


def test_a_vector_for_a_space_that_reembed_is_still_building_waits_for_the_switch(
    db: Database, rows: MemoryRows, space: EmbeddingSpace
) -> None:
    store = MemoryStore(db)
    stored = put(db, rows, new("embedded twice"), vec(1, 0, 0, 0), space)
    building = store.ensure_space("next-model", DIM)
    with db.write() as conn:
        conn.execute("DELETE FROM outbox")
        assert rows.attach_vector(conn, building, stored.rowid, vec(0, 1, 0, 0))
    assert outbox(db) == []
    before = row(db, new("embedded twice").id)["version"]
    store.activate_space(store.space_for("next-model"))  # type: ignore[arg-type]
    assert outbox(db) == [("memory", new("embedded twice").id)]
    assert row(db, new("embedded twice").id)["version"] > before


def test_an_apply_that_carries_no_vector_for_this_space_keeps_ours(
    db: Database, rows: MemoryRows, space: EmbeddingSpace
) -> None:
    item = new("embedded here by another model than theirs")
    put(db, rows, item, vec(1, 0, 0, 0), space)
    with db.write() as conn:
        conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('pending_vectors', '0')")
        theirs = remote(item, AHEAD, vector=vec(0, 1, 0, 0).tobytes(), model="another-model")
        assert rows.apply(conn, theirs, space) is ApplyOutcome.APPLIED
    assert row(db, item.id)["vectors"] == 1 and not may_have_pending_vectors(db.conn)
    found = db.conn.execute(f"SELECT embedding FROM {space.table}").fetchone()
    assert bytes(found[0]) == vec(1, 0, 0, 0).tobytes()  # ours, not re-embedded (nor pushed) again


def test_a_memory_stored_again_after_a_delete_is_born_after_that_delete(
    db: Database, rows: MemoryRows, space: EmbeddingSpace
) -> None:
    item = new("deleted, then stored again", tags=("old",))
    stored = put(db, rows, item, vec(1, 0, 0, 0), space)
    with db.write() as conn:
        rows.tombstone(conn, stored.rowid, item.id)
    deleted_at = row(db, item.id)["version"]
    put(db, rows, replace(item, tags=("new",)), vec(1, 0, 0, 0), space)
    born = db.conn.execute("SELECT born_version, born_node FROM memories WHERE id = ?", (item.id,)).fetchone()
    assert tuple(born) == (deleted_at, db.node_id) and row(db, item.id)["tags"] == ["new"]


def test_an_apply_of_a_record_born_after_a_delete_newer_than_our_copy_takes_its_tags_and_sources_alone(
    db: Database, rows: MemoryRows, space: EmbeddingSpace
) -> None:
    item = new("we missed the delete", tags=("removed-by-the-delete",), sources=("old.md",))
    put(db, rows, item, vec(1, 0, 0, 0), space)
    ours = row(db, item.id)["version"]
    with db.write() as conn:
        conn.execute("DELETE FROM outbox")
        record = remote(item, AHEAD, tags=("after",), sources=("new.md",), born=(ours + 1, "the-deleter"))
        assert rows.apply(conn, record, space) is ApplyOutcome.APPLIED
    after = row(db, item.id)
    assert after["tags"] == ["after"] and after["sources"] == ["new.md"] and outbox(db) == []


def test_an_apply_of_a_record_born_after_a_delete_older_than_our_copy_still_merges_our_labels(
    db: Database, rows: MemoryRows, space: EmbeddingSpace
) -> None:
    item = new("stored here after a delete long ago", tags=("ours",))
    put(db, rows, item, vec(1, 0, 0, 0), space)
    ours = row(db, item.id)["version"]
    with db.write() as conn:
        record = remote(item, AHEAD, tags=("theirs",), born=(ours - 1, "the-deleter"))
        assert rows.apply(conn, record, space) is ApplyOutcome.MERGED
    assert row(db, item.id)["tags"] == ["ours", "theirs"]


def test_a_record_older_than_ours_still_ends_the_labels_its_delete_removed_and_keeps_ours_added_since(
    db: Database, rows: MemoryRows, space: EmbeddingSpace
) -> None:
    item = new("tagged before and after a delete elsewhere", tags=("before",))
    put(db, rows, item, vec(1, 0, 0, 0), space)
    with db.write() as conn:
        deleted_at = db.next_version(conn)  # another node's delete, between our two stores
    put(db, rows, replace(item, tags=("after",)), vec(1, 0, 0, 0), space)
    ours = row(db, item.id)
    db.conn.execute("DELETE FROM outbox")
    with db.write() as conn:
        outcome = rows.apply(conn, remote(item, deleted_at, node="desktop", deleted=True, text=""), space)
    assert outcome is ApplyOutcome.MERGED
    kept = row(db, item.id)
    assert kept["tags"] == ["after"] and kept["version"] == ours["version"] and not kept["deleted"]
    assert outbox(db) == [("memory", item.id)]  # our write goes out again, at its own stamp, without 'before'


def test_the_same_write_holding_the_same_sources_in_another_order_takes_the_hubs_order(
    db: Database, rows: MemoryRows, space: EmbeddingSpace
) -> None:
    item = new("two sources, joined in either order", sources=("notes", "chat"))
    put(db, rows, item, vec(1, 0, 0, 0), space)
    ours = row(db, item.id)
    record = remote(item, ours["version"], node=db.node_id, sources=("chat", "notes"))
    with db.write() as conn:
        rows.apply(conn, record, space)
    assert row(db, item.id)["sources"] == ["chat", "notes"], "nodes would disagree on the order for ever"


@pytest.mark.parametrize(
    ("winner", "other", "same", "kept"),
    [
        (None, "github.com/me/alpha", False, "github.com/me/alpha"),  # a write without one never clears it
        ("github.com/me/beta", "github.com/me/alpha", False, "github.com/me/beta"),  # the newer write's
        ("github.com/me/alpha", "github.com/me/beta", True, "github.com/me/beta"),  # the same write: the greater
        ("github.com/me/beta", "github.com/me/alpha", True, "github.com/me/beta"),  # in either order
        (None, None, True, None),
    ],
)
def test_a_memorys_project_when_two_writes_meet_is_the_same_in_any_order(
    winner: str | None, other: str | None, same: bool, kept: str | None
) -> None:
    assert joined_project(winner, other, same) == kept


def test_at_an_equal_stamp_two_nodes_projects_end_as_the_greater_and_ours_goes_out_when_the_hub_lacks_it(
    db: Database, rows: MemoryRows
) -> None:
    item = replace(new("the CI runs on two cores"), project="github.com/me/beta")
    put(db, rows, item)
    version = int(row(db, item.id)["version"])
    db.conn.execute("DELETE FROM outbox")
    same_write = remote(item, version, node=db.node_id)
    with db.write() as conn:  # the hub's copy of our very write, with a greater project another node joined in
        assert rows.apply(conn, replace(same_write, project="github.com/me/gamma"), None) is ApplyOutcome.MERGED
    assert project_of(db, item.id) == "github.com/me/gamma" and outbox(db) == []  # the hub has it already
    with db.write() as conn:  # and a lesser one: ours stays, and goes out so the hub's copy gets it
        rows.apply(conn, replace(same_write, project="github.com/me/alpha"), None)
    assert project_of(db, item.id) == "github.com/me/gamma" and outbox(db) == [("memory", item.id)]


def project_of(db: Database, memory_id: str) -> str | None:
    found = db.conn.execute("SELECT project FROM memories WHERE id = ?", (memory_id,)).fetchone()
    return None if found is None else found[0]
