"""Settings and helpers shared by the learning-loop tests: CI-sized rounds on the real bundled model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hivemind_app.config import Settings

# A round CI can afford on 2 cores (~1.5 min): tens of steps on a few hundred short examples. The
# longer, better-learning round is bench/train.py's.
CI_ROUND = {"steps": 30, "eval_limit": 40, "min_held_out": 10}


def training_settings(
    data_dir: Path, base_dir: Path, name: str = "trainer", redis_url: str | None = None, **train: Any
) -> Settings:
    hub = {"url": redis_url, "connect_timeout_s": 0.5} if redis_url else {}
    return Settings(
        data_dir=data_dir,
        node={"name": name, "port": 0},
        discovery={"enabled": False},
        redis=hub,
        train={"base_model_path": str(base_dir), **CI_ROUND, **train},
    )
