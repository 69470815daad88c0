"""Schema migrations: numbered `.sql` files applied in order, each in one transaction with its record.

The files live in `migrations/` at the repository root and are shipped inside the wheel as
`hivemind_app/migrations/`. A migration is never edited once released; a change is a new file.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import apsw

from hivemind_app.errors import MigrationError
from hivemind_app.store.db import maybe_one, write_transaction

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations_dir() -> Path:
    """Where the `.sql` files are: inside the installed package, or the source tree's root."""
    packaged = Path(str(resources.files("hivemind_app"))) / "migrations"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "migrations"


def available_migrations(directory: Path | None = None) -> list[Migration]:
    directory = directory or migrations_dir()
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(f"Migration file {path.name} is not named NNNN_name.sql.")
        found.append(Migration(int(match.group(1)), match.group(2), path.read_text(encoding="utf-8")))
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise MigrationError(f"Migrations in {directory} are not numbered 1..N without gaps: {versions}.")
    return found


def applied_versions(conn: apsw.Connection) -> list[int]:
    exists = maybe_one(conn, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'")
    if not exists:
        return []
    return [int(r[0]) for r in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]


def _recorded_names(conn: apsw.Connection) -> dict[int, str]:
    return {int(v): str(n) for v, n in conn.execute("SELECT version, name FROM schema_migrations")}


def migrate(conn: apsw.Connection, upto: int | None = None, directory: Path | None = None) -> list[str]:
    """Apply every migration not yet applied (up to `upto`); returns the names applied now."""
    migrations = available_migrations(directory)
    done_now: list[str] = []
    known = applied_versions(conn)
    if known and max(known) > len(migrations):
        raise MigrationError(
            f"The store has schema version {max(known)}, newer than this hivemind-app knows "
            f"({len(migrations)}); upgrade hivemind-app."
        )
    recorded = _recorded_names(conn) if known else {}
    for migration in migrations:
        name = recorded.get(migration.version)
        if name is not None and name != migration.name:
            raise MigrationError(
                f"The store records migration {migration.version} as {name!r}, but this hivemind-app's migration "
                f"{migration.version} is {migration.name!r}: the store was made by another build. Open it with "
                "the build that made it, or move it aside and start a new store (sync brings the hive back)."
            )
    for migration in migrations:
        if upto is not None and migration.version > upto:
            break
        if migration.version in known:
            continue
        with write_transaction(conn):
            # Another process may have applied it while we waited for the write lock.
            if migration.version in applied_versions(conn):
                continue
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
            )
            try:
                conn.execute(migration.sql)
            except apsw.Error as exc:
                raise MigrationError(
                    f"Migration {migration.version:04d}_{migration.name} failed: {exc}. The store is unchanged by it."
                ) from exc
            conn.execute(
                "INSERT INTO schema_migrations(version, name, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.name, time.time()),
            )
        done_now.append(f"{migration.version:04d}_{migration.name}")
    return done_now
