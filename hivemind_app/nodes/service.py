"""The systemd user unit that runs this machine's node headless, filled in for this installation.

The template ships inside the package (`hivemind-node.service`, beside this module) so that a wheel
installed by pipx carries it; `@EXECUTABLE@` becomes this installation's own executable, absolute, so
the unit starts the copy that wrote it and not whatever `hivemind-app` a login shell's PATH finds first.
"""

from __future__ import annotations

import os
import shlex
from importlib import resources
from pathlib import Path

from hivemind_app.install import Installation, this_installation

UNIT_NAME = "hivemind-node.service"
_PLACEHOLDER = "@EXECUTABLE@"


def unit_text(installation: Installation | None = None) -> str:
    template = resources.files("hivemind_app.nodes").joinpath(UNIT_NAME).read_text(encoding="utf-8")
    words = (installation or this_installation()).executable
    # systemd reads ExecStart with shell-like quoting, and treats % as a specifier: double it.
    executable = shlex.join(words).replace("%", "%%")
    return template.replace(_PLACEHOLDER, executable)


def unit_path() -> Path:
    """Where systemd looks for a user's units: $XDG_CONFIG_HOME/systemd/user (default ~/.config)."""
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "systemd" / "user" / UNIT_NAME


def install_unit() -> tuple[Path, bool]:
    """Write the unit; returns (path, changed). An identical unit already there is left alone."""
    path = unit_path()
    text = unit_text()
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return path, False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{UNIT_NAME}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path, True


def remove_unit() -> Path | None:
    path = unit_path()
    if not path.is_file():
        return None
    path.unlink()
    return path
