"""When the train role runs a round by itself: the interval has passed and enough entries wait; every
`major_every`-th scheduled round retrains on the whole pool."""

from __future__ import annotations

import time

from hivemind_app.config import Settings
from hivemind_app.hive import Hive
from hivemind_app.ml.trainer import LAST_ROUND_AT, ROUNDS_SINCE_MAJOR
from tests.support.tool_uses import tool_uses


def test_a_round_is_due_only_after_the_interval_and_with_enough_new_entries(settings: Settings) -> None:
    settings = settings.model_copy(update={"train": settings.train.model_copy(update={"min_examples": 50})})
    with Hive(settings) as hive:
        trainer = hive.learning.trainer()
        assert trainer.due() == (False, False)  # nothing to learn from
        for item in tool_uses(60, seed=1):
            hive.add_to_learning_queue(item)
        assert trainer.due() == (True, False)  # never trained, enough waiting
        hive.learning.state.put(LAST_ROUND_AT, str(time.time() - 3600))
        assert trainer.due() == (False, False)  # nightly: an hour ago is too recent
        hive.learning.state.put(LAST_ROUND_AT, str(time.time() - 25 * 3600))
        assert trainer.due() == (True, False)
        hive.learning.state.put(ROUNDS_SINCE_MAJOR, "6")
        assert trainer.due() == (True, True)  # the seventh: weekly retraining


def test_an_empty_round_does_not_count_towards_the_schedule(settings: Settings) -> None:
    with Hive(settings) as hive:
        report = hive.train_round()
        assert report["verdict"] == "skipped"
        assert hive.learning.state.get(LAST_ROUND_AT) is None
