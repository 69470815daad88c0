"""How this copy of hivemind-app was installed, and the commands that fit it.

Every hint that tells a user to install something (doctor, a missing extra, a missing model) and every file
that starts the app from outside (Claude Code's hooks and MCP registration, the systemd unit) asks this
module, so that a pipx user is told `pipx inject ...`, a venv user the venv's own pip, an editable checkout
`pip install -e`, and the files point at this installation's executable rather than whatever `hivemind-app`
comes first on some other PATH.

The kind is detected from files the installers write, never guessed from paths:
- pipx writes `pipx_metadata.json` at the root of the venv it makes for an app;
- pip records an editable install in the distribution's `direct_url.json` (PEP 610, `dir_info.editable`);
- a venv is `sys.prefix != sys.base_prefix`; anything else is a system or user site.

Stdlib only: the hooks' hot path may import it.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlparse

DISTRIBUTION = "hivemind-app"
SCRIPT = "hivemind-app"
TORCH_CPU = "torch==2.13.0"  # the CPU build; without it pip pulls a multi-GB CUDA build
LLAMA_CMAKE_ARGS = "CMAKE_ARGS=-DGGML_NATIVE=OFF"  # see the README: a native build can crash in VMs

InstallKind = Literal["pipx", "editable", "venv", "system"]
_EXTRA_MARKER = re.compile(r"""extra\s*==\s*["']([A-Za-z0-9_.-]+)["']""")
_NAME = re.compile(r"^\s*([A-Za-z0-9_.-]+)(\[([^\]]*)\])?")


@dataclass(frozen=True)
class Installation:
    kind: InstallKind
    prefix: Path  # the environment's root (sys.prefix)
    python: Path  # its interpreter
    checkout: Path | None = None  # the source tree of an editable install

    @property
    def executable(self) -> list[str]:
        """The command that runs this copy: its own console script, else its interpreter with `-m`."""
        script = self.python.parent / SCRIPT
        if script.is_file():
            return [str(script)]
        return [str(self.python), "-m", "hivemind_app"]

    def command(self, *args: str) -> str:
        """A shell command line running this copy with ARGS (quoted, absolute)."""
        return shlex.join([*self.executable, *args])

    def describe(self) -> str:
        where = {
            "pipx": f"pipx app in {self.prefix}",
            "editable": f"editable checkout {self.checkout} in the venv {self.prefix}",
            "venv": f"the venv {self.prefix}",
            "system": f"the Python at {self.prefix}",
        }[self.kind]
        return f"{where} ({self.command()})"

    def install_extra(self, extra: str) -> str:
        """The command that adds EXTRA (infer, train, all) to this copy."""
        prefix = f"{LLAMA_CMAKE_ARGS} " if extra in ("infer", "all") else ""
        if self.kind == "pipx":
            packages = " ".join(shlex.quote(r) for r in extra_requirements(extra))
            return f"{prefix}pipx inject {shlex.quote(self.prefix.name)} {packages}"
        pip = f"{shlex.quote(str(self.python))} -m pip install"
        if self.kind == "editable" and self.checkout is not None:
            return f"{prefix}{pip} -e {shlex.quote(f'{self.checkout}[{extra}]')}"
        return f"{prefix}{pip} {shlex.quote(f'{DISTRIBUTION}[{extra}]')}"

    def install_package(self, requirement: str) -> str:
        """The command that adds one package (a bundled model, a converter) to this copy."""
        if self.kind == "pipx":
            return f"pipx inject {shlex.quote(self.prefix.name)} {shlex.quote(requirement)}"
        return f"{shlex.quote(str(self.python))} -m pip install {shlex.quote(requirement)}"


@cache
def this_installation() -> Installation:
    try:
        direct_url = metadata.distribution(DISTRIBUTION).read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        direct_url = None
    return detect(Path(sys.prefix), Path(sys.base_prefix), Path(sys.executable), direct_url)


def detect(prefix: Path, base_prefix: Path, python: Path, direct_url: str | None) -> Installation:
    """The kind of installation at PREFIX, from what the installers wrote (see the module docstring)."""
    if (prefix / "pipx_metadata.json").is_file():
        return Installation("pipx", prefix, python)
    checkout = _editable_checkout(direct_url)
    if checkout is not None:
        return Installation("editable", prefix, python, checkout)
    if prefix != base_prefix:
        return Installation("venv", prefix, python)
    return Installation("system", prefix, python)


def _editable_checkout(raw: str | None) -> Path | None:
    if not raw:
        return None
    try:
        record = json.loads(raw)
    except json.JSONDecodeError:
        return None
    url = record.get("url", "") if isinstance(record, dict) else ""
    dir_info = record.get("dir_info") if isinstance(record, dict) else None
    if not (isinstance(dir_info, dict) and dir_info.get("editable") is True and url.startswith("file://")):
        return None
    return Path(unquote(urlparse(url).path))


def extra_requirements(extra: str) -> list[str]:
    """The requirements an extra adds, as the installed metadata lists them (nested extras expanded)."""
    try:
        requires = metadata.requires(DISTRIBUTION) or []
    except metadata.PackageNotFoundError:
        return []
    found: list[str] = []
    for line in requires:
        requirement, _, marker = line.partition(";")
        extras = _EXTRA_MARKER.findall(marker)
        if extra not in extras:
            continue
        name = _NAME.match(requirement)
        if name and name.group(1).lower().replace("_", "-") == DISTRIBUTION and name.group(3):
            for nested in name.group(3).split(","):
                found += [r for r in extra_requirements(nested.strip()) if r not in found]
        elif requirement.strip() not in found:
            found.append(requirement.strip().replace(" ", ""))
    return found


def install_extra_hint(extra: str) -> str:
    return this_installation().install_extra(extra)


def install_package_hint(requirement: str) -> str:
    return this_installation().install_package(requirement)
