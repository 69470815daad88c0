"""The one writer of a memory's rows: `memories`, `memory_tags`, `memory_sources` and its vector in each
embedding space's vec0 table (`EmbeddingSpace.table`), with what every such write brings along: the ANN
change log (`ann.record_change`), the pending-vector flag in `meta`, and the outbox row for the hub.

Local writes (`MemoryStore.put_many`, `delete`, `set_vectors`) and sync applies (`Replica.apply_memory`) both
come through `MemoryRows`, always inside the caller's write transaction, so a memory is written the same way
whoever writes it:

- each tag and source carries the stamp of the newest store that added it; a label belongs to a live memory
  while that stamp is newer than the newest delete known (removed by a delete it is, and stays, whoever
  stores the memory again): tags and sources are add-only sets between deletes. An apply joins ours with the
  remote record's (each label at the newer of its two stamps), drops those not newer than the newest delete
  either side knows (the record's `born` or its own stamp if it is a tombstone, our own `born`, our
  tombstone's stamp), whichever of the two rows wins; where the result differs from the record ("merged")
  the memory goes out again at the stamp it has, never a newer one (a merge is no write: a newer stamp
  would bring back a memory deleted on a node whose delete has not reached us), and the hub's push script
  writes it over its copy of that same write; the join is the same in any order, so every node and the hub
  end with the same labels;
- a memory stored again after a delete begins a new life, born after that delete (`born`: the delete's
  stamp, which the row and the hub's record carry); an apply keeps the newest delete it knows as the row's
  `born`, so a label from before it is dropped wherever it turns up later (from a node that stored the
  memory again, or merged, without having seen the delete);
- a tombstone keeps the id and version (for sync) and drops the text, tags, sources and every vector;
- the time a memory describes (`occurred_at`) is the newest store's that gave one: a store again without one
  keeps it, locally and in an apply (a newer record without one, from a node that stored the text again or
  from before `occurred_at`, keeps ours); at an equal stamp the later time (`joined_occurred_at`); where an
  apply keeps a time the record lacks, the memory goes out again at the stamp it has, as for its project;
- a vector is stored only in a space whose model and dimension it has, and only when every value is finite;
  a memory left without one raises the pending-vector flag, so a backfill embeds it later;
- a vector a backfill attaches later is part of the write it embeds, not a newer one: the memory gets an
  outbox row at the stamp it has, so the hub takes the vector only where it holds that very write without
  one (`hub/scripts.py`), and a backfill never out-stamps a write (a delete) this node has not seen yet;
- `reembed`'s switch of the active space is a change like any other: every live memory gets a newer
  version and an outbox row, so the hub gets the new model's vectors;
- an apply whose record carries no vector this space can hold keeps ours (the id is the hash of the text,
  so our vector still fits it), so nodes on different models do not re-embed each other's writes forever;
- a write is stamped `(version, version_node)`: the version and the node that minted it; an apply takes a
  record only when its stamp is newer than ours (`store/versions.py`), so ties have one winner everywhere;
- a memory's project is never replaced by none, by a local store or an apply; between two projects the
  newer write's wins, at an equal stamp the greater name (`joined_project`); where an apply keeps a project
  the record lacks, the memory goes out again at the stamp it has, as for labels;
- an apply takes only a `RemoteMemory`, a record `hub/decode.py` validated: nothing loose from Redis.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import apsw
import numpy as np
import numpy.typing as npt

from hivemind_app.errors import StoreError
from hivemind_app.records.memories import NewMemory
from hivemind_app.store import ann
from hivemind_app.store.database import Database
from hivemind_app.store.db import all_rows, maybe_one
from hivemind_app.store.kinds import ApplyOutcome, RecordKind
from hivemind_app.store.models import EmbeddingSpace
from hivemind_app.store.remote import RemoteMemory
from hivemind_app.store.versions import Stamp, stamp_newer

Vector = npt.NDArray[np.float32]
Labels = dict[str, Stamp]
"""Tags (or sources, in order), each with the stamp of the newest store that added it."""
_PENDING_VECTORS = "pending_vectors"


@dataclass(frozen=True)
class PutResult:
    """What a local put did to the row: its rowid, whether it is new (or brought back), whether it has a vector."""

    rowid: int
    created: bool
    embedded: bool


# -- the pending-vector flag -----------------------------------------------------------------------------


def set_pending_vectors(conn: apsw.Connection, pending: bool) -> None:
    """Inside a write transaction: raise (a memory was stored without a vector) or drop (a backfill found none)."""
    conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (_PENDING_VECTORS, "1" if pending else "0"))


def may_have_pending_vectors(conn: apsw.Connection) -> bool:
    """False only when a backfill found nothing since the last memory stored without a vector."""
    row = maybe_one(conn, "SELECT value FROM meta WHERE key = ?", (_PENDING_VECTORS,))
    return row is None or row[0] != "0"


# -- vectors ----------------------------------------------------------------------------------------------


def vector_blob(vector: Vector, dim: int) -> bytes:
    """A vector as the vec0 tables store it (float32, little endian); refuses the wrong dimension."""
    array = np.asarray(vector, dtype="<f4").reshape(-1)
    if array.shape[0] != dim:
        raise StoreError(f"Vector has {array.shape[0]} dimensions; this embedding space has {dim}.")
    return array.tobytes()


def usable_vector(remote: RemoteMemory, space: EmbeddingSpace | None) -> bytes | None:
    """The pulled record's vector if `space` can hold it: the same model, its dimension, every value finite."""
    vector = remote.vector
    if (
        space is not None
        and vector
        and remote.model == space.model
        and len(vector) == 4 * space.dim
        and np.isfinite(np.frombuffer(vector, dtype="<f4")).all()
    ):
        return bytes(vector)
    return None


def _spaces(conn: apsw.Connection) -> list[EmbeddingSpace]:
    rows = all_rows(conn, "SELECT space_id, model, dim, active FROM embedding_spaces ORDER BY space_id")
    return [EmbeddingSpace(int(r[0]), str(r[1]), int(r[2]), bool(r[3])) for r in rows]


def has_vector(conn: apsw.Connection, space: EmbeddingSpace, rowid: int) -> bool:
    return maybe_one(conn, f"SELECT 1 FROM {space.table} WHERE rowid = ?", (rowid,)) is not None


def _vector_of(conn: apsw.Connection, space: EmbeddingSpace, rowid: int) -> bytes | None:
    found = maybe_one(conn, f"SELECT embedding FROM {space.table} WHERE rowid = ?", (rowid,))
    return None if found is None else bytes(found[0])


def _insert_vector(conn: apsw.Connection, space: EmbeddingSpace, rowid: int, blob: bytes) -> None:
    conn.execute(f"INSERT INTO {space.table}(rowid, embedding) VALUES (?, ?)", (rowid, blob))
    ann.record_change(conn, space.space_id, rowid, blob)


def _drop_vectors(conn: apsw.Connection, rowid: int) -> None:
    """The row's vector goes from every space (and from the ANN indexes, through the change log)."""
    for space in _spaces(conn):
        conn.execute(f"DELETE FROM {space.table} WHERE rowid = ?", (rowid,))
        ann.record_change(conn, space.space_id, rowid, None)


# -- tags and sources ------------------------------------------------------------------------------------


def _add_tags(conn: apsw.Connection, rowid: int, tags: Mapping[str, Stamp]) -> None:
    """Add tags, each at its stamp (a tag the row has already keeps the newer of the two stamps)."""
    for tag, (version, node) in tags.items():
        conn.execute(
            "INSERT INTO memory_tags(memory_rowid, tag, version, version_node) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(memory_rowid, tag) DO UPDATE SET version = excluded.version, "
            "version_node = excluded.version_node "
            "WHERE (excluded.version, excluded.version_node) > (memory_tags.version, memory_tags.version_node)",
            (rowid, tag, version, node),
        )


def _add_sources(conn: apsw.Connection, rowid: int, sources: Mapping[str, Stamp]) -> None:
    """Sources after those the row has, in order, each at its stamp (a source it has already keeps its place
    and the newer of the two stamps)."""
    for source, (version, node) in sources.items():
        conn.execute(
            "INSERT INTO memory_sources(memory_rowid, source, position, version, version_node) VALUES (?, ?, "
            "(SELECT count(*) FROM memory_sources WHERE memory_rowid = ?), ?, ?) "
            "ON CONFLICT(memory_rowid, source) DO UPDATE SET version = excluded.version, "
            "version_node = excluded.version_node "
            "WHERE (excluded.version, excluded.version_node) > (memory_sources.version, memory_sources.version_node)",
            (rowid, source, rowid, version, node),
        )


def joined_project(winner: str | None, other: str | None, same: bool) -> str | None:
    """A memory's project when two writes of it meet (an apply; `winner`: the newer write's). The rule:

    - a project is never replaced by none: a write without one (from outside any repository, or from a node
      from before projects) keeps the project the memory has;
    - between two projects, the newer write's (the same text stored in two projects belongs to the one that
      stored it last; locally the first store's stays, `put`, and goes out with the memory's next write);
    - at an equal stamp (the same write, which a node joined a project into), the greater name, so every node
      ends with the same one whichever it hears first.
    """
    if same and winner and other:
        return max(winner, other)
    return winner or other


def joined_occurred_at(winner: float | None, other: float | None, same: bool) -> float | None:
    """The time a memory describes when two writes of it meet (an apply; `winner`: the newer write's), by
    `joined_project`'s rule: never replaced by none (a store again without one, or a node from before
    `occurred_at`, keeps it), between two the newer write's, at an equal stamp the later time, so every node
    ends with the same one whichever it hears first."""
    if same and winner is not None and other is not None:
        return max(winner, other)
    return winner if winner is not None else other


def _occurred_at_of(conn: apsw.Connection, rowid: int) -> float | None:
    row = maybe_one(conn, "SELECT occurred_at FROM memories WHERE rowid = ?", (rowid,))
    return float(row[0]) if row is not None and row[0] is not None else None


def _project_of(conn: apsw.Connection, rowid: int) -> str | None:
    row = maybe_one(conn, "SELECT project FROM memories WHERE rowid = ?", (rowid,))
    return str(row[0]) if row is not None and row[0] else None


def labels_of(conn: apsw.Connection, rowid: int) -> tuple[Labels, Labels]:
    """The row's tags and its sources (in order), each with the stamp of the newest store that added it."""
    tags = {
        str(r[0]): (int(r[1]), str(r[2]))
        for r in all_rows(
            conn, "SELECT tag, version, version_node FROM memory_tags WHERE memory_rowid = ? ORDER BY tag", (rowid,)
        )
    }
    sources = {
        str(r[0]): (int(r[1]), str(r[2]))
        for r in all_rows(
            conn,
            "SELECT source, version, version_node FROM memory_sources WHERE memory_rowid = ? ORDER BY position",
            (rowid,),
        )
    }
    return tags, sources


def _join(first: Labels, second: Labels, after: Stamp) -> Labels:
    """Both label sets, each label at the newer of its stamps, in `first`'s order then `second`'s, less those
    not newer than `after` (the newest delete known: it removed them)."""
    out = dict(first)
    for label, stamp in second.items():
        if label not in out or stamp > out[label]:
            out[label] = stamp
    return {label: stamp for label, stamp in out.items() if stamp > after}


def _clear(conn: apsw.Connection, rowid: int) -> None:
    """Drop the row's tags, sources and vectors (a tombstone, or before an apply writes the remote's)."""
    conn.execute("DELETE FROM memory_tags WHERE memory_rowid = ?", (rowid,))
    conn.execute("DELETE FROM memory_sources WHERE memory_rowid = ?", (rowid,))
    _drop_vectors(conn, rowid)


# -- the writer --------------------------------------------------------------------------------------------


class MemoryRows:
    """Writes a memory's rows for this node (`db`: its name, clock and outbox). Every method runs inside the
    caller's write transaction (`conn`)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- local writes ----------------------------------------------------------------------------------

    def put(
        self, conn: apsw.Connection, item: NewMemory, vector: Vector | None, space: EmbeddingSpace | None, now: float
    ) -> PutResult:
        """Insert a memory, bring back a deleted one, or merge into the live one (a newer version, more tags
        and sources); store its vector in `space` unless it has one there already."""
        self.db.memory_writes += 1
        row = maybe_one(conn, "SELECT rowid, deleted, version, version_node FROM memories WHERE id = ?", (item.id,))
        version = self.db.next_version(conn)
        if row is None:
            conn.execute(
                "INSERT INTO memories(id, text, session_id, created_at, updated_at, origin_node, version, "
                "version_node, project, occurred_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    item.id,
                    item.text,
                    item.session_id,
                    now,
                    now,
                    self.db.node_name,
                    version,
                    self.db.node_id,
                    item.project,
                    item.occurred_at,
                ),
            )
            rowid, created = int(conn.last_insert_rowid()), True
        elif row[1]:  # a new life, born after the delete
            rowid, created = int(row[0]), True
            conn.execute(
                "UPDATE memories SET text = ?, session_id = ?, created_at = ?, updated_at = ?, "
                "origin_node = ?, version = ?, version_node = ?, deleted = 0, born_version = ?, born_node = ?, "
                "project = ?, occurred_at = ? WHERE rowid = ?",
                (
                    item.text,
                    item.session_id,
                    now,
                    now,
                    self.db.node_name,
                    version,
                    self.db.node_id,
                    row[2],
                    row[3],
                    item.project,
                    item.occurred_at,
                    rowid,
                ),
            )
        else:
            rowid, created = int(row[0]), False
            conn.execute(
                "UPDATE memories SET updated_at = ?, version = ?, version_node = ?, "
                "session_id = coalesce(session_id, ?), project = coalesce(project, ?), "
                "occurred_at = coalesce(?, occurred_at) WHERE rowid = ?",
                (now, version, self.db.node_id, item.session_id, item.project, item.occurred_at, rowid),
            )
        stamp = (version, self.db.node_id)
        _add_tags(conn, rowid, dict.fromkeys(item.tags, stamp))
        _add_sources(conn, rowid, dict.fromkeys(item.sources, stamp))
        embedded = False
        if space is not None:
            embedded = has_vector(conn, space, rowid)
            if not embedded and vector is not None:
                _insert_vector(conn, space, rowid, vector_blob(vector, space.dim))
                embedded = True
        if not embedded:
            set_pending_vectors(conn, True)
        self.db.enqueue(conn, RecordKind.MEMORY, item.id)
        return PutResult(rowid, created, embedded)

    def tombstone(self, conn: apsw.Connection, rowid: int, memory_id: str) -> None:
        """Delete a memory: its text, tags, sources and vectors go; its id and a new version stay for sync."""
        self.db.memory_writes += 1
        version = self.db.next_version(conn)
        conn.execute(
            "UPDATE memories SET deleted = 1, text = '', updated_at = ?, version = ?, version_node = ? WHERE rowid = ?",
            (time.time(), version, self.db.node_id, rowid),
        )
        _clear(conn, rowid)
        self.db.enqueue(conn, RecordKind.MEMORY, memory_id)

    def attach_vector(self, conn: apsw.Connection, space: EmbeddingSpace, rowid: int, vector: Vector) -> bool:
        """Give a memory its vector in `space` if it is still live and still lacks one there (a backfill).

        In the active space (the one the hub carries) the vector goes out with the write it embeds: an outbox
        row at the memory's own stamp, never a newer version (the row may be stale: a newer stamp would bring
        back a memory deleted on a node whose delete has not reached us). A vector for a space being built by
        `reembed` goes out when the space is switched to.
        """
        live = maybe_one(
            conn,
            f"SELECT m.id FROM memories m WHERE m.rowid = ? AND m.deleted = 0 "
            f"AND NOT EXISTS (SELECT 1 FROM {space.table} v WHERE v.rowid = m.rowid)",
            (rowid,),
        )
        if live:
            _insert_vector(conn, space, rowid, vector_blob(vector, space.dim))
            if space.active:
                self.db.enqueue(conn, RecordKind.MEMORY, str(live[0]))
        return live is not None

    def publish_all(self, conn: apsw.Connection) -> int:
        """Every live memory goes out again as a newer version (the active space changed: the hub's vectors
        are the old model's); returns how many."""
        rows = all_rows(conn, "SELECT rowid, id FROM memories WHERE deleted = 0 ORDER BY rowid")
        for rowid, memory_id in rows:
            self._publish(conn, int(rowid), str(memory_id))
        return len(rows)

    def _publish(self, conn: apsw.Connection, rowid: int, memory_id: str) -> None:
        conn.execute(
            "UPDATE memories SET version = ?, version_node = ? WHERE rowid = ?",
            (self.db.next_version(conn), self.db.node_id, rowid),
        )
        self.db.enqueue(conn, RecordKind.MEMORY, memory_id)

    @staticmethod
    def old_tombstones(conn: apsw.Connection, before: float) -> list[str]:
        """The ids of memories deleted before `before` (unix seconds) whose delete has been pushed (no outbox
        row): sync no longer needs them once every node had `tombstone_keep_s` to learn of the delete."""
        rows = all_rows(
            conn,
            "SELECT id FROM memories WHERE deleted = 1 AND updated_at < ? "
            "AND id NOT IN (SELECT key FROM outbox WHERE kind = ?)",
            (before, RecordKind.MEMORY.value),
        )
        return [str(r[0]) for r in rows]

    @staticmethod
    def forget_tombstones(conn: apsw.Connection, ids: list[str], before: float) -> int:
        """Drop these tombstones' rows if they are still tombstones from before `before`; returns how many.
        A tombstone has no text in the index, no tags, sources or vectors left."""
        conn.execute(
            "DELETE FROM memories WHERE deleted = 1 AND updated_at < ? AND id IN (SELECT value FROM json_each(?))",
            (before, json.dumps(ids)),
        )
        return int(conn.changes())

    # -- sync applies ----------------------------------------------------------------------------------

    def apply(
        self, conn: apsw.Connection, remote: RemoteMemory, space: EmbeddingSpace | None, force: bool = False
    ) -> ApplyOutcome:
        """Apply a memory pulled from the hub: its row if its stamp is newer than ours (`space`: the active one,
        for its vector; `force`: at an equal stamp too, when verify found the content differs), and its labels
        joined with ours whatever the stamps. Where the joined labels differ from the record's, the memory goes
        out again at the stamp it has (never a newer one: a merge must not out-stamp a delete this node has not
        seen), and the push script writes it over the hub's copy of that same write."""
        self.db.memory_writes += 1
        version = remote.version
        self.db.observe(conn, version)
        row = maybe_one(
            conn,
            "SELECT rowid, version, deleted, version_node, born_version, born_node FROM memories WHERE id = ?",
            (remote.id,),
        )
        mine = None if row is None else (int(row[1]), str(row[3]))
        theirs = (version, remote.node)
        live_here = row is not None and not row[2]
        # The newest delete either side knows of: the labels it removed are gone, whoever still holds them.
        newest_delete = max([remote.born, *([theirs] if remote.deleted else [])])
        if row is not None:
            newest_delete = max(newest_delete, (int(row[4]), str(row[5])), *([mine] if row[2] and mine else []))
        theirs_labels = ({}, {}) if remote.deleted else (remote.tag_stamps(), remote.source_stamps())
        if row is not None and mine is not None and not stamp_newer(theirs, mine) and not (force and theirs == mine):
            return self._join_into_ours(conn, row, remote, theirs_labels, newest_delete, same=theirs == mine)
        deleted = remote.deleted
        ours = labels_of(conn, int(row[0])) if row is not None and live_here and not deleted else ({}, {})
        blob = usable_vector(remote, space)
        if blob is None and space is not None and row is not None and live_here and not deleted:
            blob = _vector_of(conn, space, int(row[0]))  # same id, same text: our own vector still fits
        born = remote.born if deleted else newest_delete
        our_project = _project_of(conn, int(row[0])) if row is not None and live_here and not deleted else None
        our_time = _occurred_at_of(conn, int(row[0])) if row is not None and live_here and not deleted else None
        rowid = self._write_remote_row(conn, remote, version, born, None if row is None else int(row[0]))
        _clear(conn, rowid)
        if deleted:
            return ApplyOutcome.DELETED
        tags = _join(theirs_labels[0], ours[0], newest_delete)
        sources = _join(theirs_labels[1], ours[1], newest_delete)
        _add_tags(conn, rowid, tags)
        _add_sources(conn, rowid, sources)
        project = joined_project(remote.project, our_project, same=force and theirs == mine)
        if project != remote.project:
            conn.execute("UPDATE memories SET project = ? WHERE rowid = ?", (project, rowid))
        occurred_at = joined_occurred_at(remote.occurred_at, our_time, same=force and theirs == mine)
        if occurred_at != remote.occurred_at:
            conn.execute("UPDATE memories SET occurred_at = ? WHERE rowid = ?", (occurred_at, rowid))
        merged = (tags, sources) != theirs_labels or project != remote.project or occurred_at != remote.occurred_at
        if merged:  # ours added a label, or the record carried one a delete removed: the hub's copy lacks it
            self.db.enqueue(conn, RecordKind.MEMORY, remote.id)
        if blob is not None and space is not None:
            _insert_vector(conn, space, rowid, blob)
        else:
            # another model's vector (or none): this node embeds it with its own model later
            set_pending_vectors(conn, True)
        return ApplyOutcome.MERGED if merged else ApplyOutcome.APPLIED

    def _join_into_ours(
        self,
        conn: apsw.Connection,
        row: Sequence[Any],
        remote: RemoteMemory,
        theirs_labels: tuple[Labels, Labels],
        newest_delete: Stamp,
        same: bool,
    ) -> ApplyOutcome:
        """Our row is as new as the record or newer, so it stays; the record may still add labels (the same
        write merged elsewhere, or a concurrent store) or end some (a delete). `same`: the record is the same
        write as ours (an equal stamp), so the hub's copy of it lacks what ours has beyond it."""
        if row[2]:
            return ApplyOutcome.OLDER
        rowid = int(row[0])
        ours = labels_of(conn, rowid)
        # the same write: the hub's order of its sources first, as every node takes it (ours came first in ours)
        first, second = (theirs_labels, ours) if same else (ours, theirs_labels)
        tags = _join(first[0], second[0], newest_delete)
        sources = _join(first[1], second[1], newest_delete)
        born = (int(row[4]), str(row[5]))
        if newest_delete > born:
            conn.execute("UPDATE memories SET born_version = ?, born_node = ? WHERE rowid = ?", (*newest_delete, rowid))
        changed = tags != ours[0] or list(sources.items()) != list(ours[1].items())  # sources: in order
        if changed:
            conn.execute("DELETE FROM memory_tags WHERE memory_rowid = ?", (rowid,))
            conn.execute("DELETE FROM memory_sources WHERE memory_rowid = ?", (rowid,))
            _add_tags(conn, rowid, tags)
            _add_sources(conn, rowid, sources)
        our_project = _project_of(conn, rowid)
        project = joined_project(our_project, None if remote.deleted else remote.project, same=same)
        if project != our_project:
            conn.execute("UPDATE memories SET project = ? WHERE rowid = ?", (project, rowid))
            changed = True
        our_time = _occurred_at_of(conn, rowid)
        occurred_at = joined_occurred_at(our_time, None if remote.deleted else remote.occurred_at, same=same)
        if occurred_at != our_time:
            conn.execute("UPDATE memories SET occurred_at = ? WHERE rowid = ?", (occurred_at, rowid))
            changed = True
        lacking = (tags, sources) != theirs_labels or project != remote.project or occurred_at != remote.occurred_at
        if (changed and not same) or (same and lacking):  # what the hub has of our write lacks this
            self.db.enqueue(conn, RecordKind.MEMORY, remote.id)
        return ApplyOutcome.MERGED if changed else ApplyOutcome.OLDER

    @staticmethod
    def _write_remote_row(
        conn: apsw.Connection, remote: RemoteMemory, version: int, born: Stamp, rowid: int | None
    ) -> int:
        """The `memories` row as the remote record has it (a tombstone's text empty), born after `born`;
        returns its rowid."""
        values = (
            "" if remote.deleted else remote.text,
            remote.session_id or None,
            remote.timestamp,
            remote.updated_at,
            remote.origin,
            version,
            remote.node,
            1 if remote.deleted else 0,
            born[0],
            born[1],
            remote.project,
            remote.occurred_at,
        )
        if rowid is None:
            conn.execute(
                "INSERT INTO memories(text, session_id, created_at, updated_at, origin_node, version, version_node, "
                "deleted, born_version, born_node, project, occurred_at, id) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*values, remote.id),
            )
            return int(conn.last_insert_rowid())
        conn.execute(
            "UPDATE memories SET text = ?, session_id = ?, created_at = ?, updated_at = ?, origin_node = ?, "
            "version = ?, version_node = ?, deleted = ?, born_version = ?, born_node = ?, project = ?, occurred_at = ? "
            "WHERE rowid = ?",
            (*values, rowid),
        )
        return rowid
