"""The learning loop: `train` (run a round with progress, or read the history) and `adapters` (list, roll back).

Everything heavy (torch, peft, llama.cpp) is imported by the round itself, so `train --history` and
`adapters` stay fast.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import click

from hivemind_app.cli.common import open_hive, print_json, progress_bar, stdout
from hivemind_app.errors import InvalidInputError

if TYPE_CHECKING:
    from hivemind_app.ml.trainer import RoundProgress


def register_commands(cli: click.Group) -> None:
    cli.add_command(train_command)
    cli.add_command(adapters_command)


def _when(timestamp: float | None) -> str:
    if not timestamp:
        return "-"
    return dt.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M")


def _metric(evaluation: dict[str, Any] | None, key: str) -> str:
    if not evaluation or evaluation.get(key) is None:
        return "-"
    return f"{float(evaluation[key]):.0%}"


def describe_round(report: dict[str, Any]) -> str:
    """One line per round: when, examples, reference vs new accuracy, verdict, adapter version."""
    queue = report.get("queue", {})
    examples = report.get("examples", {})
    evaluation = report.get("evaluation")
    version = report.get("adapter_version")
    counts = f"{queue.get('taken', 0)} taken, {examples.get('train', 0)}+{examples.get('held_out', 0)} examples"
    scores = (
        f"{evaluation.get('reference', 'base')} {_metric(evaluation, 'reference_accuracy')} -> "
        f"new {_metric(evaluation, 'accuracy')}"
        if evaluation
        else "not judged"
    )
    outcome = f"{report.get('verdict', '?')}" + (f" as v{version}" if version else "")
    return (
        f"{_when(report.get('finished_at'))}  {report.get('kind', 'regular'):<7}  {counts:<28}  {scores:<24}  {outcome}"
    )


@click.command("train")
@click.option("--now", "run_now", is_flag=True, help="Run one round now, whatever the schedule says.")
@click.option("--major", is_flag=True, help="With --now: retrain on the whole example pool (the weekly round).")
@click.option("--history", "show_history", is_flag=True, help="List past rounds instead.")
@click.option("--limit", "-n", type=int, default=20, show_default=True, help="Rounds shown by --history.")
@click.option("--json", "as_json", is_flag=True, help="Print the round's report (or the history) as JSON.")
def train_command(run_now: bool, major: bool, show_history: bool, limit: int, as_json: bool) -> None:
    """Fine-tune a LoRA adapter on the learning queue; publish it only if it beats the active one."""
    if show_history == run_now:
        raise click.UsageError("Give --now (run a round) or --history (list rounds).")
    if major and not run_now:
        raise click.UsageError("--major goes with --now.")
    with open_hive() as hive:
        if show_history:
            rounds = hive.training_history(limit)
            if as_json:
                print_json(rounds)
            elif not rounds:
                click.echo("No training rounds yet; run `hivemind-app train --now`.")
            else:
                for report in rounds:
                    stdout.print(describe_round(report), markup=False)
            return
        with progress_bar() as progress:
            tasks: dict[str, Any] = {}

            def show(step: RoundProgress) -> None:
                if step.stage not in tasks:
                    tasks[step.stage] = progress.add_task(step.stage, total=None)
                loss = f" loss {step.loss:.3f}" if step.loss is not None else ""
                label = f"{step.stage:<11} {step.detail}{loss}"
                progress.update(tasks[step.stage], completed=step.done, total=step.total or None, description=label)

            report = hive.train_round(major=major, progress=show)
    if as_json:
        print_json(report)
        return
    evaluation = report.get("evaluation")
    if evaluation:
        click.echo(
            f"held-out tool accuracy: {evaluation['reference']} {evaluation['reference_accuracy']:.0%}, "
            f"new {evaluation['accuracy']:.0%} (exact match {evaluation['reference_exact_match']:.0%} -> "
            f"{evaluation['exact_match']:.0%}; loss {evaluation['base_loss']:.3f} base -> {evaluation['loss']:.3f})"
        )
    version = report.get("adapter_version")
    click.echo(f"{report['verdict']}: {report['reason']}" + (f"; adapter v{version} is now active" if version else ""))


@click.group("adapters", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def adapters_command(ctx: click.Context, as_json: bool) -> None:
    """Published LoRA adapters (the active one marked); `adapters activate VERSION` rolls back or forward."""
    if ctx.invoked_subcommand is not None:
        return
    with open_hive() as hive:
        found = hive.adapters()
    if as_json:
        print_json([a.to_dict() for a in found])
        return
    if not found:
        click.echo("No adapters published yet; the inference nodes serve the base model.")
        return
    for info in found:
        mark = "*" if info.active else " "
        accuracy = info.metrics.get("accuracy")
        shown = f"{accuracy:.0%}" if isinstance(accuracy, int | float) else "-"
        click.echo(
            f"{mark} v{info.version:<4} {_when(info.created_at)}  from {info.node:<16} accuracy {shown:>4}  "
            f"{info.size / 1024:,.0f} KiB  sha256 {info.sha256[:12]}  base {info.base_model}"
        )


@adapters_command.command("activate")
@click.argument("version")
def activate_command(version: str) -> None:
    """Make VERSION (e.g. 3 or v3) the adapter every infer node serves; `base` serves no adapter."""
    wanted = version.lower().removeprefix("v")
    if wanted != "base" and not wanted.isdigit():
        raise InvalidInputError(f"{version!r} is not an adapter version: give a number like 3 (or `base`).")
    with open_hive() as hive:
        info = hive.activate_adapter(None if wanted == "base" else int(wanted))
    click.echo("the base model is active (no adapter)" if info is None else f"adapter v{info.version} is active")
