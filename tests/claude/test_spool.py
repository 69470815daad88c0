"""The hook spool: frequent hooks write one redacted file and return; a drainer applies them, in order, once.

Real console script, real files, real store; the background drainer is the one the hook starts itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import platformdirs
import pytest

from hivemind_app.claude.payloads import RESULT_LIMIT, TASK_LIMIT, redact_clipped
from hivemind_app.claude.spool import (
    drain,
    drain_lock,
    pending,
    prepare,
    spool_dir,
    user_config_dir,
    user_data_dir,
    write,
)
from hivemind_app.config import Settings, load_settings
from hivemind_app.hive import Hive
from tests.support.console import console_script

EXE = console_script()
PAYLOADS = Path(__file__).parent / "payloads"
TOKEN = "ghp_1234567890abcdefghijABCDEFGHIJ123456"


def tool_use(n: int, session: str = "s-spool") -> bytes:
    return json.dumps(
        {
            "session_id": session,
            "hook_event_name": "PostToolUse",
            "tool_name": "Bash",
            "tool_input": {"command": f"step {n}"},
            "tool_response": {"stdout": f"output {n} with {TOKEN}"},
        }
    ).encode()


def run_hook(event: str, data: bytes, **env: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([EXE, "hook", event], input=data, capture_output=True, env={**os.environ, **env}, timeout=60)


def drain_now() -> str:
    done = subprocess.run([EXE, "claude", "drain-hooks"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def queue(settings: Settings | None = None) -> list[Any]:
    with Hive(settings or Settings(), embedder=None) as hive:
        return hive.learning_entries(1000)


def test_a_spooled_hook_loads_neither_the_store_nor_the_settings_nor_the_cli(isolated_env: Path) -> None:
    code = (
        "import io, sys\n"
        "sys.argv = ['hivemind-app', 'hook', 'PostToolUse']\n"
        f"sys.stdin = io.TextIOWrapper(io.BytesIO({tool_use(1)!r}))\n"
        "import hivemind_app.claude.spool as spool\n"
        "spool.start_drainer = lambda directory: False\n"
        "from hivemind_app.entry import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('pydantic', 'click', 'apsw', 'numpy', 'redis', 'hivemind_app.hive') "
        "if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stderr
    assert not (isolated_env / "hive.db").exists()  # nothing but the spool was touched
    assert len(pending(spool_dir())) == 1


def test_nothing_unredacted_reaches_the_spool_and_what_is_spooled_is_private(isolated_env: Path) -> None:
    record = prepare("PostToolUse", json.loads(tool_use(1)))
    path = write(record)
    assert TOKEN not in path.read_text() and "[REDACTED:github-token]" in path.read_text()
    assert path.stat().st_mode & 0o777 == 0o600 and path.parent.stat().st_mode & 0o777 == 0o700
    assert "transcript_path" not in json.dumps(record)  # only the fields the handler reads are kept


def test_the_drainer_the_hook_starts_applies_every_event_by_itself_with_the_time_it_happened() -> None:
    before = time.time()
    for n in range(3):
        assert run_hook("PostToolUse", tool_use(n)).returncode == 0
    after = time.time()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (pending(spool_dir()) or len(queue()) < 3):
        time.sleep(0.2)
    entries = queue()
    assert sorted(e.tool_input for e in entries) == [json.dumps({"command": f"step {n}"}) for n in range(3)]
    assert all(before <= e.timestamp <= after for e in entries)  # spooled time, not drained time
    assert all(TOKEN not in e.result for e in entries)


def test_hooks_fired_at_once_are_each_applied_exactly_once() -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda n: run_hook("PostToolUse", tool_use(n)), range(20)))
    assert all(r.returncode == 0 and r.stderr == b"" for r in results)
    drain_now()
    inputs = sorted(e.tool_input for e in queue())
    assert inputs == sorted(json.dumps({"command": f"step {n}"}) for n in range(20))
    assert pending(spool_dir()) == []


def test_an_unreadable_spool_file_is_set_aside_and_the_rest_applied(isolated_env: Path) -> None:
    write(prepare("PostToolUse", json.loads(tool_use(1))))
    spool_dir().joinpath("00000000000000000001-1-PostToolUse.json").write_text("{torn")
    write(prepare("PostToolUse", json.loads(tool_use(2))))
    assert "applied 2 spooled hook events, 1 set aside in spool/bad/ (unreadable or refused)" in drain_now()
    assert len(queue()) == 2 and (spool_dir() / "bad" / "00000000000000000001-1-PostToolUse.json").exists()


def test_an_event_the_hive_refuses_is_set_aside_and_never_blocks_the_events_after_it(isolated_env: Path) -> None:
    write(prepare("UserPromptSubmit", {"session_id": "s" * 500, "prompt": "a session id far too long"}))
    write(prepare("PostToolUse", json.loads(tool_use(1))))
    assert "applied 1 spooled hook events, 1 set aside in spool/bad/ (unreadable or refused)" in drain_now()
    assert len(queue()) == 1 and pending(spool_dir()) == [] and len(list((spool_dir() / "bad").iterdir())) == 1


def test_an_event_that_fails_to_apply_stays_in_the_spool_for_the_next_drain(isolated_env: Path) -> None:
    write(prepare("PostToolUse", json.loads(tool_use(1))))
    applied: list[str] = []

    def failing(event: str, payload: dict[str, Any], at: float) -> None:
        raise OSError("disk full")

    with pytest.raises(OSError):
        drain(failing)
    assert len(pending(spool_dir())) == 1
    assert drain(lambda event, payload, at: applied.append(event)) == (1, 0)
    assert applied == ["PostToolUse"] and pending(spool_dir()) == []


def test_an_event_whose_apply_keeps_failing_is_set_aside_after_five_tries(isolated_env: Path) -> None:
    write(prepare("PostToolUse", json.loads(tool_use(1))))
    later = write(prepare("PostToolUse", json.loads(tool_use(2))))
    seen: list[str] = []

    def failing_first(event: str, payload: dict[str, Any], at: float) -> None:
        if payload["tool_input"] == {"command": "step 1"}:
            raise OSError("disk full")
        seen.append(payload["tool_input"]["command"])

    for _ in range(4):
        with pytest.raises(OSError):
            drain(failing_first)
        assert later.exists() and seen == []  # still in order: the first one is retried first
    assert drain(failing_first) == (1, 1) and seen == ["step 2"]
    assert [p.name.endswith(".try4.json") for p in (spool_dir() / "bad").iterdir()] == [True]


def test_session_start_waits_for_a_running_drainer_then_applies_what_was_spooled_before_it() -> None:
    import threading

    write(prepare("UserPromptSubmit", {"session_id": "s-order", "prompt": "rename the sync module"}))
    holding = threading.Event()

    def busy_drainer() -> None:  # holds the lock for a while, as a drainer at work does, and applies nothing
        with drain_lock(spool_dir()):
            holding.set()
            time.sleep(1.5)

    worker = threading.Thread(target=busy_drainer)
    worker.start()
    holding.wait(10)
    started = run_hook("SessionStart", (PAYLOADS / "session_start.json").read_bytes())
    worker.join()
    assert started.returncode == 0, started.stderr
    with Hive(Settings(), embedder=None) as hive:
        assert hive.get_context("s-order").current_task == "rename the sync module"


def test_with_spooling_off_a_hook_is_applied_before_it_returns() -> None:
    assert run_hook("PostToolUse", tool_use(1), HIVEMIND_HOOK_SPOOL="0").returncode == 0
    assert len(queue()) == 1 and not spool_dir().exists()


@pytest.mark.parametrize("where", ["env", "env with ~", "settings file", "settings file with ~", "default"])
def test_the_spool_lives_in_the_data_dir_the_settings_name(
    where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    if not where.startswith("env"):
        monkeypatch.delenv("HIVEMIND_DATA_DIR")
    if where == "env with ~":
        monkeypatch.setenv("HIVEMIND_DATA_DIR", "~/hive-data")
    if where.startswith("settings file"):
        config = tmp_path / "config.toml"
        config.write_text(f'data_dir = "{"~/from-file" if "~" in where else tmp_path / "from-file"}"\n')
        monkeypatch.setenv("HIVEMIND_CONFIG", str(config))
    if where == "default":
        monkeypatch.delenv("XDG_DATA_HOME", raising=False)
        monkeypatch.setenv("HIVEMIND_CONFIG", str(tmp_path / "none.toml"))
    assert spool_dir() == load_settings().data_dir / "spool"
    assert "~" not in str(spool_dir())


def _hook_imports(event: str, data: bytes) -> list[str]:
    """The costly modules a hook process imported (it runs as the console script does; no drainer started)."""
    code = (
        "import io, re, sys\n"
        f"sys.argv = ['hivemind-app', 'hook', {event!r}]\n"
        f"sys.stdin = io.TextIOWrapper(io.BytesIO({data!r}))\n"
        "import hivemind_app.claude.spool as spool\n"
        "spool.start_drainer = lambda directory: False\n"
        "from hivemind_app.entry import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "costly = ('pathlib', 'typing', 'subprocess', 'hashlib', 'platformdirs', 'contextlib', 'dataclasses')\n"
        "print(sorted(m for m in costly if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return list(json.loads(out.stdout.strip().replace("'", '"')))


def test_the_frequent_hooks_import_nothing_that_costs_milliseconds_where_the_data_dir_is_the_default(
    isolated_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HIVEMIND_DATA_DIR")  # as a user has it: found where platformdirs would put it
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    prompt = json.dumps({"session_id": "s-imports", "cwd": str(tmp_path), "prompt": "which port does staging use?"})
    assert _hook_imports("PostToolUse", tool_use(1)) == []
    assert _hook_imports("UserPromptSubmit", prompt.encode()) == []  # its lookup in the store included
    assert _hook_imports("Stop", json.dumps({"session_id": "s-imports"}).encode()) == []
    assert len(pending(Path(platformdirs.user_data_dir("hivemind-app")) / "spool")) == 3


@pytest.mark.parametrize(
    "xdg", [None, "", "   ", "relative/dir", "/abs/xdg", "/abs/trailing/"], ids=lambda x: f"XDG={x!r}"
)
@pytest.mark.parametrize("home", ["/home/someone", "relative-home", None], ids=lambda h: f"HOME={h!r}")
def test_the_default_data_and_config_dirs_are_where_platformdirs_puts_them(
    xdg: str | None, home: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in ("XDG_DATA_HOME", "XDG_CONFIG_HOME"):
        if xdg is None:
            monkeypatch.delenv(variable, raising=False)
        else:
            monkeypatch.setenv(variable, xdg)
    if home is None:
        monkeypatch.delenv("HOME", raising=False)
    else:
        monkeypatch.setenv("HOME", home)
    assert user_data_dir() == platformdirs.user_data_dir("hivemind-app")
    assert user_config_dir() == platformdirs.user_config_dir("hivemind-app")


def test_a_secret_cut_in_two_by_a_clip_never_reaches_the_spool_in_part(isolated_env: Path) -> None:
    margin = TASK_LIMIT + 25_000  # how far a string is redacted (payloads._REDACT_MARGIN past the limit)
    at_the_limit = "a" * (TASK_LIMIT - 10) + " " + TOKEN + " and more"
    at_the_margin = "a" * (margin - 20) + " " + TOKEN + " and more"  # the redactor would see only its start
    for prompt in (at_the_limit, at_the_margin):
        response = {"stdout": "b" * (RESULT_LIMIT - 10) + " " + TOKEN, "stderr": "c" * (margin - 20) + " " + TOKEN}
        for event, payload in (
            ("UserPromptSubmit", {"session_id": "s-clip", "prompt": prompt}),
            ("PostToolUse", {"session_id": "s-clip", "tool_name": "Bash", "tool_response": response}),
        ):
            written = write(prepare(event, payload)).read_text()
            assert TOKEN[:8] not in written, event  # not even its first characters


def test_the_background_drainer_holds_none_of_the_descriptors_the_hook_inherited(isolated_env: Path) -> None:
    import select

    read_end, write_end = os.pipe()  # as Claude Code might leave one of its pipes open to the hook
    try:
        proc = subprocess.run(
            [EXE, "hook", "PostToolUse"], input=tool_use(1), capture_output=True, timeout=60, pass_fds=(write_end,)
        )
        assert proc.returncode == 0, proc.stderr
        os.close(write_end)
        write_end = -1
        # the drainer it started runs for a second or more (it opens the store); the pipe must be closed already
        readable, _, _ = select.select([read_end], [], [], 0.5)
        assert readable and os.read(read_end, 1) == b"", "the drainer kept the hook's inherited pipe open"
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)
    drain_now()


def test_a_secret_cut_at_the_margin_stays_out_when_earlier_secrets_shrink_the_text_by_more_than_the_margin(
    isolated_env: Path,
) -> None:
    # each private key block (~2 KB) becomes a 23-character marker: a dozen of them move everything after them
    # ~25 KB to the left, so a token cut in two at the margin's edge would land inside the limit
    margin = TASK_LIMIT + 25_000  # how far a string is redacted (payloads._REDACT_MARGIN past the limit)
    lines = "\n".join(f"{n:02d}" + "MIIEowIBAAKCAQEA0Zx3b9QvT8pFk2Lr7Yc4Wn6HsJ1uE5aG" for n in range(42))
    key = f"-----BEGIN RSA PRIVATE KEY-----\n{lines}\n-----END RSA PRIVATE KEY-----\n"
    keys = key * 12
    prompt = keys + "a" * (margin - 21 - len(keys)) + " " + TOKEN + " and more"
    assert prompt.index(TOKEN) == margin - 20  # the redactor sees only its first 20 characters
    written = write(prepare("UserPromptSubmit", {"session_id": "s-keys", "prompt": prompt})).read_text()
    assert "PRIVATE KEY" not in written
    assert TOKEN[:8] not in written  # not even its first characters


def test_a_long_string_with_a_secret_early_is_still_cut_to_its_limit() -> None:
    # one private key block (~3 KB, a 23-character marker once redacted) in a string past limit + margin: the
    # redacted text is shorter than the margin, and dropping its last margin must not count from its end
    lines = "\n".join(f"{n:02d}MIIEowIBAAKCAQEA0Zx3b9QvT8pFk2Lr7Yc4Wn6HsJ1uE5aG" for n in range(60))
    key = f"-----BEGIN RSA PRIVATE KEY-----\n{lines}\n-----END RSA PRIVATE KEY-----\n"
    for limit in (200, TASK_LIMIT, RESULT_LIMIT):
        clipped = redact_clipped("before " + key + "a" * 40_000, limit)
        assert len(clipped) <= limit and "PRIVATE KEY" not in clipped
