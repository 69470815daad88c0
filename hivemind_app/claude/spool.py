"""The hook spool: Claude Code's frequent hooks answer in milliseconds, and the store catches up behind them.

`PostToolUse` runs after every tool call and `UserPromptSubmit` before every prompt; opening the store, the
settings and the CLI costs most of a second each time. These events print nothing, so their hook only
checks the payload, clips it, passes it through the secret redactor and writes it as one file in
`<data dir>/spool/` (0600, in a 0700 directory; written under a temporary name and renamed, so a file in
the spool is always whole). Then, unless a drainer already runs, it starts one in the background
(`hivemind-app claude drain-hooks`), which applies each file to the hive in the order they were written,
with the time it was spooled, and deletes it. `SessionStart` (which prints context) runs in full and drains
first.

Invariants:
- nothing unredacted is written to disk;
- a spooled event is applied at least once: a file is deleted only after its event is applied, and a passing
  fault (a busy store) leaves it for the next drain;
- a file that cannot be read, or whose event the hive refuses as bad input, is moved to `spool/bad/` and
  reported, never retried for ever, so it cannot block the events after it;
- one drainer at a time (an flock on `spool/.drain.lock`), and a file spooled while a drainer finishes is
  picked up by it (it looks again after letting go of the lock).

This module is imported on the hot path: stdlib, platformdirs and the redactor only.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from hivemind_app.claude.payloads import INPUT_LIMIT, RESULT_LIMIT, TASK_LIMIT, clip, session_id_of
from hivemind_app.locks import flock_within
from hivemind_app.trust.redact import redact, redact_value

SPOOLED_EVENTS = ("UserPromptSubmit", "PostToolUse", "PostToolUseFailure", "Stop", "SessionEnd", "PreCompact")
SYNC_ENV = "HIVEMIND_HOOK_SPOOL"  # "0": handle every hook in full, at once (debugging, the benchmark's baseline)
_KEPT_FIELDS = ("session_id", "prompt", "tool_name", "tool_input", "tool_response", "error", "reason", "trigger")
LOCK_NAME = ".drain.lock"
MAX_ATTEMPTS = 5  # a file whose apply fails this often is set aside: it must not hold up the ones after it
_ATTEMPTS = re.compile(r"\.try(\d+)\.json$")


class SpoolRefusal(Exception):
    """The payload cannot be spooled: the message is the warning the hook prints."""


def data_dir() -> Path:
    """The data directory as `Settings` resolves it (env, then the settings file, then platformdirs), without
    importing pydantic: tests/claude/test_spool.py checks that the two agree."""
    override = os.environ.get("HIVEMIND_DATA_DIR")
    if override:
        return Path(override).expanduser()
    import platformdirs

    default_config = Path(platformdirs.user_config_dir("hivemind-app")) / "config.toml"
    config = os.environ.get("HIVEMIND_CONFIG") or str(default_config)
    with contextlib.suppress(OSError, ValueError):
        if not Path(config).expanduser().is_file():
            raise OSError("no settings file")
        import tomllib

        configured = tomllib.loads(Path(config).expanduser().read_text(encoding="utf-8")).get("data_dir")
        if isinstance(configured, str) and configured:
            return Path(configured).expanduser()
    return Path(platformdirs.user_data_dir("hivemind-app"))


def spool_dir() -> Path:
    return data_dir() / "spool"


def prepare(event: str, payload: dict[str, Any]) -> dict[str, Any]:
    """What is kept of a payload: the fields the handler reads, clipped and redacted (SpoolRefusal if unusable)."""
    if session_id_of(payload) is None:
        raise SpoolRefusal(f"{event} hook payload has no session_id; ignored")
    if event in ("PostToolUse", "PostToolUseFailure"):
        tool = payload.get("tool_name")
        if not isinstance(tool, str) or not tool:
            raise SpoolRefusal(f"{event} payload has no tool_name; ignored")
    kept = {k: payload[k] for k in _KEPT_FIELDS if k in payload}
    if isinstance(kept.get("prompt"), str):
        kept["prompt"] = redact(clip(kept["prompt"], TASK_LIMIT))
    for name, limit in (("tool_input", INPUT_LIMIT), ("tool_response", RESULT_LIMIT), ("error", RESULT_LIMIT)):
        if name in kept:
            kept[name] = redact_value(clip(kept[name], limit))
    for name in ("tool_name", "reason", "trigger"):
        if isinstance(kept.get(name), str):
            kept[name] = redact(kept[name][:200])
    if event == "UserPromptSubmit":  # its project, found here: the drainer's environment may be another session's
        from hivemind_app.projects import current_project

        cwd = payload.get("cwd")
        kept["project"] = current_project(cwd if isinstance(cwd, str) else None)
    return {"event": event, "spooled_at": time.time(), "payload": kept}


def _make_private(directory: Path) -> None:
    """The spool and the data dir above it, created 0700 (a hook may be the first to create either)."""
    directory.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.mkdir(mode=0o700, exist_ok=True)


def write(record: dict[str, Any], directory: Path | None = None) -> Path:
    directory = directory or spool_dir()
    _make_private(directory)
    name = f"{time.time_ns():020d}-{os.getpid()}-{record['event']}.json"
    tmp = directory / f".{name}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(record, out, ensure_ascii=False)
        out.flush()
        os.fsync(out.fileno())  # on disk before the hook returns: a machine that dies then loses nothing
    final = directory / name
    os.replace(tmp, final)
    _sync_directory(directory)  # and so is its name
    return final


def _sync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return  # a file system that cannot open directories (rare): the file itself is synced
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def drain_lock(directory: Path, wait: float = 0.0) -> Iterator[bool]:
    """Whether this process holds the drainer's lock: at once, or within `wait` seconds (the running drainer
    done by then)."""
    _make_private(directory)
    fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if not flock_within(fd, wait):
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def start_drainer(directory: Path) -> bool:
    """Start a background drainer unless one runs; whether one was started."""
    with drain_lock(directory) as free:
        if not free:
            return False
    import subprocess  # only when one is started

    subprocess.Popen(
        [sys.executable, "-m", "hivemind_app", "claude", "drain-hooks", "--quiet"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # outlives the hook, and Claude Code's signals to it
        close_fds=True,
    )
    return True


def pending(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.json") if not p.name.startswith("."))


def drain(
    apply: Callable[[str, dict[str, Any], float], object],
    directory: Path | None = None,
    report: Callable[[str], None] = lambda message: None,
    wait: float = 0.0,
    refused: Callable[[Exception], bool] = lambda exc: False,
) -> tuple[int, int]:
    """Apply every spooled event in order; (applied, set aside). With another drainer running, return at
    once (it does the work), or wait up to `wait` seconds for it and then drain what is left."""
    directory = directory or spool_dir()
    if not directory.is_dir():
        return 0, 0
    applied = bad = 0
    while True:
        with drain_lock(directory, wait) as mine:
            if not mine:
                return applied, bad
            for path in pending(directory):
                try:
                    record = json.loads(path.read_text(encoding="utf-8"))
                    event, payload, at = record["event"], record["payload"], float(record["spooled_at"])
                    if not isinstance(event, str) or not isinstance(payload, dict):
                        raise ValueError("not a spooled hook event")
                except (OSError, ValueError, KeyError, TypeError) as exc:
                    _set_aside(path, directory)
                    report(f"spooled hook event {path.name} could not be read ({exc}); moved to spool/bad/")
                    bad += 1
                    continue
                try:
                    apply(event, payload, at)
                except Exception as exc:
                    attempts = _attempts(path) + 1
                    if not refused(exc) and attempts < MAX_ATTEMPTS:
                        _count_attempt(path, attempts)
                        raise  # a passing fault (a busy store): the file stays for the next drain
                    # bad input, or a fault that keeps coming back: set it aside, or it would block every later one
                    _set_aside(path, directory)
                    report(f"spooled {event} event {path.name} was refused ({exc}); moved to spool/bad/")
                    bad += 1
                    continue
                path.unlink(missing_ok=True)
                applied += 1
        if not pending(directory):  # spooled while we let go of the lock? then go round again
            return applied, bad


def _attempts(path: Path) -> int:
    found = _ATTEMPTS.search(path.name)
    return int(found.group(1)) if found else 0


def _count_attempt(path: Path, attempts: int) -> None:
    """Rename `X.json` / `X.tryN.json` to `X.try<attempts>.json`: the same place in the order, one more try."""
    stem = _ATTEMPTS.sub("", path.name).removesuffix(".json")
    with contextlib.suppress(OSError):
        os.replace(path, path.with_name(f"{stem}.try{attempts}.json"))


def _set_aside(path: Path, directory: Path) -> None:
    aside = directory / "bad"
    aside.mkdir(mode=0o700, exist_ok=True)
    with contextlib.suppress(OSError):
        os.replace(path, aside / path.name)


def spool_hook(event: str, raw: bytes) -> int:
    """The hot path of `hivemind-app hook EVENT` for a spooled event: always exit status 0."""
    try:
        payload = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return _warn(f"hook input is not JSON ({exc}); ignored")
    if not isinstance(payload, dict):
        return _warn("hook input is not a JSON object; ignored")
    try:
        directory = spool_dir()
        write(prepare(event, payload), directory)
        start_drainer(directory)
    except SpoolRefusal as exc:
        return _warn(str(exc))
    except Exception as exc:  # a hook reports, it never blocks Claude Code
        return _warn(f"{event} hook failed: {type(exc).__name__}: {exc}")
    return 0


def _warn(message: str) -> int:
    sys.stderr.write(f"hivemind: WARNING: {message}\n")
    return 0
