"""The hive key: its join code catches typos, its file is private, and it is never shown."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hivemind_app.errors import ConfigError, InvalidInputError
from hivemind_app.trust.hivekey import HiveKey, key_state, load_key, parse_join_code, remove_key, save_key

KEY = HiveKey(bytes(range(32)))
ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"


def test_a_join_code_gives_back_the_key_it_was_made_from() -> None:
    key = HiveKey.generate()
    assert parse_join_code(key.join_code()) == key
    # spaces, line breaks and upper case from copying it by hand do not matter
    assert parse_join_code("  " + key.join_code().upper().replace("-", " - ") + "\n") == key


@given(st.data())
def test_any_one_mistyped_character_of_a_join_code_is_refused(data: st.DataObject) -> None:
    code = KEY.join_code()
    body = code.removeprefix("hive-")
    positions = [i for i, c in enumerate(body) if c != "-"]
    where = data.draw(st.sampled_from(positions[:-1]))  # the last character holds 3 bits and 2 unused ones
    typo = data.draw(st.sampled_from([c for c in ALPHABET if c != body[where]]))
    with pytest.raises(InvalidInputError, match="checksum does not match"):
        parse_join_code("hive-" + body[:where] + typo + body[where + 1 :])


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda c: c[:-6], "characters where it should have 58"),
        (lambda c: c + "abcde", "characters where it should have 58"),
        (lambda c: c.replace(c[10], "0", 1), "which a join code never does"),
        (lambda c: "", "empty"),
        (lambda c: "hive-", "empty"),
    ],
)
def test_a_truncated_padded_or_foreign_code_is_refused_with_what_is_wrong(mangle: object, message: str) -> None:
    assert callable(mangle)
    with pytest.raises(InvalidInputError, match=message):
        parse_join_code(mangle(KEY.join_code()))


def test_the_key_never_shows_in_its_repr_only_its_fingerprint() -> None:
    key = HiveKey.generate()
    shown = repr(key) + str(key) + f"{key}"
    assert key.fingerprint in shown
    assert key.join_code() not in shown and key.join_code()[5:15] not in shown
    assert len(key.fingerprint) == 19 and HiveKey.generate().fingerprint != key.fingerprint


def test_a_mac_is_bound_to_its_purpose_and_to_how_its_parts_are_split() -> None:
    assert KEY.mac("peer", "ab", "c") != KEY.mac("peer", "a", "bc")
    assert KEY.mac("peer", "x") != KEY.mac("record", "x")
    assert KEY.verify("peer", KEY.mac("peer", "x", b"y"), "x", b"y")
    assert not KEY.verify("peer", KEY.mac("peer", "x"), "y")
    assert not KEY.verify("peer", None, "x") and not KEY.verify("peer", "é" * 64, "x")
    assert not HiveKey.generate().verify("peer", KEY.mac("peer", "x"), "x")


def test_the_key_file_is_created_private_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "hive.key"
    assert load_key(path) is None
    save_key(path, KEY)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_key(path) == KEY and key_state(path).fingerprint == KEY.fingerprint
    assert [p.name for p in path.parent.iterdir()] == ["hive.key"]  # no temporary file left behind
    assert remove_key(path) and not remove_key(path) and load_key(path) is None


def test_a_key_file_others_can_read_is_refused_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "hive.key"
    save_key(path, KEY)
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError, match=f"chmod 600 {path}"):
        load_key(path)
    state = key_state(path)
    assert state.key is None and state.problem and "other users" in state.problem


def test_a_damaged_key_file_is_an_error_never_a_node_without_a_key(tmp_path: Path) -> None:
    path = tmp_path / "hive.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, KEY.join_code()[:-3].encode() + b"\n")
    os.close(fd)
    with pytest.raises(ConfigError, match="damaged"):
        load_key(path)
    assert KEY.join_code()[5:20] not in str(key_state(path).problem)
