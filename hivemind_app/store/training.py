"""The learning loop's local state: the trainer's example pool, the local learning-queue cursor, rounds,
and the adapter registry of a node with no hub (files in the data directory, rows in SQLite)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from hivemind_app.errors import AdapterError
from hivemind_app.records.learning import AdapterInfo, QueueBatch, ToolUse
from hivemind_app.store.adapter_files import check_adapter_bytes, sha256_file
from hivemind_app.store.database import Database
from hivemind_app.store.db import all_rows, maybe_one

_CURSOR = "learning_cursor"
_ACTIVE = "active_adapter"


class TrainingState:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- small values: cursor, active adapter, schedule ------------------------------------------------

    def get(self, key: str) -> str | None:
        with self.db.read() as conn:
            row = maybe_one(conn, "SELECT value FROM training_state WHERE key = ?", (key,))
        return None if row is None else str(row[0])

    def put(self, key: str, value: str | None) -> None:
        with self.db.write() as conn:
            if value is None:
                conn.execute("DELETE FROM training_state WHERE key = ?", (key,))
            else:
                conn.execute("INSERT OR REPLACE INTO training_state(key, value) VALUES (?, ?)", (key, value))

    # -- the example pool ------------------------------------------------------------------------------

    def pool_keys(self) -> set[str]:
        with self.db.read() as conn:
            return {str(r[0]) for r in all_rows(conn, "SELECT example_key FROM training_examples")}

    def pool_size(self) -> int:
        with self.db.read() as conn:
            row = maybe_one(conn, "SELECT count(*) FROM training_examples")
        return int(row[0]) if row else 0

    def add_examples(self, uses: list[ToolUse], keep: int) -> None:
        """Add `uses` to the pool, then drop the oldest beyond `keep`."""
        now = time.time()
        with self.db.write() as conn:
            for offset, use in enumerate(uses):
                conn.execute(
                    "INSERT OR IGNORE INTO training_examples(example_key, body, added_at) VALUES (?, ?, ?)",
                    (use.key, json.dumps(use.to_dict()), now + offset * 1e-6),
                )
            conn.execute(
                "DELETE FROM training_examples WHERE example_key NOT IN "
                "(SELECT example_key FROM training_examples ORDER BY added_at DESC LIMIT ?)",
                (keep,),
            )

    def recent_examples(self, limit: int) -> list[ToolUse]:
        with self.db.read() as conn:
            rows = all_rows(conn, "SELECT body FROM training_examples ORDER BY added_at DESC LIMIT ?", (limit,))
        return [ToolUse.from_dict(json.loads(str(r[0]))) for r in rows]

    # -- rounds ------------------------------------------------------------------------------------------

    def record_round(self, report: dict[str, Any]) -> None:
        with self.db.write() as conn:
            conn.execute(
                "INSERT INTO training_rounds(finished_at, report) VALUES (?, ?)",
                (float(report.get("finished_at", time.time())), json.dumps(report)),
            )

    def rounds(self, limit: int = 50) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            rows = all_rows(conn, "SELECT report FROM training_rounds ORDER BY round_id DESC LIMIT ?", (limit,))
        return [json.loads(str(r[0])) for r in rows]


class LocalLearningQueue:
    """The local `learning_queue` table read from a cursor: the source when no hub is configured."""

    name = "local"

    def __init__(self, db: Database, state: TrainingState) -> None:
        self.db = db
        self.state = state

    def _cursor(self) -> int:
        return int(self.state.get(_CURSOR) or 0)

    def take(self, limit: int) -> QueueBatch:
        with self.db.read() as conn:
            rows = all_rows(
                conn,
                "SELECT entry_id, user_query, tool_used, tool_input, result, success, timestamp "
                "FROM learning_queue WHERE entry_id > ? ORDER BY entry_id LIMIT ?",
                (self._cursor(), limit),
            )
        entries = [
            {
                "user_query": r[1],
                "tool_used": r[2],
                "tool_input": r[3],
                "result": r[4],
                "success": bool(r[5]),
                "timestamp": r[6],
            }
            for r in rows
        ]
        return QueueBatch(entries, [str(r[0]) for r in rows])

    def ack(self, batch: QueueBatch) -> None:
        if batch.ids:
            self.state.put(_CURSOR, str(max(self._cursor(), *(int(i) for i in batch.ids))))

    def backlog(self) -> int:
        with self.db.read() as conn:
            row = maybe_one(conn, "SELECT count(*) FROM learning_queue WHERE entry_id > ?", (self._cursor(),))
        return int(row[0]) if row else 0


class LocalAdapterRegistry:
    """Adapters as files in `<data dir>/adapters`, their metadata in SQLite, the active one in training_state."""

    def __init__(self, db: Database, state: TrainingState, directory: Path) -> None:
        self.db = db
        self.state = state
        self.directory = directory

    def _info(self, row: Any, active: int | None) -> AdapterInfo:
        version = int(row[0])
        return AdapterInfo(
            version=version,
            sha256=str(row[1]),
            size=int(row[2]),
            base_model=str(row[3]),
            metrics=json.loads(str(row[4])),
            created_at=float(row[5]),
            node=str(row[6]),
            active=version == active,
        )

    def _active_version(self) -> int | None:
        value = self.state.get(_ACTIVE)
        return int(value) if value else None

    def _file(self, version: int) -> Path:
        return self.directory / f"adapter-v{version}.gguf"

    def publish(self, path: Path, base_model: str, metrics: dict[str, Any], node: str) -> AdapterInfo:
        self.directory.mkdir(parents=True, exist_ok=True)
        digest, size, now = sha256_file(path), path.stat().st_size, time.time()
        with self.db.write() as conn:
            row = maybe_one(conn, "SELECT coalesce(max(version), 0) + 1 FROM adapters")
            version = int(row[0]) if row else 1
            partial = self._file(version).with_suffix(".part")
            shutil.copyfile(path, partial)
            partial.replace(self._file(version))
            conn.execute(
                "INSERT INTO adapters(version, sha256, size, base_model, metrics, created_at, node) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (version, digest, size, base_model, json.dumps(metrics), now, node),
            )
        return AdapterInfo(version, digest, size, base_model, now, node, metrics)

    def activate(self, version: int | None) -> AdapterInfo | None:
        if version is None:
            self.state.put(_ACTIVE, None)
            return None
        known = {a.version: a for a in self.adapters()}
        if version not in known:
            raise AdapterError(f"No adapter v{version}; `hivemind-app adapters` lists the published ones.")
        self.state.put(_ACTIVE, str(version))
        return AdapterInfo(**{**known[version].to_dict(), "active": True})

    def active(self) -> AdapterInfo | None:
        version = self._active_version()
        return next((a for a in self.adapters() if a.version == version), None) if version else None

    def adapters(self) -> list[AdapterInfo]:
        active = self._active_version()
        with self.db.read() as conn:
            rows = all_rows(
                conn,
                "SELECT version, sha256, size, base_model, metrics, created_at, node FROM adapters ORDER BY version",
            )
        return [self._info(r, active) for r in rows]

    def fetch(self, version: int) -> Path:
        info = next((a for a in self.adapters() if a.version == version), None)
        if info is None:
            raise AdapterError(f"No adapter v{version}; `hivemind-app adapters` lists the published ones.")
        source = self._file(version)
        try:
            data = source.read_bytes()
        except OSError as exc:
            raise AdapterError(f"Adapter v{version}'s file {source} cannot be read: {exc}") from exc
        check_adapter_bytes(data, info.sha256, version)
        return source

    def record_round(self, report: dict[str, Any]) -> None:
        self.state.record_round(report)

    def rounds(self, limit: int = 50) -> list[dict[str, Any]]:
        return self.state.rounds(limit)
