"""`hivemind-app claude install / uninstall / doctor`: Claude Code's own files, kept intact around ours.

The commands run as the real console script, in an isolated HOME and CLAUDE_CONFIG_DIR; the real `claude` CLI
reading what they write is tests/claude/test_e2e_claude.py's part.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hivemind_app.claude.checkup import DISCOVER, answers_initialize, warm_handshakes
from hivemind_app.claude.registration import HOOKS, Paths, install, uninstall
from tests.cli.runner import assert_one_line_error
from tests.support.console import console_script

EXE = console_script()
EVENTS = ["SessionStart", "UserPromptSubmit", "PostToolUse", "PostToolUseFailure", "Stop", "SessionEnd", "PreCompact"]


def claude_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLAUDE")}
    return {
        **env,
        "HOME": str(tmp_path / "home"),
        "CLAUDE_CONFIG_DIR": str(tmp_path / "home" / ".claude"),
        "HIVEMIND_DATA_DIR": str(tmp_path / "data"),
        "HIVEMIND_CONFIG": str(tmp_path / "config.toml"),
    }


def run(tmp_path: Path, *args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EXE, "claude", *args], env={**claude_env(tmp_path), **env}, cwd=cwd or tmp_path,
                          capture_output=True, text=True, timeout=120)


def read(path: Path) -> Any:
    return json.loads(path.read_text())


USERS_OWN = {
    "model": "opus",
    "permissions": {"allow": ["Bash(git diff:*)"]},
    "enabledPlugins": {"other@market": True},
    "hooks": {
        "PostToolUse": [{"matcher": "Write", "hooks": [{"type": "command", "command": "prettier --write"}]}],
        "Notification": [{"hooks": [{"type": "command", "command": "notify-send hi"}]}],
    },
}


def test_install_registers_the_server_and_every_hook_with_this_installations_executable(tmp_path: Path) -> None:
    config = tmp_path / "home" / ".claude"
    config.mkdir(parents=True)
    (config / "settings.json").write_text(json.dumps(USERS_OWN))
    (config / ".claude.json").write_text(json.dumps({"numStartups": 3, "mcpServers": {"other": {"command": "x"}}}))

    first = run(tmp_path, "install", "--user")

    assert first.returncode == 0, first.stderr
    installed = read(config / "settings.json")
    assert {k: v for k, v in installed.items() if k != "hooks"} == {k: v for k, v in USERS_OWN.items() if k != "hooks"}
    assert installed["hooks"]["PostToolUse"][0] == USERS_OWN["hooks"]["PostToolUse"][0]  # the user's, first
    assert installed["hooks"]["Notification"] == USERS_OWN["hooks"]["Notification"]
    for event in EVENTS:
        ours = installed["hooks"][event][-1]
        assert ours["hooks"][0]["command"] == f"{EXE} hook {event}"
        assert ours.get("matcher") == ("*" if event.startswith("PostToolUse") else None)
        assert ours["hooks"][0].get("async", False) is (event == "SessionEnd")
    state = read(config / ".claude.json")
    assert state["numStartups"] == 3 and state["mcpServers"]["other"] == {"command": "x"}
    assert state["mcpServers"]["hivemind"] == {"type": "stdio", "command": EXE, "args": ["mcp"], "env": {}}
    assert "MCP server 'hivemind' registered" in first.stdout and "PreCompact" in first.stdout

    second = run(tmp_path, "install")
    assert second.stdout.count("nothing changed") == 2, second.stdout
    assert read(config / "settings.json") == installed and read(config / ".claude.json") == state


def test_uninstall_removes_exactly_what_install_added(tmp_path: Path) -> None:
    config = tmp_path / "home" / ".claude"
    config.mkdir(parents=True)
    (config / "settings.json").write_text(json.dumps(USERS_OWN))
    (config / ".claude.json").write_text(json.dumps({"numStartups": 3}))

    assert run(tmp_path, "install").returncode == 0
    removed = run(tmp_path, "uninstall")

    assert removed.returncode == 0, removed.stderr
    assert read(config / "settings.json") == USERS_OWN
    assert read(config / ".claude.json") == {"numStartups": 3}
    again = run(tmp_path, "uninstall")
    assert "no hivemind hooks" in again.stdout and "no hivemind MCP server" in again.stdout


def test_a_project_install_writes_the_projects_files_and_uninstall_deletes_files_left_empty(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()

    assert run(tmp_path, "install", "--project", cwd=project).returncode == 0
    assert read(project / ".mcp.json")["mcpServers"]["hivemind"]["command"] == EXE
    assert read(project / ".claude" / "settings.json")["hooks"]["Stop"][0]["hooks"][0]["command"] == f"{EXE} hook Stop"
    assert not (tmp_path / "home" / ".claude" / "settings.json").exists()  # the user's files are not touched

    assert run(tmp_path, "uninstall", "--project", cwd=project).returncode == 0
    assert not (project / ".mcp.json").exists() and not (project / ".claude" / "settings.json").exists()


def test_hooks_an_older_or_other_installation_wrote_are_replaced_not_duplicated(tmp_path: Path) -> None:
    config = tmp_path / "home" / ".claude"
    config.mkdir(parents=True)
    stop = [
        {"hooks": [{"type": "command", "command": "hivemind-app hook Stop"}]},
        {"hooks": [{"type": "command", "command": "'/opt/old venv/bin/python' -m hivemind_app hook Stop"}]},
        {"hooks": [{"type": "command", "command": "notify-send hook done"}]},
    ]
    (config / "settings.json").write_text(json.dumps({"hooks": {"Stop": stop}}))
    older_server = {"hivemind": {"command": "/old/hivemind-app", "args": ["mcp"]}}
    (config / ".claude.json").write_text(json.dumps({"mcpServers": older_server}))

    install(Paths("user", config / "settings.json", config / ".claude.json"), [EXE])

    commands = [b["hooks"][0]["command"] for b in read(config / "settings.json")["hooks"]["Stop"]]
    assert commands == ["notify-send hook done", f"{EXE} hook Stop"]
    assert read(config / ".claude.json")["mcpServers"]["hivemind"]["command"] == EXE


def test_a_server_named_hivemind_that_is_not_ours_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    config = tmp_path / "home" / ".claude"
    config.mkdir(parents=True)
    foreign = {"mcpServers": {"hivemind": {"command": "npx", "args": ["some-other-hivemind"]}}}
    (config / ".claude.json").write_text(json.dumps(foreign))

    result = run(tmp_path, "install")

    assert_one_line_error(result, 78, "not hivemind-app")
    assert read(config / ".claude.json") == foreign
    assert not (config / "settings.json").exists()  # the hooks were not half-installed either


@pytest.mark.parametrize("mode", [0o600, 0o640])
def test_claude_json_keeps_its_mode_gets_a_backup_and_a_leftover_temp_name_is_no_obstacle(
        tmp_path: Path, mode: int) -> None:
    config = tmp_path / "home" / ".claude"
    config.mkdir(parents=True)
    state = config / ".claude.json"
    state.write_text(json.dumps({"oauthAccount": {"emailAddress": "me@example.com"}}))
    state.chmod(mode)
    (config / "..claude.json.hivemind-tmp").mkdir()  # the fixed temp name an older version used is taken
    old_umask = os.umask(0o022)
    try:
        (change, _) = install(Paths("user", config / "settings.json", state), [EXE])
    finally:
        os.umask(old_umask)

    assert state.stat().st_mode & 0o777 == mode
    assert change.backup is not None and read(change.backup) == {"oauthAccount": {"emailAddress": "me@example.com"}}
    assert change.backup.stat().st_mode & 0o777 == mode
    assert "previous file saved as .claude.json.bak-" in change.describe()
    assert not [p for p in config.iterdir() if p.is_file() and p.name.endswith("hivemind-tmp")]


@pytest.mark.parametrize("content", ["{broken", "[1, 2]", '{"hooks": []}'])
def test_a_settings_file_that_is_not_what_claude_code_reads_is_refused_unchanged(tmp_path: Path, content: str) -> None:
    project = tmp_path / "project"
    (project / ".claude").mkdir(parents=True)
    (project / ".claude" / "settings.json").write_text(content)

    result = run(tmp_path, "install", "--project", cwd=project)

    assert result.returncode == 78 and "nothing was changed" in result.stderr, result.stderr
    assert (project / ".claude" / "settings.json").read_text() == content
    assert not (project / ".mcp.json").exists()


@pytest.mark.parametrize("command", ["install", "install-hooks"])
def test_install_refuses_beside_the_enabled_plugin_unless_forced(tmp_path: Path, command: str) -> None:
    config = tmp_path / "home" / ".claude"
    config.mkdir(parents=True)
    with_plugin = {"enabledPlugins": {"hivemind@hivemind-app": True}}
    (config / "settings.json").write_text(json.dumps(with_plugin))

    refused = run(tmp_path, command)

    assert_one_line_error(refused, 78, "the hivemind plugin is enabled (hivemind@hivemind-app)")
    assert "--force" in refused.stderr and "twice" in refused.stderr
    assert read(config / "settings.json") == with_plugin and not (config / ".claude.json").exists()
    forced = run(tmp_path, command, "--force")
    assert forced.returncode == 0, forced.stderr
    assert read(config / "settings.json")["hooks"]["Stop"][-1]["hooks"][0]["command"] == f"{EXE} hook Stop"


def test_an_event_that_is_not_a_list_is_refused_with_nothing_changed(tmp_path: Path) -> None:
    config = tmp_path / "home" / ".claude"
    config.mkdir(parents=True)
    odd = {"hooks": {"Stop": {"hooks": [{"type": "command", "command": "my-own-stop-hook"}]}}}
    (config / "settings.json").write_text(json.dumps(odd))

    result = run(tmp_path, "install")

    assert_one_line_error(result, 78, "hooks.Stop is not a list")
    assert read(config / "settings.json") == odd and not (config / ".claude.json").exists()


def test_a_block_holding_our_hook_and_the_users_keeps_the_users_through_install_and_uninstall(tmp_path: Path) -> None:
    paths = Paths("user", tmp_path / "settings.json", tmp_path / "claude.json")
    mine = {"type": "command", "command": "my-own-stop-hook"}
    shared = {"matcher": "", "hooks": [{"type": "command", "command": "/old/bin/hivemind-app hook Stop"}, mine]}
    paths.settings.write_text(json.dumps({"hooks": {"Stop": [shared]}}))

    install(paths, [EXE])
    installed = read(paths.settings)["hooks"]["Stop"]
    uninstall(paths)

    assert installed[0] == {"matcher": "", "hooks": [mine]} and len(installed) == 2
    assert [h["command"] for h in installed[1]["hooks"]] == [f"{EXE} hook Stop"]
    assert read(paths.settings) == {"hooks": {"Stop": [{"matcher": "", "hooks": [mine]}]}}


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)
_hook = st.fixed_dictionaries({"type": st.just("command"), "command": st.text(max_size=20)})
_settings = st.dictionaries(st.text(max_size=10).filter(lambda k: k != "hooks"), _json, max_size=4) | st.builds(
    lambda other, hooks: {**other, "hooks": hooks},
    st.dictionaries(st.text(max_size=10).filter(lambda k: k != "hooks"), _json, max_size=3),
    st.dictionaries(
        st.sampled_from([*EVENTS, "Notification", "PreToolUse"]),
        st.lists(st.fixed_dictionaries({"hooks": st.lists(_hook, min_size=1, max_size=2)}), min_size=1, max_size=2),
        min_size=1,  # an empty `hooks` (or event list) before install is the one thing uninstall cannot tell apart
        max_size=3,
    ),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(existing=_settings, servers=st.dictionaries(st.text(min_size=1, max_size=8).filter(lambda k: k != "hivemind"),
                                                   st.fixed_dictionaries({"command": st.text(max_size=8)}), max_size=2))
def test_install_then_uninstall_gives_back_any_settings_file_as_it_was(
    tmp_path: Path, existing: dict[str, Any], servers: dict[str, Any]
) -> None:
    paths = Paths("user", tmp_path / "settings.json", tmp_path / "claude.json")
    paths.settings.write_text(json.dumps(existing))
    state = {"userID": "u", **({"mcpServers": servers} if servers else {})}
    paths.mcp.write_text(json.dumps(state))

    install(paths, ["/opt/hm/bin/hivemind-app"])
    installed = read(paths.settings)
    assert all(installed["hooks"][spec.event][-1]["hooks"][0]["command"].startswith("/opt/hm/") for spec in HOOKS)
    uninstall(paths)

    assert read(paths.settings) == existing
    assert read(paths.mcp) == state


# ------------------------------------------------------------------------------------------------------ doctor


def doctor(tmp_path: Path, cwd: Path | None = None, **env: str) -> tuple[int, dict[str, dict[str, Any]]]:
    result = run(tmp_path, "doctor", "--json", cwd=cwd, **env)
    report = json.loads(result.stdout)
    checks: dict[str, dict[str, Any]] = {}
    for check in report["checks"]:
        checks.setdefault(check["name"], check)
    return result.returncode, checks


def test_doctor_passes_after_install_and_finds_the_server_answering(tmp_path: Path) -> None:
    assert run(tmp_path, "install").returncode == 0

    status, checks = doctor(tmp_path)

    assert status == 0, checks
    assert all(checks[f"hook {event}"]["ok"] for event in EVENTS)
    assert "answered initialize in" in checks["mcp server"]["detail"]
    assert checks["hook spool"]["ok"] and str(tmp_path / "data" / "spool") in checks["hook spool"]["detail"]


def test_doctor_says_what_to_do_when_nothing_is_installed(tmp_path: Path) -> None:
    status, checks = doctor(tmp_path)
    assert status == 1
    assert "hivemind-app claude install" in checks["hook PostToolUse"]["detail"]
    assert "hivemind-app claude install" in checks["mcp server"]["detail"]


def test_doctor_finds_hooks_pointing_at_a_missing_executable_and_a_server_that_does_not_answer(tmp_path: Path) -> None:
    config = tmp_path / "home" / ".claude"
    config.mkdir(parents=True)
    paths = Paths("user", config / "settings.json", config / ".claude.json")
    install(paths, ["/gone/venv/bin/hivemind-app"])
    silent = tmp_path / "bin" / "hivemind-app"  # starts and exits without answering
    silent.parent.mkdir()
    silent.write_text("#!/bin/sh\nexit 3\n")
    silent.chmod(0o755)
    state = read(config / ".claude.json")
    state["mcpServers"]["hivemind"]["command"] = str(silent)
    (config / ".claude.json").write_text(json.dumps(state))

    status, checks = doctor(tmp_path)

    assert status == 1
    assert "/gone/venv/bin/hivemind-app does not exist" in checks["hook Stop"]["detail"]
    assert "claude install" in checks["hook Stop"]["detail"]
    assert "exited with status 3 instead of answering initialize" in checks["mcp server"]["detail"]


def test_doctor_fails_a_server_that_answers_the_handshake_from_its_cache_then_dies_on_bad_settings(
        tmp_path: Path) -> None:
    assert run(tmp_path, "install").returncode == 0
    assert doctor(tmp_path)[0] == 0
    assert (tmp_path / "data" / "mcp-handshake.json").exists()  # the next start answers initialize at once

    status, checks = doctor(tmp_path, HIVEMIND_SEARCH__DEFAULT_LIMIT="abc")

    assert status == 1, checks
    detail = checks["mcp server"]["detail"]
    assert "instead of answering tools/list after initialize" in detail and "default_limit" in detail.lower()


def test_doctor_reports_a_hivemind_server_left_in_a_projects_local_scope_with_how_to_remove_it(
        tmp_path: Path) -> None:
    config = tmp_path / "home" / ".claude"
    install(Paths("user", config / "settings.json", config / ".claude.json"), [EXE])
    state = read(config / ".claude.json")
    state["projects"] = {
        "/src/old": {"mcpServers": {"hivemind": {"command": "/gone/bin/hivemind-app", "args": ["mcp"]}}},
        "/src/fine": {"mcpServers": {"hivemind": {"command": EXE, "args": ["mcp"]}}},
        "/src/none": {"mcpServers": {"other": {"command": "x"}}},
    }
    (config / ".claude.json").write_text(json.dumps(state))

    result = run(tmp_path, "doctor", "--json")

    local = [c for c in json.loads(result.stdout)["checks"] if c["name"] == "mcp server (local)"]
    assert result.returncode == 1 and len(local) == 2, local
    gone, fine = sorted(local, key=lambda c: "/src/old" not in c["detail"])
    assert not gone["ok"] and "/gone/bin/hivemind-app does not exist" in gone["detail"]
    assert "cd /src/old && claude mcp remove hivemind --scope local" in gone["detail"]
    assert fine["ok"] and not fine["required"] and "overrides the user-scope server" in fine["detail"]


def test_warming_goes_on_to_initialize_when_the_discover_probe_fails(tmp_path: Path) -> None:
    seen = tmp_path / "seen"
    server = tmp_path / "server"  # dies on the probe, records every request it reads
    server.write_text(f'#!/bin/sh\nread request\necho "$request" >> "{seen}"\nexit 1\n')
    server.chmod(0o755)

    warm_handshakes([str(server)])

    assert [json.loads(line)["method"] for line in seen.read_text().splitlines()] == ["server/discover", "initialize"]


def test_a_server_that_writes_much_to_stderr_before_answering_is_not_blocked_by_doctor(tmp_path: Path) -> None:
    server = tmp_path / "server"  # 200 kB of log first: more than a pipe holds
    server.write_text("#!/bin/sh\nread request\nhead -c 200000 /dev/zero | tr '\\0' x >&2\n"
                      'echo \'{"jsonrpc": "2.0", "id": 0, "result": {}}\'\n')
    server.chmod(0o755)

    assert answers_initialize([str(server)], dict(os.environ), timeout=5, request=DISCOVER) < 5


def test_doctor_reports_hooks_installed_both_by_the_plugin_and_by_claude_install(tmp_path: Path) -> None:
    config = tmp_path / "home" / ".claude"
    install(Paths("user", config / "settings.json", config / ".claude.json"), [EXE])
    settings_path = config / "settings.json"
    settings_path.write_text(json.dumps({**read(settings_path), "enabledPlugins": {"hivemind@hivemind-app": True}}))

    status, checks = doctor(tmp_path)

    assert status == 1
    assert "installed 2 times" in checks["hook Stop"]["detail"] and "uninstall" in checks["hook Stop"]["detail"]


def test_doctor_finds_a_spool_it_cannot_write(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("a file where the data dir should be")  # unwritable even for root

    status, checks = doctor(tmp_path)

    assert status == 1
    assert "not writable" in checks["hook spool"]["detail"] and "HIVEMIND_DATA_DIR" in checks["hook spool"]["detail"]


def test_doctor_judges_the_server_by_its_starts_after_the_first_one_that_keeps_the_handshake(tmp_path: Path) -> None:
    config = tmp_path / "home" / ".claude"
    config.mkdir(parents=True)
    install(Paths("user", config / "settings.json", config / ".claude.json"), [EXE])
    slow_once = tmp_path / "bin" / "hivemind-app"  # late the first time only, like a start with nothing kept
    slow_once.parent.mkdir()
    slow_once.write_text(
        "#!/bin/sh\nread request\n"
        f'if [ ! -e "{tmp_path}/started" ]; then touch "{tmp_path}/started"; sleep 3.5; fi\n'
        'echo \'{"jsonrpc": "2.0", "id": 1, "result": {}}\'\n'
        'read initialized; read tools_list\n'
        'echo \'{"jsonrpc": "2.0", "id": 2, "result": {"tools": [{"name": "memory_store"}]}}\'\n'
    )
    slow_once.chmod(0o755)
    state = read(config / ".claude.json")
    state["mcpServers"]["hivemind"]["command"] = str(slow_once)
    (config / ".claude.json").write_text(json.dumps(state))

    status, checks = doctor(tmp_path)

    assert status == 0, checks
    assert "answered initialize in" in checks["mcp server"]["detail"]
    assert "its first start, with no handshake kept yet, took 3." in checks["mcp server"]["detail"]
