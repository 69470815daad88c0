"""Stored text on a terminal: nothing in it reaches the terminal as a control sequence."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from hivemind_app.display import one_line, terminal_safe

HOSTILE = "ok\x1b[2J\x1b]52;c;cm0gLXJmIH4=\x07\x9b31m\u202eevil\r\x08done"


def test_escape_sequences_bidi_overrides_and_carriage_returns_become_visible_escapes() -> None:
    safe = terminal_safe(HOSTILE)
    assert safe == "ok\\x1b[2J\\x1b]52;c;cm0gLXJmIH4=\\x07\\x9b31m\\u202eevil\\x0d\\x08done"


def test_newlines_and_tabs_stay_in_text_and_are_escaped_in_a_one_line_field() -> None:
    assert terminal_safe("a\n\tb") == "a\n\tb"
    assert one_line("a\n\tb\x1b") == "a\\n\\tb\\x1b"


@given(st.text())
def test_no_control_character_but_newline_and_tab_survives_any_text(text: str) -> None:
    safe = terminal_safe(text)
    assert all(c in "\n\t" or not (ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F) for c in safe)
    assert "\u202e" not in safe and "\u2066" not in safe
    assert safe == text or "\\" in safe  # changed only by escaping, never silently dropped
