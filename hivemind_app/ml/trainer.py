"""One training round, the seed's seven steps: take, clean, build examples, fine-tune, evaluate, publish, ack.

The round is source- and registry-agnostic: the hub's consumer group or the local queue feeds it, and the
hub's or the local registry receives the adapter. Queue entries are acknowledged only at the very end, after
the round has used them and its examples are in the pool, so a trainer killed at any point loses nothing:
its entries stay pending and the next trainer takes them.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from hivemind_app.config import TrainSettings
from hivemind_app.errors import AdapterError, HivemindError
from hivemind_app.ml.adapters import AdapterRegistry
from hivemind_app.ml.evaluate import Scores, Verdict, judge, majority_accuracy
from hivemind_app.ml.examples import LearningSource, chat, clean, split, tool_menu
from hivemind_app.ml.lora import LoraRecipe, TrainedAdapter, held_out_loss, train_adapter
from hivemind_app.records.learning import QueueBatch, ToolUse

LAST_ROUND_AT = "last_round_at"
ROUNDS_SINCE_MAJOR = "rounds_since_major"


@dataclass(frozen=True)
class RoundProgress:
    """One step of a round, for a progress bar: `stage` names it, `done`/`total` count within it."""

    stage: str
    done: int = 0
    total: int = 0
    detail: str = ""
    loss: float | None = None


class ExamplePool(Protocol):
    def pool_keys(self) -> set[str]: ...

    def add_examples(self, uses: list[ToolUse], keep: int) -> None: ...

    def recent_examples(self, limit: int) -> list[ToolUse]: ...

    def get(self, key: str) -> str | None: ...

    def put(self, key: str, value: str | None) -> None: ...


Evaluator = Callable[[Path | None, list[ToolUse], list[str], Callable[[int, int], None]], Scores]
Progress = Callable[[RoundProgress], None]


class Trainer:
    def __init__(
        self,
        settings: TrainSettings,
        *,
        base_gguf: Path,
        base_dir: Callable[[Callable[[str], None]], Path],
        source: LearningSource,
        pool: ExamplePool,
        registry: AdapterRegistry,
        evaluator: Evaluator,
        work_dir: Path,
        node: str,
    ) -> None:
        self.settings = settings
        self.base_gguf = base_gguf
        self.base_dir = base_dir
        self.source = source
        self.pool = pool
        self.registry = registry
        self.evaluator = evaluator
        self.work_dir = work_dir
        self.node = node

    # -- schedule ------------------------------------------------------------------------------------

    def due(self, now: float | None = None) -> tuple[bool, bool]:
        """(a scheduled round is due, it is a major one)."""
        now = time.time() if now is None else now
        last = float(self.pool.get(LAST_ROUND_AT) or 0)
        if now - last < self.settings.interval_h * 3600:
            return False, False
        if self.source.backlog() < self.settings.min_examples:
            return False, False
        return True, int(self.pool.get(ROUNDS_SINCE_MAJOR) or 0) + 1 >= self.settings.major_every

    def peft_dir(self, version: int) -> Path:
        return self.work_dir / "peft" / f"v{version}"

    # -- one round -----------------------------------------------------------------------------------

    def run_round(
        self, major: bool = False, progress: Progress | None = None, should_stop: Callable[[], bool] | None = None
    ) -> dict[str, Any]:
        """Run one round and return its report (also recorded in the registry's history)."""
        emit = progress or (lambda _: None)
        cfg = self.settings
        started = time.time()
        report: dict[str, Any] = {
            "started_at": started,
            "node": self.node,
            "kind": "major" if major else "regular",
            "source": self.source.name,
            "base_model": self.base_gguf.name,
            "adapter_version": None,
        }
        emit(RoundProgress("examples", detail="reading the learning queue"))
        batch = self.source.take(cfg.max_examples)
        cleaned = clean(batch.entries, seen=self.pool.pool_keys())
        report["queue"] = {"taken": len(batch.entries), **cleaned.summary()}
        new = cleaned.kept
        if not batch.entries:
            return self._finish(report, batch, new, "skipped", "the learning queue is empty: nothing to learn from")
        if not new:
            why = (
                f"none of the {len(batch.entries)} entries is a new successful tool use "
                f"({cleaned.failures} failed, {cleaned.duplicates} duplicates, {cleaned.unusable} unusable)"
            )
            return self._finish(report, batch, new, "skipped", why)

        earlier = self.pool.recent_examples(max(0, (cfg.pool_size if major else cfg.max_examples) - len(new)))
        examples = new + earlier
        train, held_out = split(examples, cfg.held_out_fraction)
        held_out = sorted(held_out, key=lambda u: u.key)[: cfg.eval_limit]
        tools = sorted({u.tool for u in examples})
        report["examples"] = {"new": len(new), "earlier": len(earlier), "train": len(train), "held_out": len(held_out)}
        emit(
            RoundProgress("examples", len(examples), len(examples), f"{len(train)} to train, {len(held_out)} held out")
        )
        if len(held_out) < cfg.min_held_out or len(train) < cfg.batch_size:
            why = (
                f"too few examples to judge an adapter ({len(train)} to train, {len(held_out)} held out; "
                f"train.min_held_out is {cfg.min_held_out}); they are kept for the next round"
            )
            return self._finish(report, batch, new, "skipped", why)

        work = self.work_dir / f"round-{int(started * 1000)}"
        try:
            return self._train_and_judge(report, batch, new, train, held_out, tools, work, major, emit, should_stop)
        except HivemindError as exc:
            # Recorded, but nothing acknowledged: the entries stay pending for the next round.
            report.update(verdict="failed", reason=str(exc), finished_at=time.time())
            report["seconds"] = round(report["finished_at"] - started, 1)
            with contextlib.suppress(HivemindError):
                self.registry.record_round(report)
            raise
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _train_and_judge(
        self,
        report: dict[str, Any],
        batch: QueueBatch,
        new: list[ToolUse],
        train: list[ToolUse],
        held_out: list[ToolUse],
        tools: list[str],
        work: Path,
        major: bool,
        emit: Progress,
        should_stop: Callable[[], bool] | None,
    ) -> dict[str, Any]:
        from hivemind_app.ml.gguf_lora import convert

        emit(RoundProgress("base model", detail=self.base_gguf.name))
        base_dir = self.base_dir(lambda detail: emit(RoundProgress("base model", detail=detail)))
        recipe = self._recipe(major)
        trained = self._train(report, base_dir, recipe, train, tools, work, emit, should_stop)
        emit(RoundProgress("converting", detail="peft -> GGUF LoRA"))
        base_config = json.loads((base_dir / "config.json").read_text())
        gguf_path = convert(trained.directory, work / "adapter.gguf", base_config, name=f"hivemind {self.node}")
        verdict = self._evaluate(report, base_dir, recipe, trained.directory, gguf_path, train, held_out, tools, emit)
        if not verdict.promote:
            return self._finish(report, batch, new, "rejected", verdict.reason)
        emit(RoundProgress("publishing", detail=verdict.reason))
        metrics = {**report["evaluation"], "examples": report["examples"], "training": report["training"]}
        info = self.registry.publish(gguf_path, self.base_gguf.name, metrics, self.node)
        self.registry.activate(info.version)
        report["adapter_version"] = info.version
        # The peft form stays on the trainer: later rounds measure the active adapter's held-out loss with it.
        shutil.rmtree(self.peft_dir(info.version), ignore_errors=True)
        self.peft_dir(info.version).parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(trained.directory), self.peft_dir(info.version))
        return self._finish(report, batch, new, "promoted", verdict.reason)

    def _recipe(self, major: bool) -> LoraRecipe:
        cfg = self.settings
        return LoraRecipe(
            r=cfg.lora_r,
            alpha=cfg.lora_alpha,
            target_modules=tuple(cfg.target_modules),
            steps=cfg.major_steps if major else cfg.steps,
            learning_rate=cfg.learning_rate,
            batch_size=cfg.batch_size,
            max_seq_len=cfg.max_seq_len,
            device=cfg.device,
        )

    def _train(
        self,
        report: dict[str, Any],
        base_dir: Path,
        recipe: LoraRecipe,
        train: list[ToolUse],
        tools: list[str],
        work: Path,
        emit: Progress,
        should_stop: Callable[[], bool] | None,
    ) -> TrainedAdapter:
        trained = train_adapter(
            base_dir,
            [chat(u, tool_menu(u, tools)) for u in train],
            recipe,
            work / "peft",
            progress=lambda s: emit(
                RoundProgress("training", s.step, s.steps, f"{s.examples_per_s:.1f} examples/s", s.loss)
            ),
            should_stop=should_stop,
        )
        report["training"] = {
            "steps": trained.steps,
            "final_loss": round(trained.final_loss, 4),
            "seconds": round(trained.seconds, 1),
            "examples_per_s": round(trained.examples_per_s, 2),
            "device": trained.device,
            "r": recipe.r,
            "alpha": recipe.alpha,
            "targets": list(recipe.target_modules),
        }
        return trained

    def _reference(self, report: dict[str, Any]) -> tuple[Path | None, Path | None, str]:
        """What the new adapter must beat: the active adapter's GGUF and peft form, or the base model."""
        try:
            active = self.registry.active()
        except AdapterError as exc:  # a refused pointer (hub/adapters.py): nothing to compare with but the base
            report["reference_note"] = f"active adapter unusable, judged against the base: {exc}"
            return None, None, "base"
        if active is None or active.base_model != self.base_gguf.name:
            return None, None, "base"
        try:
            path = self.registry.fetch(active.version)
        except AdapterError as exc:
            report["reference_note"] = f"active adapter unusable, judged against the base: {exc}"
            return None, None, "base"
        kept = self.peft_dir(active.version)
        return path, kept if kept.exists() else None, f"v{active.version}"

    def _evaluate(
        self,
        report: dict[str, Any],
        base_dir: Path,
        recipe: LoraRecipe,
        peft_dir: Path,
        gguf_path: Path,
        train: list[ToolUse],
        held_out: list[ToolUse],
        tools: list[str],
        emit: Progress,
    ) -> Verdict:
        reference_path, reference_peft, reference = self._reference(report)
        emit(RoundProgress("evaluating", 0, 2 * len(held_out), f"{reference} on {len(held_out)} held-out examples"))
        before = self.evaluator(
            reference_path, held_out, tools, lambda d, t: emit(RoundProgress("evaluating", d, 2 * t, reference))
        )
        after = self.evaluator(
            gguf_path, held_out, tools, lambda d, t: emit(RoundProgress("evaluating", t + d, 2 * t, "new adapter"))
        )
        chats_held = [chat(u, tools) for u in held_out]
        majority = majority_accuracy(train, held_out)
        verdict = judge(before, after, majority, self.settings.margin, self.settings.significance)
        report["evaluation"] = {
            "reference": reference,
            "held_out": len(held_out),
            "reference_accuracy": round(before.accuracy, 4),
            "accuracy": round(after.accuracy, 4),
            "reference_exact_match": round(before.exact_match, 4),
            "exact_match": round(after.exact_match, 4),
            "majority_accuracy": round(majority, 4),
            "base_loss": round(held_out_loss(base_dir, None, chats_held, recipe), 4),
            "reference_loss": (
                round(held_out_loss(base_dir, reference_peft, chats_held, recipe), 4) if reference_peft else None
            ),
            "loss": round(held_out_loss(base_dir, peft_dir, chats_held, recipe), 4),
            "p_value": round(verdict.p_value, 6),
        }
        return verdict

    def _finish(
        self, report: dict[str, Any], batch: QueueBatch, new: list[ToolUse], verdict: str, reason: str
    ) -> dict[str, Any]:
        """Record the round, keep its examples, then (only then) acknowledge its queue entries."""
        finished = time.time()
        report.update(verdict=verdict, reason=reason, finished_at=finished)
        report["seconds"] = round(finished - report["started_at"], 1)
        self.registry.record_round(report)
        if new:
            self.pool.add_examples(new, keep=self.settings.pool_size)
        self.source.ack(batch)
        if batch.entries:
            self.pool.put(LAST_ROUND_AT, str(finished))
            since = 0 if report["kind"] == "major" else int(self.pool.get(ROUNDS_SINCE_MAJOR) or 0) + 1
            self.pool.put(ROUNDS_SINCE_MAJOR, str(since))
        return report
