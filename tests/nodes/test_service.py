"""`hivemind-app service`: the systemd user unit, filled in with this installation's executable."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from hivemind_app.install import Installation
from hivemind_app.nodes.service import unit_text
from tests.support.console import console_script

EXE = console_script()


def run(*args: str, config_home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_CONFIG_HOME": str(config_home)}
    return subprocess.run([EXE, "service", *args], env=env, capture_output=True, text=True, timeout=60)


def test_install_writes_a_unit_that_starts_this_installation_and_a_second_install_changes_nothing(
    tmp_path: Path,
) -> None:
    first = run("install", config_home=tmp_path)
    unit = tmp_path / "systemd" / "user" / "hivemind-node.service"
    assert first.returncode == 0 and f"wrote {unit}" in first.stdout, first.stderr
    assert "systemctl --user enable --now hivemind-node" in first.stdout
    text = unit.read_text()
    assert f"ExecStart={EXE} node\n" in text and "@EXECUTABLE@" not in text
    assert run("show", config_home=tmp_path).stdout == text

    second = run("install", config_home=tmp_path)
    assert f"unchanged: {unit}" in second.stdout and unit.read_text() == text

    removed = run("uninstall", config_home=tmp_path)
    assert f"removed {unit}" in removed.stdout and not unit.exists()
    assert "no unit installed" in run("uninstall", config_home=tmp_path).stdout


def test_an_executable_path_with_spaces_or_percent_signs_is_quoted_for_systemd(tmp_path: Path) -> None:
    odd = tmp_path / "my 100% venv"
    (odd / "bin").mkdir(parents=True)
    (odd / "bin" / "hivemind-app").write_text("#!/bin/sh\n")
    text = unit_text(Installation("venv", odd, odd / "bin" / "python"))
    assert f"ExecStart='{tmp_path}/my 100%% venv/bin/hivemind-app' node\n" in text
