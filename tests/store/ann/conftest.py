"""Fixtures: a store file path, and a store of 600 clustered notes (one "process")."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.store.ann.helpers import Store, clustered


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "hive.db"


@pytest.fixture
def store(path: Path) -> Iterator[Store]:
    s = Store(path)
    s.put([f"note {i}" for i in range(600)], clustered(600))
    yield s
    s.close()
