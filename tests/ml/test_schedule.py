"""When the train role runs a round by itself: the interval has passed and enough entries wait; every
`major_every`-th scheduled round retrains on the whole pool."""

from __future__ import annotations

import time
from pathlib import Path

from hivemind_app.config import Settings
from hivemind_app.hive import Hive
from hivemind_app.ml.trainer import LAST_ROUND_AT, ROUNDS_SINCE_MAJOR, Trainer
from hivemind_app.records.learning import QueueBatch
from tests.support import on_disk
from tests.support.tool_uses import tool_uses


class HiveBacklog:
    """The learning source as the schedule sees it: how many entries wait in the Hive's queue."""

    name = "local"

    def __init__(self, hive: Hive) -> None:
        self.hive = hive

    def backlog(self) -> int:
        return int(self.hive.learning_status()["backlog"])

    def take(self, limit: int) -> QueueBatch:
        raise AssertionError("the schedule never takes entries")

    def ack(self, batch: QueueBatch) -> None:
        raise AssertionError("the schedule never acks entries")


class SchedulePool(dict[str, str]):
    """The pool's small values (the last round's time, rounds since the last major one); no examples."""

    def put(self, key: str, value: str | None) -> None:
        if value is None:
            self.pop(key, None)
        else:
            self[key] = value


def schedule(settings: Settings, hive: Hive, pool: SchedulePool, work_dir: Path) -> Trainer:
    return Trainer(
        settings.train,
        base_gguf=work_dir / "unused.gguf",
        base_dir=lambda progress: work_dir / "unused",
        source=HiveBacklog(hive),
        pool=pool,  # type: ignore[arg-type]
        registry=None,  # type: ignore[arg-type]
        evaluator=None,  # type: ignore[arg-type]
        work_dir=work_dir,
        node="test-node",
    )


def test_a_round_is_due_only_after_the_interval_and_with_enough_new_entries(settings: Settings, tmp_path: Path) -> None:
    settings = settings.model_copy(update={"train": settings.train.model_copy(update={"min_examples": 50})})
    pool = SchedulePool()
    with Hive(settings) as hive:
        trainer = schedule(settings, hive, pool, tmp_path)
        assert trainer.due() == (False, False)  # nothing to learn from
        for item in tool_uses(60, seed=1):
            hive.add_to_learning_queue(item)
        assert trainer.due() == (True, False)  # never trained, enough waiting
        pool.put(LAST_ROUND_AT, str(time.time() - 3600))
        assert trainer.due() == (False, False)  # nightly: an hour ago is too recent
        pool.put(LAST_ROUND_AT, str(time.time() - 25 * 3600))
        assert trainer.due() == (True, False)
        pool.put(ROUNDS_SINCE_MAJOR, "6")
        assert trainer.due() == (True, True)  # the seventh: weekly retraining


def test_an_empty_round_does_not_count_towards_the_schedule(settings: Settings) -> None:
    with Hive(settings) as hive:
        report = hive.train_round()
        assert report["verdict"] == "skipped"
        assert on_disk.training_state(hive.settings.db_path, LAST_ROUND_AT) is None
