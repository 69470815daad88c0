"""The hive key: its join code catches typos, its file is private, and it is never shown."""

from __future__ import annotations

import os
import stat
import threading
import time
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


def test_a_symbolic_link_planted_at_the_key_path_is_refused_not_followed(tmp_path: Path) -> None:
    elsewhere = tmp_path / "attacker" / "hive.key"
    save_key(elsewhere, KEY)  # a well-formed, private key file: only the link is wrong
    path = tmp_path / "conf" / "hive.key"
    path.parent.mkdir()
    path.symlink_to(elsewhere)
    with pytest.raises(ConfigError, match=f"is a symbolic link .*Remove it \\(`rm {path}`\\)"):
        load_key(path)
    assert key_state(path).key is None and "symbolic link" in str(key_state(path).problem)
    dangling = tmp_path / "conf" / "other.key"
    dangling.symlink_to(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="symbolic link"):  # not "no key": someone put it there
        load_key(dangling)


def test_a_key_file_owned_by_another_user_is_refused_with_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "hive.key"
    save_key(path, KEY)
    if os.geteuid() == 0:
        os.chown(path, 65534, -1)  # really another user's (nobody)
    else:
        monkeypatch.setattr(os, "geteuid", lambda: os.getuid() + 1)  # this process as another user
    with pytest.raises(ConfigError, match=r"belongs to another user .*`chown .*remove it"):
        load_key(path)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o660])
def test_a_key_file_other_users_can_read_or_change_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "hive.key"
    save_key(path, KEY)
    os.chmod(path, mode)
    with pytest.raises(ConfigError, match=f"mode {oct(mode)}.*chmod 600 {path}"):
        load_key(path)


def test_a_fifo_or_an_endless_file_at_the_key_path_is_refused_without_waiting_or_reading_it_all(
    tmp_path: Path,
) -> None:
    fifo = tmp_path / "fifo.key"
    os.mkfifo(fifo, 0o600)
    with pytest.raises(ConfigError, match="not a regular file"):
        load_key(fifo)  # no writer: a blocking open would hang here
    big = tmp_path / "big.key"
    fd = os.open(big, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, (KEY.join_code() + "\n").encode() * 1000)
    os.close(fd)
    with pytest.raises(ConfigError, match="damaged"):
        load_key(big)


def test_an_existing_key_file_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "hive.key"
    save_key(path, KEY)
    with pytest.raises(ConfigError, match=r"already exists .*nothing was overwritten.*hive leave"):
        save_key(path, HiveKey.generate())
    assert load_key(path) == KEY
    assert [p.name for p in tmp_path.iterdir()] == ["hive.key"]  # no temporary file left behind
    planted = tmp_path / "planted.key"
    planted.symlink_to(tmp_path / "target")
    with pytest.raises(ConfigError, match="already exists"):
        save_key(planted, KEY)  # a link planted at the path is not written through
    assert not (tmp_path / "target").exists()


def test_of_many_saves_racing_for_one_key_file_exactly_one_wins(tmp_path: Path) -> None:
    path = tmp_path / "hive.key"
    keys = [HiveKey.generate() for _ in range(8)]
    start = threading.Barrier(len(keys))
    outcomes: dict[int, str] = {}

    def save(i: int) -> None:
        start.wait()
        try:
            save_key(path, keys[i])
            outcomes[i] = "saved"
        except ConfigError as exc:
            outcomes[i] = str(exc)

    threads = [threading.Thread(target=save, args=(i,)) for i in range(len(keys))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [i for i, outcome in outcomes.items() if outcome == "saved"]
    assert len(winners) == 1, outcomes
    assert all("already exists" in outcomes[i] for i in outcomes if i not in winners)
    assert load_key(path) == keys[winners[0]]


def test_a_join_code_pasted_with_line_breaks_and_indentation_inside_is_read() -> None:
    code = KEY.join_code()
    wrapped = code[:33] + "\n  " + code[33:50] + "\r\n\t" + code[50:] + "\n"
    assert parse_join_code(wrapped) == KEY
    assert parse_join_code(" ".join(code.split("-"))) == KEY  # groups separated by spaces, not dashes


# found by drawing random keys (~800,000 tries): its join code holds none of the digits 2-7
KEY_WITHOUT_A_DIGIT = bytes.fromhex("3e53694a0d7c65005dd0901f50282c064051b5ca1221745d9753494614e82bc3")


def test_a_new_key_whose_join_code_holds_no_digit_is_drawn_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """The redactor's search for codes pasted with whitespace skips 58 letters without a digit 2-7."""
    import secrets

    assert not any(d in HiveKey(KEY_WITHOUT_A_DIGIT).join_code().removeprefix("hive-") for d in "234567")
    draws = iter([KEY_WITHOUT_A_DIGIT, bytes(range(32))])
    monkeypatch.setattr(secrets, "token_bytes", lambda n: next(draws))  # a fake of the OS's randomness only
    assert HiveKey.generate().join_code() == HiveKey(bytes(range(32))).join_code()


def test_a_link_replaced_while_its_target_is_named_is_still_refused_as_a_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "hive.key"
    path.symlink_to(tmp_path / "elsewhere")

    def gone(link: object) -> str:  # the link removed between the open and the message (a race, made certain)
        raise FileNotFoundError(2, "No such file or directory")

    monkeypatch.setattr(os, "readlink", gone)
    with pytest.raises(ConfigError, match=r"is a symbolic link .*cannot be read"):
        load_key(path)


def test_without_hard_links_the_key_path_is_never_written_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file system without hard links (a fake `link` failing EPERM, as FAT does): the disk filling up while
    writing at the key path must not leave half a key there (read as damaged, blocking the next join)."""
    import errno

    path = tmp_path / "hive.key"

    def no_links(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    real_write = os.write

    def disk_full_at_the_key_path(fd: int, data: bytes) -> int:
        if os.readlink(f"/proc/self/fd/{fd}") == str(path):
            real_write(fd, bytes(data)[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "link", no_links)
    monkeypatch.setattr(os, "write", disk_full_at_the_key_path)
    save_key(path, KEY)
    monkeypatch.undo()
    assert load_key(path) == KEY and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["hive.key"]  # no temporary left
    monkeypatch.setattr(os, "link", no_links)
    with pytest.raises(ConfigError, match="already exists"):  # still never overwritten
        save_key(path, HiveKey.generate())
    assert load_key(path) == KEY


def test_a_temporary_a_killed_init_left_is_removed_by_the_next_save_but_a_live_one_is_not(tmp_path: Path) -> None:
    path = tmp_path / "hive.key"
    stale, live = tmp_path / ".hive.key.0123abcd.tmp", tmp_path / ".hive.key.89abcdef.tmp"
    other = tmp_path / ".other.key.0123abcd.tmp"
    for leftover in (stale, live, other):
        leftover.write_text(KEY.join_code() + "\n")
        leftover.chmod(0o600)
    old = time.time() - 3600
    os.utime(stale, (old, old))
    os.utime(other, (old, old))
    save_key(path, KEY)
    assert not stale.exists() and live.exists() and other.exists()  # another key file's are not this one's
