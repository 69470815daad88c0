from __future__ import annotations

import shutil
import sys
from pathlib import Path


def console_script(name: str = "hivemind-app") -> str:
    """The installed console script: beside this interpreter (a venv), else on PATH. Missing is an error."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} is not installed; run `pip install -e '.[all,dev]'` first.")
    return found
