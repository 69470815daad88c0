"""`hive init/join/status/leave` as a user runs them: the key is shown once, a typo is caught, and a node
without a key says what it cannot do."""

from __future__ import annotations

import ast
import json
import os
import re
import stat
import subprocess
from pathlib import Path

import hivemind_app
from hivemind_app.config import load_settings
from hivemind_app.doctor import _check_hive_key
from hivemind_app.trust.hivekey import HiveKey, load_key, parse_join_code
from tests.cli.runner import EXE, assert_one_line_error, run

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
    shown = {args: run(*args) for args in (("hive", "status"), ("status",), ("config", "show"))}
    for args, proc in shown.items():
        assert code.group() not in proc.stdout + proc.stderr, args
        assert code.group()[5:16] not in proc.stdout + proc.stderr, args
    assert f"fingerprint {first}" in shown[("hive", "status")].stdout
    assert f"hive key: fingerprint {first}" in shown[("status",)].stdout
    again = run("hive", "init")
    assert_one_line_error(again, 78, "already holds a hive key")

    other = {"HIVEMIND_CONFIG": str(tmp_path / "other" / "config.toml")}
    joined = run("hive", "join", code.group(), env=other)
    assert joined.returncode == 0 and first in joined.stdout, joined.stderr
    assert json.loads(run("hive", "status", "--json", env=other).stdout)["fingerprint"] == first
    # the code may also be typed at a hidden prompt, so it need not sit in the shell's history
    third = {"HIVEMIND_CONFIG": str(tmp_path / "third" / "config.toml")}
    prompted = run("hive", "join", stdin=(code.group()[5:].upper().replace("-", "") + "\n").encode(), env=third)
    assert prompted.returncode == 0 and first in prompted.stdout and code.group() not in prompted.stdout
    assert prompted.stderr == ""  # read from stdin as it is (no warning about echo on a terminal)
    # init recommends that hidden prompt, never the code as an argument
    assert f"hive join {code.group()}" not in made.stdout and "`hivemind-app hive join` and paste it" in made.stdout


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
    check = _check_hive_key(load_settings())
    assert not check.ok and not check.required  # working alone is allowed: doctor shows `--`, not FAIL
    assert "hive init" in check.detail and "peers" in check.detail


def test_doctor_shows_the_fingerprint_and_fails_on_a_key_file_others_can_read_and_leave_forgets_it() -> None:
    made = run("hive", "init")
    assert made.returncode == 0
    key_file = Path(os.environ["HIVEMIND_CONFIG"]).parent / "hive.key"
    fingerprint = json.loads(run("hive", "status", "--json").stdout)["fingerprint"]
    check = _check_hive_key(load_settings())
    assert check.ok and check.detail == f"fingerprint {fingerprint} ({key_file})"
    key_file.chmod(0o644)
    failing = _check_hive_key(load_settings())
    assert not failing.ok and failing.required and f"chmod 600 {key_file}" in failing.detail  # doctor: FAIL, exit 1
    shown_code = CODE.search(made.stdout)
    assert shown_code is not None and shown_code.group()[:20] not in failing.detail
    assert_one_line_error(run("hive", "status"), 78, "can be read by other users")
    left = run("hive", "leave", "--yes")
    assert left.returncode == 0 and "forgot the hive key" in left.stdout
    assert not key_file.exists() and "no hive key" in run("hive", "status").stdout


def test_a_join_code_piped_in_over_several_lines_is_read_whole() -> None:
    made = HiveKey.generate()
    code = made.join_code()
    # as a terminal wraps it, or as copied from `init`'s indented line
    pasted = f"  {code[:37]}\n  {code[37:61]}\r\n{code[61:]}\n".encode()
    joined = run("hive", "join", stdin=pasted)
    assert joined.returncode == 0, joined.stderr
    assert made.fingerprint in joined.stdout and json.loads(run("hive", "status", "--json").stdout)[
        "fingerprint"
    ] == made.fingerprint
    assert "in this shell's history" not in joined.stderr  # not given as an argument: no warning


def test_a_join_code_given_as_an_argument_still_joins_but_warns_it_is_in_the_shell_history() -> None:
    made = HiveKey.generate()
    joined = run("hive", "join", made.join_code())
    assert joined.returncode == 0 and made.fingerprint in joined.stdout
    assert "in this shell's history" in joined.stderr and "run `hivemind-app hive join` alone" in joined.stderr
    assert made.join_code() not in joined.stdout + joined.stderr


def test_two_hive_inits_at_once_leave_one_key_and_the_loser_is_told_a_key_exists() -> None:
    procs = [
        subprocess.Popen([EXE, "hive", "init"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = [(proc.wait(timeout=240), *proc.communicate()) for proc in procs]
    won = [out for rc, out, _ in results if rc == 0]
    lost = [err for rc, _, err in results if rc != 0]
    assert len(won) == 1 and len(lost) == 1, results
    assert "already" in lost[0] and "hive key" in lost[0]
    code = CODE.search(won[0])
    assert code is not None
    key_file = Path(os.environ["HIVEMIND_CONFIG"]).parent / "hive.key"
    assert load_key(key_file) == parse_join_code(code.group())  # the code the winner showed is the key kept


def test_no_message_in_the_package_tells_the_user_to_put_a_join_code_on_the_command_line() -> None:
    """Every `hive join` the package says (errors, help, docstrings, notes) is the bare command, which asks
    for the code: never `hive join CODE`, `hive join <code>` or `hive join hive-...`."""
    package = Path(hivemind_app.__file__).parent
    offenders = []
    for source in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                for said in re.finditer(r"hive join\b(?!`)[^\n]{0,20}", node.value):
                    offenders.append(f"{source.relative_to(package)}:{node.lineno}: {said.group()!r}")
    assert offenders == []
    help_text = run("hive", "join", "--help").stdout
    assert "hidden prompt" in help_text


def test_a_symbolic_link_planted_at_the_key_path_is_refused_by_every_command_and_leave_removes_it(
    tmp_path: Path,
) -> None:
    key_file = Path(os.environ["HIVEMIND_CONFIG"]).parent / "hive.key"
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key_file.symlink_to(tmp_path / "chosen-by-someone-else.key")  # dangling: it must not read as "no key"
    assert_one_line_error(run("hive", "status"), 78, "is a symbolic link")
    assert_one_line_error(run("hive", "init"), 78, "is a symbolic link")
    assert "symbolic link" in run("status").stdout
    left = run("hive", "leave", "--yes")
    assert left.returncode == 0 and "forgot the hive key" in left.stdout and not os.path.lexists(key_file)
    assert run("hive", "init").returncode == 0 and not key_file.is_symlink()


def test_a_join_code_pasted_at_the_hidden_prompt_over_two_lines_is_asked_for_until_whole() -> None:
    """On a real terminal (a pty that is the command's controlling terminal): the first line of a wrapped
    paste is not the whole code, so `join` asks for the rest, hidden, and joins with both lines."""
    import fcntl
    import pty
    import termios
    import time

    made = HiveKey.generate()
    code = made.join_code()
    leader, follower = pty.openpty()

    def controlling_terminal() -> None:
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(
        [EXE, "hive", "join"], stdin=follower, stdout=follower, stderr=follower, preexec_fn=controlling_terminal
    )
    os.close(follower)
    seen = b""

    def read_until(marker: bytes) -> None:
        nonlocal seen
        deadline = time.monotonic() + 30
        while marker not in seen and time.monotonic() < deadline:
            try:
                seen += os.read(leader, 4096)
            except OSError:  # the command ended: the terminal is closed
                break

    read_until(b"join code:")
    os.write(leader, (code[:40] + "\n").encode())
    read_until(b"rest of the join code:")
    os.write(leader, ("  " + code[40:] + "\n").encode())
    read_until(b"Compare the fingerprint")
    assert proc.wait(timeout=60) == 0, seen
    os.close(leader)
    assert made.fingerprint.encode() in seen
    assert code[:40].encode() not in seen and code[40:].encode() not in seen  # hidden: never echoed


def test_join_reading_a_pipe_that_stays_open_stops_once_the_code_is_whole(tmp_path: Path) -> None:
    code = HiveKey.generate().join_code()
    env = {**os.environ, "HIVEMIND_CONFIG": str(tmp_path / "config.toml")}
    assert EXE is not None
    for pasted in (f"\n{code}\n", f"  {code[:33]}\n  {code[33:]}\n", f"{code[:20]}\n\n"):
        (tmp_path / "hive.key").unlink(missing_ok=True)
        proc = subprocess.Popen(
            [EXE, "hive", "join"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        assert proc.stdin is not None
        proc.stdin.write(pasted.encode())
        proc.stdin.flush()  # and the pipe left open, as `(echo CODE; sleep 1h) | hivemind-app hive join` does
        try:
            proc.wait(timeout=30)  # the old `join` read to the end of input: it waited here for good
        finally:
            proc.kill()
            proc.stdin.close()
        if pasted.endswith("\n\n"):  # a blank line after part of a code: refused with what is missing
            assert proc.returncode == 65
        else:
            assert proc.returncode == 0
            assert load_key(tmp_path / "hive.key") == parse_join_code(code)


def test_join_removes_a_copy_of_the_key_a_killed_join_left_even_when_the_key_is_already_held(
    tmp_path: Path,
) -> None:
    code = HiveKey.generate().join_code()
    env = {"HIVEMIND_CONFIG": str(tmp_path / "config.toml")}
    assert run("hive", "join", stdin=f"{code}\n".encode(), env=env).returncode == 0
    leftover = tmp_path / ".hive.key.0123abcd.tmp"  # as a join killed between writing and removing it leaves
    leftover.write_text(code + "\n")
    os.utime(leftover, (0, 0))
    again = run("hive", "join", stdin=f"{code}\n".encode(), env=env)
    assert again.returncode == 0 and "already in this hive" in again.stdout
    assert not leftover.exists()
