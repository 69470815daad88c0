"""What a Claude Code hook costs: `hivemind-app hook EVENT` as Claude Code runs it, beside its baselines.

    .venv/bin/python bench/hooks.py [--runs 30]

For each event, the wall time of the whole command (process start to exit) over `--runs` runs, in a fresh
data dir holding a few memories:
- `spooled`: the default, a frequent event checked, redacted and written to the spool (claude/spool.py),
  the store updated behind it by the background drainer (its CPU is not in this figure: it is measured
  by `drained`, the wall time of `claude drain-hooks` over the runs' events);
- `in full`: the same event with HIVEMIND_HOOK_SPOOL=0, applied to the store before the hook returns (the
  cost every hook had before the spool);
- `python`: `python -c pass`, the floor any Python hook pays, timed alternately with the event's spooled runs
  (`python_p50_ms` on each event's line: the same moments of a shared machine's load), and once on its own
  line first; `*_cpu_p50_ms`: the CPU time (user + system) of the same commands, which a busy machine's
  neighbours move much less than the wall time;
SessionStart, which prints context and so runs in full; and `prompt_injecting`, a UserPromptSubmit whose
prompt is about a stored note, so the hook also looks it up (store/peek.py) and prints it (the plain
UserPromptSubmit row above looks up too, and finds nothing). One JSON line per measurement.

What a pipx user gets: compiled bytecode, and the data dir where the settings put it by default.
- pipx compiles every module when it installs; a machine with PYTHONDONTWRITEBYTECODE set (this project's CI
  machine) would otherwise time every hook compiling its modules from source. So this script compiles the
  package first (`compileall`, in place; into a `PYTHONPYCACHEPREFIX` under the run's temporary dir where the
  package is not writable), runs every command with PYTHONDONTWRITEBYTECODE unset (what is still missing, the
  standard library's or a dependency's, is written by a warm-up run of each command, not timed), and says
  which in its first line (`bytecode`).
- `--baseline REV` (e.g. `main`) also times that revision's hooks, alternately with this one's
  (`baseline_p50_ms`, `baseline_cpu_p50_ms`): its package exported with `git archive` and compiled into the
  run's temporary dir, ahead of this one on PYTHONPATH.
- The data and config dirs are not named with HIVEMIND_DATA_DIR / HIVEMIND_CONFIG (which spare a hook the
  lookup of the default): XDG_DATA_HOME and XDG_CONFIG_HOME point into the run's temporary dir instead, so
  the hooks find them as they do for a user.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.report import emit_line, ms_stats
from hivemind_app.claude.spool import drain_lock

ROOT = Path(__file__).resolve().parents[1]
PAYLOADS = ROOT / "tests" / "claude" / "payloads"
EXE = str(Path(sys.executable).parent / "hivemind-app")


CPU_MS: list[float] = []  # the CPU time (user + system) of each command `timed` ran, in order


def timed(command: list[str], stdin: bytes, env: dict[str, str]) -> float:
    """The command's wall time in ms; its CPU time goes to CPU_MS (on a shared machine the wall time is the
    neighbours' load as much as ours, the CPU time much less so)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, input=stdin, env=env, capture_output=True, check=True, timeout=120)
    wall = (time.perf_counter() - start) * 1000
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU_MS.append((after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000)
    return wall


def bytecode_env(tmp: Path) -> tuple[dict[str, str], str]:
    """The environment the hooks run in, with the package compiled as pipx compiles it; and where it went."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    package = str(ROOT / "hivemind_app")
    if os.access(package, os.W_OK):
        compiled = compileall.compile_dir(package, quiet=1)
        where = "in place"
    else:
        env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
        sys.pycache_prefix = env["PYTHONPYCACHEPREFIX"]  # compileall writes where the hooks will look
        compiled = compileall.compile_dir(package, quiet=1)
        where = f"PYTHONPYCACHEPREFIX={env['PYTHONPYCACHEPREFIX']}"
    if not compiled:
        raise SystemExit(f"bench/hooks.py: compiling {package} failed; the timings would include compiling")
    return env, where


def _baseline(rev: str, tmp: Path, env: dict[str, str]) -> dict[str, str]:
    """The environment that runs revision `rev`'s hooks (its package exported and compiled under `tmp`)."""
    target = tmp / "baseline"
    target.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "hivemind_app"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    if not compileall.compile_dir(str(target / "hivemind_app"), quiet=1):
        raise SystemExit(f"bench/hooks.py: compiling {rev}'s package failed")
    return {**env, "PYTHONPATH": str(target)}  # ahead of the installed package (and of an editable one)


def _baseline_stats(wall: list[float], cpu: list[float]) -> dict[str, float]:
    if not wall:
        return {}
    return {"baseline_p50_ms": ms_stats(wall)["p50_ms"], "baseline_cpu_p50_ms": ms_stats(cpu)["p50_ms"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument(
        "--baseline", metavar="REV", help="also time the hooks of this git revision, alternately (e.g. main)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-hooks-") as tmp:
        base, where = bytecode_env(Path(tmp))
        env = {k: v for k, v in base.items() if k not in ("HIVEMIND_DATA_DIR", "HIVEMIND_CONFIG")}
        env |= {"XDG_DATA_HOME": str(Path(tmp) / "data"), "XDG_CONFIG_HOME": str(Path(tmp) / "config")}
        spool = Path(tmp) / "data" / "hivemind-app" / "spool"
        baseline_env = _baseline(args.baseline, Path(tmp), env) if args.baseline else None
        emit_line("hooks", "setup", bytecode=where, data_dir=str(spool.parent), runs=args.runs, baseline=args.baseline)
        for note in ("hivemind-app uses apsw for SQLite extensions", "the staging DB listens on port 5433"):
            subprocess.run([EXE, "store", note], env=env, capture_output=True, check=True, cwd=tmp)  # no project
        python = [timed([sys.executable, "-c", "pass"], b"", env) for _ in range(args.runs)]
        emit_line("hooks", "python_startup", runs=args.runs, **ms_stats(python))
        for event, payload in (
            ("PostToolUse", "post_tool_use_edit.json"),
            ("UserPromptSubmit", "user_prompt_submit.json"),
            ("Stop", "stop.json"),
        ):
            data = (PAYLOADS / payload).read_bytes()
            # the background drainer would compete for this machine's two cores with the timed hooks: hold its
            # lock while they run, so none starts, and time the drain on its own below
            with drain_lock(spool, wait=60.0):
                timed([EXE, "hook", event], data, env)  # warm-up: writes any bytecode still missing
                spooled, floor, spooled_cpu, floor_cpu, old, old_cpu = [], [], [], [], [], []
                for _ in range(args.runs):  # alternately: the floor measured at the same moments of the load
                    spooled.append(timed([EXE, "hook", event], data, env))
                    spooled_cpu.append(CPU_MS[-1])
                    floor.append(timed([sys.executable, "-c", "pass"], b"", env))
                    floor_cpu.append(CPU_MS[-1])
                    if baseline_env is not None:
                        old.append(timed([EXE, "hook", event], data, baseline_env))
                        old_cpu.append(CPU_MS[-1])
            start = time.perf_counter()
            subprocess.run([EXE, "claude", "drain-hooks"], env=env, capture_output=True, check=True)
            drained_ms = (time.perf_counter() - start) * 1000
            full = [timed([EXE, "hook", event], data, {**env, "HIVEMIND_HOOK_SPOOL": "0"}) for _ in range(args.runs)]
            spooled_stats, full_stats = ms_stats(spooled, "spooled_"), ms_stats(full, "in_full_")
            emit_line(
                "hooks",
                "hook",
                event=event,
                runs=args.runs,
                **spooled_stats,
                python_p50_ms=ms_stats(floor)["p50_ms"],
                spooled_cpu_p50_ms=ms_stats(spooled_cpu)["p50_ms"],
                python_cpu_p50_ms=ms_stats(floor_cpu)["p50_ms"],
                **_baseline_stats(old, old_cpu),
                **full_stats,
                drained_ms=round(drained_ms, 1),
                speedup_p50=round(full_stats["in_full_p50_ms"] / spooled_stats["spooled_p50_ms"], 1),
                over_python_p50_ms=round(spooled_stats["spooled_p50_ms"] - ms_stats(floor)["p50_ms"], 1),
            )
        start_payload = (PAYLOADS / "session_start.json").read_bytes()
        starts = max(5, args.runs // 3)
        session_start = [timed([EXE, "hook", "SessionStart"], start_payload, env) for _ in range(starts)]
        emit_line("hooks", "session_start", runs=len(session_start), **ms_stats(session_start))
        # a prompt about a stored note: the hook prints it (a new session each run, or it is given only once)
        hits, floor, hits_cpu, floor_cpu, old, old_cpu = [], [], [], [], [], []
        with drain_lock(spool, wait=60.0):
            for n in range(args.runs):
                prompt = json.dumps(
                    {"session_id": f"bench-{n}", "cwd": tmp, "prompt": "which port does the staging DB listen on?"}
                )
                hits.append(timed([EXE, "hook", "UserPromptSubmit"], prompt.encode(), env))
                hits_cpu.append(CPU_MS[-1])
                floor.append(timed([sys.executable, "-c", "pass"], b"", env))
                floor_cpu.append(CPU_MS[-1])
                if baseline_env is not None:
                    old.append(
                        timed(
                            [EXE, "hook", "UserPromptSubmit"], prompt.replace("bench-", "old-").encode(), baseline_env
                        )
                    )
                    old_cpu.append(CPU_MS[-1])
        injected = subprocess.run(
            [EXE, "hook", "UserPromptSubmit"],
            input=prompt.replace("bench-", "last-").encode(),
            env=env,
            capture_output=True,
            check=True,
        ).stdout
        emit_line(
            "hooks",
            "prompt_injecting",
            runs=args.runs,
            injected=b"5433" in injected,
            **ms_stats(hits),
            python_p50_ms=ms_stats(floor)["p50_ms"],
            cpu_p50_ms=ms_stats(hits_cpu)["p50_ms"],
            python_cpu_p50_ms=ms_stats(floor_cpu)["p50_ms"],
            **_baseline_stats(old, old_cpu),
            over_python_p50_ms=round(ms_stats(hits)["p50_ms"] - ms_stats(floor)["p50_ms"], 1),
        )


if __name__ == "__main__":
    main()
