"""`hive init/join/status/leave` as a user runs them: the key is shown once, a typo is caught, and a node
without a key says what it cannot do."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

from tests.cli.runner import assert_one_line_error, run

CODE = re.compile(r"hive-[a-z2-7-]{69}")


def test_init_shows_the_key_once_and_join_on_another_machine_gets_the_same_fingerprint(tmp_path: Path) -> None:
    made = run("hive", "init")
    assert made.returncode == 0, made.stderr
    code = CODE.search(made.stdout)
    assert code is not None
    key_file = Path(os.environ["HIVEMIND_CONFIG"]).parent / "hive.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    first = json.loads(run("hive", "status", "--json").stdout)["fingerprint"]
    assert first in made.stdout

    # nothing after init prints the key again
    for args in (("hive", "status"), ("status",), ("status", "--json"), ("config", "show")):
        shown = run(*args)
        assert code.group() not in shown.stdout + shown.stderr, args
        assert code.group()[5:16] not in shown.stdout + shown.stderr, args
    assert f"fingerprint {first}" in run("hive", "status").stdout
    assert f"hive key: fingerprint {first}" in run("status").stdout
    again = run("hive", "init")
    assert_one_line_error(again, 78, "already holds a hive key")

    other = {"HIVEMIND_CONFIG": str(tmp_path / "other" / "config.toml")}
    joined = run("hive", "join", code.group(), env=other)
    assert joined.returncode == 0 and first in joined.stdout, joined.stderr
    assert json.loads(run("hive", "status", "--json", env=other).stdout)["fingerprint"] == first
    # the code may also be typed at a hidden prompt, so it need not sit in the shell's history
    third = {"HIVEMIND_CONFIG": str(tmp_path / "third" / "config.toml")}
    prompted = run("hive", "join", stdin=(code.group() + "\n").encode(), env=third)
    assert prompted.returncode == 0 and first in prompted.stdout and code.group() not in prompted.stdout


def test_join_refuses_a_mistyped_code_and_stores_nothing() -> None:
    code = "hive-loe2c-klhcj-76tns-56l63-jcdod-zef2o-v26st-q5urm-2tlmy-ns533-wfxdh-2eq"
    typo = code.replace("klhcj", "klhcf")
    assert_one_line_error(run("hive", "join", typo), 65, "checksum does not match")
    assert_one_line_error(run("hive", "join", code[:-4]), 65, "where it should have 58")
    assert not (Path(os.environ["HIVEMIND_CONFIG"]).parent / "hive.key").exists()


def test_a_node_without_a_key_says_it_works_alone_and_what_it_cannot_do() -> None:
    status = run("hive", "status")
    assert status.returncode == 0 and "no hive key" in status.stdout and "works alone" in status.stdout
    assert "hive key: none: this node works alone" in run("status").stdout
    doctor = run("doctor")
    assert doctor.returncode == 0, doctor.stdout  # working alone is allowed
    line = next(ln for ln in doctor.stdout.splitlines() if "hive key" in ln)
    assert line.startswith("--") and "hive init" in line and "peers" in line


def test_leave_forgets_the_key_and_a_readable_key_file_fails_doctor() -> None:
    made = run("hive", "init")
    assert made.returncode == 0
    key_file = Path(os.environ["HIVEMIND_CONFIG"]).parent / "hive.key"
    fingerprint = json.loads(run("hive", "status", "--json").stdout)["fingerprint"]
    doctor = run("doctor")
    assert f"ok   hive key          fingerprint {fingerprint} ({key_file})" in doctor.stdout.splitlines()
    assert made.stdout.split("hive join ")[1][:20] not in doctor.stdout
    key_file.chmod(0o644)
    doctor = run("doctor")
    assert doctor.returncode == 1 and f"chmod 600 {key_file}" in doctor.stdout
    assert_one_line_error(run("hive", "status"), 78, "can be read by other users")
    left = run("hive", "leave", "--yes")
    assert left.returncode == 0 and "forgot the hive key" in left.stdout
    assert not key_file.exists() and "no hive key" in run("hive", "status").stdout
