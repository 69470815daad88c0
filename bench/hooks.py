"""What a Claude Code hook costs: `hivemind-app hook EVENT` as Claude Code runs it, beside its baselines.

    .venv/bin/python bench/hooks.py [--runs 30]

For each event, the wall time of the whole command (process start to exit) over `--runs` runs, in a fresh
data dir holding a few memories:
- `spooled`: the default, a frequent event checked, redacted and written to the spool (claude/spool.py),
  the store updated behind it by the background drainer (its CPU is not in this figure: it is measured
  by `drained`, the wall time of `claude drain-hooks` over the runs' events);
- `in full`: the same event with HIVEMIND_HOOK_SPOOL=0, applied to the store before the hook returns (the
  cost every hook had before the spool);
- `python`: `python -c pass`, the floor any Python hook pays;
SessionStart, which prints context and so runs in full; and `prompt_injecting`, a UserPromptSubmit whose
prompt is about a stored note, so the hook also looks it up (store/peek.py) and prints it (the plain
UserPromptSubmit row above looks up too, and finds nothing). One JSON line per measurement.
"""

from __future__ import annotations

import argparse
import json
import os
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


def timed(command: list[str], stdin: bytes, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, input=stdin, env=env, capture_output=True, check=True, timeout=120)
    return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-hooks-") as tmp:
        env = {**os.environ, "HIVEMIND_DATA_DIR": str(Path(tmp) / "data"), "HIVEMIND_CONFIG": str(Path(tmp) / "c.toml")}
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
            with drain_lock(Path(env["HIVEMIND_DATA_DIR"]) / "spool", wait=60.0):
                spooled = [timed([EXE, "hook", event], data, env) for _ in range(args.runs)]
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
                **full_stats,
                drained_ms=round(drained_ms, 1),
                speedup_p50=round(full_stats["in_full_p50_ms"] / spooled_stats["spooled_p50_ms"], 1),
                over_python_p50_ms=round(spooled_stats["spooled_p50_ms"] - ms_stats(python)["p50_ms"], 1),
            )
        start_payload = (PAYLOADS / "session_start.json").read_bytes()
        starts = max(5, args.runs // 3)
        session_start = [timed([EXE, "hook", "SessionStart"], start_payload, env) for _ in range(starts)]
        emit_line("hooks", "session_start", runs=len(session_start), **ms_stats(session_start))
        # a prompt about a stored note: the hook prints it (a new session each run, or it is given only once)
        hits = []
        with drain_lock(Path(env["HIVEMIND_DATA_DIR"]) / "spool", wait=60.0):
            for n in range(args.runs):
                prompt = json.dumps(
                    {"session_id": f"bench-{n}", "cwd": tmp, "prompt": "which port does the staging DB listen on?"}
                )
                hits.append(timed([EXE, "hook", "UserPromptSubmit"], prompt.encode(), env))
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
            over_python_p50_ms=round(ms_stats(hits)["p50_ms"] - ms_stats(python)["p50_ms"], 1),
        )


if __name__ == "__main__":
    main()
