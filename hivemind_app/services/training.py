"""Training rounds and the adapters they publish, as front ends ask for them (through `Hive`).

The loop itself (which queue, which registry, the trainer) is `learning.LearningLoop`; this service adds the
checks on what callers pass and the hub's part: a round first pushes this node's queue to the hive.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from hivemind_app.errors import InvalidInputError
from hivemind_app.ml.trainer import RoundProgress
from hivemind_app.records.learning import AdapterInfo
from hivemind_app.services.learning_loop import LearningLoop
from hivemind_app.services.sync import SyncService

MAX_HISTORY = 500


class TrainingService:
    def __init__(self, loop: LearningLoop, sync: SyncService) -> None:
        self.loop = loop
        self.sync = sync

    def train_round(
        self,
        major: bool = False,
        progress: Callable[[RoundProgress], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> dict[str, Any]:
        """One training round now, whatever the schedule says; returns its report (verdict, metrics, version)."""
        self.sync.sync()  # this node's own queue entries go to the hive's queue first
        return self.loop.run_round(major=major, progress=progress, should_stop=should_stop)

    def train_if_due(
        self, progress: Callable[[RoundProgress], None] | None = None, should_stop: Callable[[], bool] | None = None
    ) -> dict[str, Any] | None:
        """The train role's scheduled round: runs only when the interval has passed and enough entries wait."""
        if self.sync.hub is not None and not self.sync.hub.should_try():
            return None
        return self.loop.run_if_due(progress=progress, should_stop=should_stop)

    def history(self, limit: int = 50) -> list[dict[str, Any]]:
        if not 1 <= limit <= MAX_HISTORY:
            raise InvalidInputError(f"limit must be from 1 to {MAX_HISTORY}.")
        return self.loop.registry.rounds(limit)

    def adapters(self) -> list[AdapterInfo]:
        return self.loop.registry.adapters()

    def active_adapter(self) -> AdapterInfo | None:
        return self.loop.registry.active()

    def activate(self, version: int | None) -> AdapterInfo | None:
        """Make `version` the adapter every infer node serves (None: the base model); a rollback is this too."""
        if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
            raise InvalidInputError("An adapter version is a whole number from 1 (see `hivemind-app adapters`).")
        return self.loop.registry.activate(version)

    def fetch(self, version: int) -> Path:
        """The adapter's file on this node, its checksum verified (AdapterError if corrupt)."""
        return self.loop.registry.fetch(version)

    def status(self) -> dict[str, Any]:
        if self.sync.hub is not None and not self.sync.hub.should_try():
            return {"source": "hub", "offline": True, "pool": self.loop.state.pool_size()}
        return self.loop.status()
