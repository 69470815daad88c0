"""`redact_url` cannot fail open: no password or query credential of any URL survives it."""

from __future__ import annotations

import os
import subprocess

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hivemind_app.trust.urls import redact_url
from tests.support.console import console_script

PASSWORD_CHARS = st.characters(codec="ascii", min_codepoint=33, max_codepoint=126)
# at least 8 characters, so that a password is never a piece of the host by chance
PASSWORDS = st.text(PASSWORD_CHARS, min_size=8, max_size=30).filter(lambda p: p not in "redis://nas.local:6379/0")


@given(user=st.sampled_from(["", "default", "ops"]), password=PASSWORDS)
def test_no_password_in_the_userinfo_survives_whatever_characters_it_holds(user: str, password: str) -> None:
    shown = redact_url(f"redis://{user}:{password}@nas.local:6379/0")
    assert password not in shown and "***" in shown


@given(password=PASSWORDS.filter(lambda p: not any(c in p for c in "&;#")))
def test_no_password_in_the_query_survives(password: str) -> None:
    for name in ("password", "token", "PASSWORD", "api_key"):
        shown = redact_url(f"redis://nas.local:6379/0?db=1&{name}={password}")
        assert password not in shown
        assert not any(len(piece) >= 2 and piece in shown.replace("***", "") for piece in password.split("@")), shown


@given(st.text(max_size=80))
def test_any_string_at_all_comes_back_without_raising(text: str) -> None:
    assert isinstance(redact_url(text), str)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://nas.local:6379/0", "redis://nas.local:6379/0"),
        ("redis://:hunter22@nas:6379/0", "redis://:***@nas:6379/0"),
        ("redis://default:pa/ss#1@nas:6379/0", "redis://default:***@nas:6379/0"),
        ("redis://u:p@ss@nas/0", "redis://u:***@nas/0"),
        ("redis://ghp_lonetoken@nas", "redis://***@nas"),
        ("redis://default:1234/abc@nas:6379", "redis://default:***@nas:6379"),
        ("redis://u:99?x@h", "redis://u:***@h"),
        ("redis://default:2024#x@host:6379", "redis://default:***@host:6379"),
        ("redis://h:1/0#password=zz", "redis://h:1/0#password=***"),
        ("https://registry.example/@scope/pkg", "https://***@scope/pkg"),  # too much hidden, never too little
        ("not a url, hunter22", "***"),
    ],
)
def test_what_is_kept_and_what_is_hidden(url: str, shown: str) -> None:
    assert redact_url(url) == shown


@pytest.mark.parametrize("password", ["pa/ss#1word", "p?ss@wo:rd", "hunter22word"])
def test_no_command_prints_the_password_or_fails_with_an_internal_error(password: str) -> None:
    env = {
        **os.environ,
        "HIVEMIND_REDIS__URL": f"redis://default:{password}@127.0.0.1:1/0?password={password}",
        "HIVEMIND_REDIS__CONNECT_TIMEOUT_S": "0.2",
    }
    for command in (["status"], ["status", "--json"], ["config", "show"], ["doctor"], ["sync"], ["sync", "--status"]):
        proc = subprocess.run([console_script(), *command], env=env, capture_output=True, text=True, timeout=120)
        out = proc.stdout + proc.stderr
        assert password not in out and "internal error" not in out and "Traceback" not in out, (command, out)
