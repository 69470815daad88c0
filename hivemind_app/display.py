"""Text read from the store, Redis or a file, made safe to put on a terminal.

Stored text is whatever someone wrote: a note, a tool's output, a record planted in Redis. Printed raw, an
escape sequence in it can clear the screen, rewrite earlier lines, retitle the window or (OSC 52) write the
user's clipboard; a bidirectional override can make code read differently from what it is. Every front end
that prints stored text passes it through `terminal_safe`: newlines and tabs stay, every other control
character (C0, DEL, C1, ESC included) and every bidi control becomes a visible escape (`\\x1b`, `\\u202e`),
so nothing reaches the terminal that it would act on, and the user can still see that it was there.
"""

from __future__ import annotations

import re

# C0 controls but \t and \n, DEL, C1 controls; the Unicode bidi embeddings, overrides and isolates.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_safe(text: str) -> str:
    return _UNSAFE.sub(_escape, text)


def one_line(text: str) -> str:
    """`terminal_safe`, with newlines and tabs escaped too (a name, a source, a table cell)."""
    return terminal_safe(text).replace("\n", "\\n").replace("\t", "\\t")
