"""The hook spool: Claude Code's frequent hooks answer in milliseconds, and the store catches up behind them.

`PostToolUse` runs after every tool call and `UserPromptSubmit` before every prompt; opening the store, the
settings and the CLI costs most of a second each time. These events print nothing, so their hook only
checks the payload, passes it through the secret redactor, clips it and writes it as one file in
`<data dir>/spool/` (0600, in a 0700 directory; written under a temporary name and renamed, so a file in
the spool is always whole). Then, unless a drainer already runs, it starts one in the background
(`hivemind-app claude drain-hooks`), which applies each file to the hive in the order they were written,
with the time it was spooled, and deletes it. `SessionStart` (which prints context) runs in full and drains
first.

Invariants:
- nothing unredacted is written to disk: a string is redacted before it is clipped, so a secret the clip would
  cut in two (and the redactor then miss) is never kept in part;
- a spooled event is applied at least once: a file is deleted only after its event is applied, and a passing
  fault (a busy store) leaves it for the next drain;
- a file that cannot be read, or whose event the hive refuses as bad input, is moved to `spool/bad/` and
  reported, never retried for ever, so it cannot block the events after it;
- one drainer at a time (an flock on `spool/.drain.lock`), and a file spooled while a drainer finishes is
  picked up by it (it looks again after letting go of the lock).

This module is imported on the hot path, where every import costs the hook (bench/hooks.py): stdlib modules
the console script loads anyway (`os`, `json`, `re`), `fcntl` and the redactor; no `pathlib`, `typing`,
`subprocess` or `platformdirs` there (the hot path works on `str` paths, the drainer's side imports `pathlib`
when it runs, and the data dir's default is found as platformdirs finds it, checked against it by
tests/claude/test_spool.py).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import sys
import time
from stat import S_ISREG

from hivemind_app.claude.payloads import INPUT_LIMIT, RESULT_LIMIT, TASK_LIMIT, redact_clipped, session_id_of
from hivemind_app.locks import flock_within

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractContextManager
    from pathlib import Path
    from typing import Any

SPOOLED_EVENTS = ("UserPromptSubmit", "PostToolUse", "PostToolUseFailure", "Stop", "SessionEnd", "PreCompact")
SYNC_ENV = "HIVEMIND_HOOK_SPOOL"  # "0": handle every hook in full, at once (debugging, the benchmark's baseline)
_KEPT_FIELDS = ("session_id", "prompt", "tool_name", "tool_input", "tool_response", "error", "reason", "trigger")
LOCK_NAME = ".drain.lock"
MAX_ATTEMPTS = 5  # a file whose apply fails this often is set aside: it must not hold up the ones after it
_ATTEMPTS = re.compile(r"\.try(\d+)\.json$")
APP_NAME = "hivemind-app"  # config/paths.py's, not imported: that module loads platformdirs and pathlib


class SpoolRefusal(Exception):
    """The payload cannot be spooled: the message is the warning the hook prints."""


def _user_dir(xdg_variable: str, home_default: str) -> str:
    """platformdirs' user data / config directory for this app, without importing platformdirs (tens of ms with
    the pathlib, tempfile and shutil it loads): on Linux `$XDG_*_HOME` when it is absolute, else under an
    absolute `$HOME`; anywhere else, or in any other case, platformdirs itself answers."""
    if sys.platform.startswith("linux"):
        xdg = os.environ.get(xdg_variable, "")
        if os.path.isabs(xdg):
            return os.path.join(xdg, APP_NAME)
        home = os.environ.get("HOME", "")
        if not xdg and os.path.isabs(home):
            return os.path.join(home, home_default, APP_NAME)
    import platformdirs

    if xdg_variable == "XDG_DATA_HOME":
        return platformdirs.user_data_dir(APP_NAME)
    return platformdirs.user_config_dir(APP_NAME)


def user_data_dir() -> str:
    return _user_dir("XDG_DATA_HOME", ".local/share")


def user_config_dir() -> str:
    return _user_dir("XDG_CONFIG_HOME", ".config")


_settings_read: tuple[tuple[str, int, int], dict[str, Any]] | None = None


def settings_file() -> dict[str, Any]:
    """The settings file as a dict, as `Settings` finds it (`$HIVEMIND_CONFIG`, else config.toml in the user
    config dir); {} when it is absent or unreadable. Parsed once per process while it stays the same file
    (tomllib only when there is one)."""
    global _settings_read
    path = os.path.expanduser(os.environ.get("HIVEMIND_CONFIG") or os.path.join(user_config_dir(), "config.toml"))
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return {}
    if not S_ISREG(info.st_mode):
        return {}
    key = (path, info.st_mtime_ns, info.st_size)
    if _settings_read is None or _settings_read[0] != key:
        loaded: object = {}
        try:
            import tomllib

            with open(path, "rb") as handle:
                loaded = tomllib.load(handle)
        except (OSError, ValueError):
            pass
        _settings_read = (key, loaded if isinstance(loaded, dict) else {})
    return _settings_read[1]


def data_path() -> str:
    """The data directory as `Settings` resolves it (env, then the settings file, then platformdirs), without
    importing pydantic: tests/claude/test_spool.py checks that the two agree."""
    override = os.environ.get("HIVEMIND_DATA_DIR")
    if override:
        return os.path.expanduser(override)
    configured = settings_file().get("data_dir")
    if isinstance(configured, str) and configured:
        return os.path.expanduser(configured)
    return user_data_dir()


def data_dir() -> Path:
    from pathlib import Path

    return Path(data_path())


def spool_path() -> str:
    return os.path.join(data_path(), "spool")


def spool_dir() -> Path:
    from pathlib import Path

    return Path(spool_path())


def prepare(event: str, payload: dict[str, Any]) -> dict[str, Any]:
    """What is kept of a payload: the fields the handler reads, clipped and redacted (SpoolRefusal if unusable)."""
    if session_id_of(payload) is None:
        raise SpoolRefusal(f"{event} hook payload has no session_id; ignored")
    if event in ("PostToolUse", "PostToolUseFailure"):
        tool = payload.get("tool_name")
        if not isinstance(tool, str) or not tool:
            raise SpoolRefusal(f"{event} payload has no tool_name; ignored")
    kept = {k: payload[k] for k in _KEPT_FIELDS if k in payload}
    # redacted, then clipped: a secret across the limit is seen whole, and what is kept ends before the margin
    # that bounds the redactor's work, where a secret may be cut in two
    if isinstance(kept.get("prompt"), str):
        kept["prompt"] = redact_clipped(kept["prompt"], TASK_LIMIT)
    for name, limit in (("tool_input", INPUT_LIMIT), ("tool_response", RESULT_LIMIT), ("error", RESULT_LIMIT)):
        if name in kept:
            kept[name] = redact_clipped(kept[name], limit)
    for name in ("tool_name", "reason", "trigger"):
        if isinstance(kept.get(name), str):
            kept[name] = redact_clipped(kept[name], 200)
    if event == "UserPromptSubmit":  # its project, found here: the drainer's environment may be another session's
        from hivemind_app.projects import current_project

        cwd = payload.get("cwd")
        kept["project"] = current_project(cwd if isinstance(cwd, str) else None)
    return {"event": event, "spooled_at": time.time(), "payload": kept}


def _make_private(directory: str | os.PathLike[str]) -> None:
    """The spool and the data dir above it, created 0700 (a hook may be the first to create either)."""
    os.makedirs(os.path.dirname(os.fspath(directory)) or ".", mode=0o700, exist_ok=True)
    try:  # noqa: SIM105 (contextlib is no import of the hot path)
        os.mkdir(directory, 0o700)
    except FileExistsError:
        pass


def write(record: dict[str, Any], directory: str | os.PathLike[str] | None = None) -> Path:
    from pathlib import Path

    return Path(write_record(record, os.fspath(directory) if directory is not None else spool_path()))


def write_record(record: dict[str, Any], directory: str) -> str:
    """Write one spooled event into `directory`, durably, under its final name only when whole; its path."""
    _make_private(directory)
    name = f"{time.time_ns():020d}-{os.getpid()}-{record['event']}.json"
    tmp = os.path.join(directory, f".{name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(record, out, ensure_ascii=False)
        out.flush()
        os.fsync(out.fileno())  # on disk before the hook returns: a machine that dies then loses nothing
    final = os.path.join(directory, name)
    os.replace(tmp, final)
    _sync_directory(directory)  # and so is its name
    return final


def _sync_directory(directory: str) -> None:
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


class _DrainLock:
    """`drain_lock`'s context manager (a class: `contextlib` is no import of the hot path)."""

    def __init__(self, directory: str | os.PathLike[str], wait: float) -> None:
        self.directory, self.wait, self.fd, self.held = directory, wait, -1, False

    def __enter__(self) -> bool:
        _make_private(self.directory)
        self.fd = os.open(os.path.join(os.fspath(self.directory), LOCK_NAME), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            self.held = flock_within(self.fd, self.wait)
        except BaseException:
            os.close(self.fd)
            raise
        return self.held

    def __exit__(self, *exc: object) -> None:
        try:
            if self.held:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
        finally:
            os.close(self.fd)


def drain_lock(directory: str | os.PathLike[str], wait: float = 0.0) -> AbstractContextManager[bool]:
    """Whether this process holds the drainer's lock: at once, or within `wait` seconds (the running drainer
    done by then)."""
    return _DrainLock(directory, wait)


def start_drainer(directory: str | os.PathLike[str]) -> bool:
    """Start a background drainer unless one runs; whether one was started. posix_spawn, not `subprocess`
    (milliseconds to import on every hook that starts one)."""
    with drain_lock(directory) as free:
        if not free:
            return False
    argv = [sys.executable, "-m", "hivemind_app", "claude", "drain-hooks", "--quiet"]
    null = os.open(os.devnull, os.O_RDWR)
    try:
        # stdin, stdout and stderr on /dev/null, and no other descriptor this hook inherited (one of Claude
        # Code's pipes held open by the drainer would keep Claude Code waiting); Python's own are close-on-exec
        actions: list[tuple[int, ...]] = [(os.POSIX_SPAWN_DUP2, null, fd) for fd in (0, 1, 2)]
        actions += [(os.POSIX_SPAWN_CLOSE, fd) for fd in _inherited_descriptors() if fd != null]
        os.posix_spawn(
            sys.executable,
            argv,
            os.environ,
            file_actions=actions,
            setsid=True,  # outlives the hook, and Claude Code's signals to it
        )
    except (AttributeError, NotImplementedError):  # a platform without posix_spawn or its setsid
        import subprocess

        subprocess.Popen(argv, stdin=null, stdout=null, stderr=null, start_new_session=True, close_fds=True)
    finally:
        os.close(null)
    return True


def _inherited_descriptors() -> list[int]:
    """This process's inheritable descriptors above stderr ([] where they cannot be listed)."""
    found = []
    try:
        names = os.listdir("/dev/fd")
    except OSError:
        return []
    for name in names:
        try:
            fd = int(name)
            if fd > 2 and os.get_inheritable(fd):
                found.append(fd)
        except (ValueError, OSError):  # the listing's own descriptor, closed by now
            continue
    return found


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
    try:  # noqa: SIM105 (contextlib is no import of this module)
        os.replace(path, path.with_name(f"{stem}.try{attempts}.json"))
    except OSError:
        pass


def _set_aside(path: Path, directory: Path) -> None:
    aside = directory / "bad"
    aside.mkdir(mode=0o700, exist_ok=True)
    try:  # noqa: SIM105 (contextlib is no import of this module)
        os.replace(path, aside / path.name)
    except OSError:
        pass


def spool_hook(event: str, raw: bytes) -> int:
    """The hot path of `hivemind-app hook EVENT` for a spooled event: always exit status 0."""
    try:
        payload = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return _warn(f"hook input is not JSON ({exc}); ignored")
    if not isinstance(payload, dict):
        return _warn("hook input is not a JSON object; ignored")
    try:
        directory = spool_path()
        write_record(prepare(event, payload), directory)
        start_drainer(directory)
    except SpoolRefusal as exc:
        return _warn(str(exc))
    except Exception as exc:  # a hook reports, it never blocks Claude Code
        return _warn(f"{event} hook failed: {type(exc).__name__}: {exc}")
    return 0


def _warn(message: str) -> int:
    sys.stderr.write(f"hivemind: WARNING: {message}\n")
    return 0
