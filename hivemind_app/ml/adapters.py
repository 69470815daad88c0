"""The adapter registry interface the trainer and infer nodes share.

Two registries implement it: the local one (SQLite + files in the data directory, `store/training.py`; the
embedded default, where the trainer and the infer worker share one machine) and the hub's (Redis,
`hub/adapters.py`, so every node sees the same versions). Either way an adapter (`records.learning.AdapterInfo`)
is immutable once published, identified by an increasing version, and checked against its sha256 before
llama.cpp is given the file (`store/adapter_files.py`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from hivemind_app.records.learning import AdapterInfo


class AdapterRegistry(Protocol):
    def publish(self, path: Path, base_model: str, metrics: dict[str, Any], node: str) -> AdapterInfo: ...

    def activate(self, version: int | None) -> AdapterInfo | None: ...

    def active(self) -> AdapterInfo | None: ...

    def adapters(self) -> list[AdapterInfo]: ...

    def fetch(self, version: int) -> Path: ...

    def record_round(self, report: dict[str, Any]) -> None: ...

    def rounds(self, limit: int = 50) -> list[dict[str, Any]]: ...
