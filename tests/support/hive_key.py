"""A hive key file for tests: nodes given the same file are of one hive (they pass each other's handshake)."""

from __future__ import annotations

from pathlib import Path

from hivemind_app.trust.hivekey import HiveKey, save_key


def hive_key_file(directory: Path, key: HiveKey | None = None) -> Path:
    """`directory/hive.key` holding `key` (a new one when None), made once; the same path on later calls."""
    path = directory / "hive.key"
    if not path.exists():
        save_key(path, key or HiveKey.generate())
    return path
