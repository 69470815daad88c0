"""Claude Code hooks through the real console script, fed payloads in Claude Code's documented format."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from hivemind_app.config import Settings
from hivemind_app.hive import Hive
from hivemind_app.hub.keys import Keys
from hivemind_app.records.learning import LearningEntry
from tests.support.console import console_script
from tests.support.redis_server import RedisServer, free_port

EXE = console_script()
PAYLOADS = Path(__file__).parent / "payloads"
SESSION = "9f1c2a7e-3b4d-4e5f-8a9b-0c1d2e3f4a5b"


def learning_entries(settings: Settings) -> list[LearningEntry]:
    """This node's learning queue, newest first, as the facade lists it."""
    with Hive(settings, embedder=None) as hive:
        return hive.learning_entries()


def hook(event: str, payload: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return _run(event, (PAYLOADS / payload).read_bytes(), env)


def _run(event: str, data: bytes, env: dict[str, str] | None) -> subprocess.CompletedProcess[str]:
    """The hook as Claude Code runs it, then its effect applied: a spooled event is drained (waiting for the
    drainer the hook started), so what follows reads the store as it will be."""
    environ = {**os.environ, **(env or {})}
    proc = subprocess.run([EXE, "hook", event], input=data, capture_output=True, env=environ, timeout=60)
    subprocess.run([EXE, "claude", "drain-hooks"], capture_output=True, env=environ, timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout.decode(), proc.stderr.decode())


def test_a_session_is_recorded_from_start_to_stop_with_secrets_redacted(
    hive: Hive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "hivemind-app"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "remote", "add", "origin", "git@github.com:me/hivemind-app"], check=True)
    monkeypatch.setenv("CLAUDE_PROJECT_DIR", str(repo))
    hive.store_memory(
        "hivemind-app uses apsw because the system sqlite3 cannot load extensions", project="github.com/me/hivemind-app"
    )
    hive.store_memory("Nightly backups of the photo library run at 02:00 on the NAS", project="github.com/me/photos")

    started = hook("SessionStart", "session_start.json")
    assert started.returncode == 0, started.stderr
    context = json.loads(started.stdout)["hookSpecificOutput"]
    assert context["hookEventName"] == "SessionStart"
    assert "apsw" in context["additionalContext"] and len(context["additionalContext"]) <= 1500
    assert "photo library" not in context["additionalContext"]  # only what concerns this project

    assert hook("UserPromptSubmit", "user_prompt_submit.json").returncode == 0
    assert hook("PostToolUse", "post_tool_use_edit.json").returncode == 0
    assert hook("PostToolUse", "post_tool_use_bash_failed.json").returncode == 0
    assert hook("Stop", "stop.json").returncode == 0

    session = hive.get_context(SESSION)
    entries = list(reversed(learning_entries(hive.settings)))
    assert session.current_task.startswith("Fix the flaky reconnect test")
    assert "ghp_" not in session.current_task and "[REDACTED:github-token]" in session.current_task
    assert session.files == ("/home/me/src/hivemind-app/tests/hub/test_sync.py",)
    assert session.closed_at is not None
    assert [(e.tool_used, e.success) for e in entries] == [("Edit", True), ("Bash", False)]
    assert entries[0].user_query == session.current_task
    assert "hunter22" not in entries[1].tool_input and "[REDACTED:url-password]" in entries[1].tool_input
    assert entries[1].session_id == SESSION


def test_a_failed_tool_and_a_written_file_are_recorded_without_their_secrets() -> None:
    assert hook("UserPromptSubmit", "user_prompt_submit.json").returncode == 0
    for name, event in [
        ("post_tool_use_write.json", "PostToolUse"),
        ("post_tool_use_failure.json", "PostToolUseFailure"),
    ]:
        result = hook(event, name)
        assert result.returncode == 0 and result.stderr == "", result.stderr
    assert hook("SessionEnd", "session_end.json").returncode == 0

    with Hive(Settings()) as hive:
        session = hive.get_context(SESSION)
    write, failed = reversed(learning_entries(Settings()))
    assert session.files == ("/home/me/src/hivemind-app/.env.example",) and session.closed_at is not None
    assert (write.tool_used, write.success) == ("Write", True)
    assert (failed.tool_used, failed.success) == ("Bash", False)
    assert "Failed to connect" in failed.result
    stored = write.tool_input + write.result + failed.tool_input + failed.result
    for secret in ("changeme", "sk-proj-abcdef", "abcdef0123456789abcdef"):
        assert secret not in stored
    assert "[REDACTED:url-password]" in write.tool_input and "[REDACTED:bearer]" in failed.tool_input


def test_a_huge_tool_output_is_truncated_not_refused() -> None:
    payload = json.loads((PAYLOADS / "post_tool_use_edit.json").read_text())
    payload["tool_input"]["new_string"] = "x = 1\n" * 400_000  # 2.4 MB, over the store's text limit
    payload["tool_response"] = {"filePath": payload["tool_input"]["file_path"], "diff": "+x = 1\n" * 400_000}
    result = _run("PostToolUse", json.dumps(payload).encode(), None)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    (entry,) = learning_entries(Settings())
    assert entry.tool_used == "Edit" and 0 < len(entry.tool_input) <= 8000 and 0 < len(entry.result) <= 4000


def test_tool_uses_recorded_while_redis_was_away_reach_it_when_it_is_back(tmp_path: Path) -> None:
    port = free_port()  # nothing listens here yet: connections are refused
    env = {"HIVEMIND_REDIS__URL": f"redis://127.0.0.1:{port}/0"}
    for event, name in [("UserPromptSubmit", "user_prompt_submit.json"), ("PostToolUse", "post_tool_use_edit.json")]:
        started = time.monotonic()
        result = hook(event, name, env)
        assert result.returncode == 0 and result.stdout == ""
        assert time.monotonic() - started < 5  # interpreter start included; bench/mcp.py measures the real figure
    assert [e.tool_used for e in learning_entries(Settings())] == ["Edit"]

    server = RedisServer(tmp_path / "redis", port=port)
    server.start()
    try:
        with Hive(Settings(redis={"url": server.url})) as hive:
            report = hive.sync(force=True)
        assert report is not None and report.online and report.pushed >= 2
        client = redis.Redis.from_url(server.url, decode_responses=True)
        try:
            queue = Keys(Settings().redis.prefix).learning_queue
            assert [f["tool_used"] for _, f in client.xrange(queue)] == ["Edit"]
        finally:
            client.close()
    finally:
        server.stop()


def test_hooks_never_load_a_model_so_they_stay_fast(hive: Hive) -> None:
    # Speed itself is measured in bench/mcp.py; what keeps it fast is that no hook imports torch.
    code = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from hivemind_app.claude.hooks import handle\n"
        "from hivemind_app.hive import Hive\n"
        f"payloads = Path({str(PAYLOADS)!r})\n"
        "with Hive() as hive:\n"
        "    for event, name in [('SessionStart', 'session_start.json'),\n"
        "                        ('UserPromptSubmit', 'user_prompt_submit.json'),\n"
        "                        ('PostToolUse', 'post_tool_use_edit.json'), ('Stop', 'stop.json')]:\n"
        "        handle(hive, event, json.loads((payloads / name).read_text()))\n"
        "print(json.dumps([m for m in ('torch', 'sentence_transformers') if m in sys.modules]))\n"
    )
    hive.store_memory("hivemind-app uses apsw because the system sqlite3 cannot load extensions")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


@pytest.mark.parametrize(
    ("event", "payload", "warning"),
    [
        ("PostToolUse", b"{not json", "not JSON"),
        ("PostToolUse", b"[1, 2, 3]", "not a JSON object"),
        ("PostToolUse", b"\xff\xfe binary", "not JSON"),
        ("PostToolUse", b'{"session_id": "s", "tool_input": {}}', "no tool_name"),
        ("UserPromptSubmit", b'{"prompt": "no session id"}', "no session_id"),
        ("Notification", b'{"session_id": "s"}', "unknown hook event"),
    ],
)
def test_bad_payloads_are_a_warning_and_write_nothing(event: str, payload: bytes, warning: str) -> None:
    result = _run(event, payload, None)
    assert result.returncode == 0
    assert warning in result.stderr and result.stdout == ""
    with Hive(Settings()) as hive:
        status = hive.status()
    assert status.learning_queue == 0 and status.sessions == 0


def test_a_hook_that_fails_on_our_side_still_exits_zero() -> None:
    broken = {"HIVEMIND_DATA_DIR": "/proc/no-such-dir/hivemind"}  # the store cannot be created here
    result = hook("PostToolUse", "post_tool_use_edit.json", env=broken)
    assert result.returncode == 0 and "PostToolUse hook failed" in result.stderr


def test_install_hooks_keeps_the_users_settings_and_is_idempotent(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = home / ".claude" / "settings.json"
    settings.parent.mkdir(parents=True)
    existing = {
        "model": "opus",
        "permissions": {"allow": ["Bash(git diff:*)"]},
        "hooks": {"PostToolUse": [{"matcher": "Write", "hooks": [{"type": "command", "command": "prettier --write"}]}]},
    }
    settings.write_text(json.dumps(existing))
    env = {**os.environ, "HOME": str(home)}

    first = subprocess.run([EXE, "claude", "install-hooks", "--user"], env=env, capture_output=True, text=True)
    assert first.returncode == 0 and "hooks installed" in first.stdout, first.stderr
    installed = json.loads(settings.read_text())
    assert installed["model"] == "opus" and installed["permissions"] == existing["permissions"]
    post = installed["hooks"]["PostToolUse"]
    assert post[0] == existing["hooks"]["PostToolUse"][0]  # the user's own hook is kept, first
    assert post[1]["hooks"][0]["command"] == f"{EXE} hook PostToolUse"  # this installation's own executable
    for event in ("SessionStart", "UserPromptSubmit", "Stop", "SessionEnd"):
        assert installed["hooks"][event][-1]["hooks"][0]["command"] == f"{EXE} hook {event}"
    # the one-step install in the same scope, never `claude mcp add` (a local-scope entry that shadows it)
    assert f"{EXE} claude install --user" in first.stdout and "claude mcp add" not in first.stdout
    backups = list(settings.parent.glob("settings.json.bak-*"))
    assert len(backups) == 1 and json.loads(backups[0].read_text()) == existing

    second = subprocess.run([EXE, "claude", "install-hooks"], env=env, capture_output=True, text=True)
    assert "nothing changed" in second.stdout
    assert json.loads(settings.read_text()) == installed


def test_install_hooks_replaces_hooks_an_older_or_other_installation_wrote(tmp_path: Path) -> None:
    settings = tmp_path / "home" / ".claude" / "settings.json"
    settings.parent.mkdir(parents=True)
    older = {
        "hooks": {
            "Stop": [
                {"hooks": [{"type": "command", "command": "hivemind-app hook Stop"}]},
                {"hooks": [{"type": "command", "command": "'/opt/old venv/bin/python' -m hivemind_app hook Stop"}]},
                {"hooks": [{"type": "command", "command": "notify-send hook done"}]},
            ]
        }
    }
    settings.write_text(json.dumps(older))
    env = {**os.environ, "HOME": str(tmp_path / "home")}

    result = subprocess.run([EXE, "claude", "install-hooks"], env=env, capture_output=True, text=True)

    assert result.returncode == 0, result.stderr
    stop = [b["hooks"][0]["command"] for b in json.loads(settings.read_text())["hooks"]["Stop"]]
    assert stop == ["notify-send hook done", f"{EXE} hook Stop"]


def test_install_hooks_refuses_a_settings_file_that_is_not_json(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / ".claude").mkdir(parents=True)
    (project / ".claude" / "settings.json").write_text("{broken")
    result = subprocess.run([EXE, "claude", "install-hooks", "--project"], cwd=project, capture_output=True, text=True)
    assert result.returncode == 78 and "not valid JSON" in result.stderr
    assert (project / ".claude" / "settings.json").read_text() == "{broken"


def test_with_a_hub_tool_uses_reach_the_learning_queue_in_redis(redis_server: RedisServer) -> None:
    env = {"HIVEMIND_REDIS__URL": redis_server.url}
    assert hook("UserPromptSubmit", "user_prompt_submit.json", env=env).returncode == 0
    assert hook("PostToolUse", "post_tool_use_edit.json", env=env).returncode == 0
    assert hook("PostToolUse", "post_tool_use_bash_failed.json", env=env).returncode == 0
    keys = Keys(Settings().redis.prefix)
    entries = [
        {k.decode(): v.decode() for k, v in fields.items()}
        for _, fields in redis_server.client().xrange(keys.learning_queue)
    ]
    assert [(e["tool_used"], e["success"]) for e in entries] == [("Edit", "1"), ("Bash", "0")]
    assert entries[0]["user_query"].startswith("Fix the flaky reconnect test")
    assert "ghp_" not in entries[0]["user_query"] and "hunter22" not in entries[1]["tool_input"]
    session = redis_server.client().hgetall(keys.session(SESSION))
    assert json.loads(session[b"files"]) == ["/home/me/src/hivemind-app/tests/hub/test_sync.py"]


def test_with_the_hub_down_a_hook_records_locally_and_exits_zero(tmp_path: Path) -> None:
    from tests.support.redis_server import free_port

    url = f"redis://127.0.0.1:{free_port()}/0"
    result = hook("PostToolUse", "post_tool_use_edit.json", env={"HIVEMIND_REDIS__URL": url})
    assert result.returncode == 0 and result.stderr == ""  # spooled: the hook itself never waits on the network
    with Hive(Settings(redis={"url": url})) as hive:
        status = hive.status()
    assert status.learning_queue == 1 and status.sync.outbox >= 1 and not status.sync.online


def test_a_hook_handled_directly_keeps_no_part_of_a_secret_cut_at_the_redaction_margin(hive: Hive) -> None:
    """The drainer applies spooled payloads, already clipped; the hook command hands Claude Code's own payload
    to the same handler: a dozen private-key blocks (~2 KB each, a 23-character marker once redacted) before a
    token cut at the margin's edge must not slide that token's start inside the limit."""
    from hivemind_app.claude.hooks import handle
    from hivemind_app.claude.payloads import RESULT_LIMIT, TASK_LIMIT

    token = "ghp_1234567890abcdefghijABCDEFGHIJ123456"
    lines = "\n".join(f"{n:02d}MIIEowIBAAKCAQEA0Zx3b9QvT8pFk2Lr7Yc4Wn6HsJ1uE5aG" for n in range(42))
    keys = f"-----BEGIN RSA PRIVATE KEY-----\n{lines}\n-----END RSA PRIVATE KEY-----\n" * 12

    def cut_at_the_margin(limit: int) -> str:
        margin = limit + 25_000  # payloads._REDACT_MARGIN past the limit
        return keys + "a" * (margin - 21 - len(keys)) + " " + token + " and more"

    handle(hive, "UserPromptSubmit", {"session_id": "s-margin", "prompt": cut_at_the_margin(TASK_LIMIT)})
    response = {"stdout": cut_at_the_margin(RESULT_LIMIT)}
    handle(hive, "PostToolUse", {"session_id": "s-margin", "tool_name": "Bash", "tool_response": response})
    task = hive.get_context("s-margin").current_task
    (entry,) = hive.learning_entries()
    assert task is not None and len(task) <= TASK_LIMIT and len(entry.result) <= RESULT_LIMIT
    for kept in (task, entry.user_query, entry.result):
        assert token[:8] not in kept and "PRIVATE KEY" not in kept
