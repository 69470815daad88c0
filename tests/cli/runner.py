"""Run the real `hivemind-app` console script as a user would, and check its one-line errors."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.support.console import console_script

EXE = console_script()


def run(
    *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    assert EXE is not None
    proc = subprocess.run(
        [EXE, *args], input=stdin, capture_output=True, env={**os.environ, **(env or {})}, timeout=240, cwd=cwd
    )
    return subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout.decode(), proc.stderr.decode())


def assert_one_line_error(proc: subprocess.CompletedProcess[str], code: int, fragment: str) -> None:
    assert proc.returncode == code, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], proc.stderr
