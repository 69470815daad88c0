"""What a piece of text must be to become a memory, and the id it gets.

A memory's id is the sha256 of its normalised text, so the same note stored twice, on any machine, is one
memory. Normalising is deliberately light: it must not change what code or prose means.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

from hivemind_app.errors import BinaryContentError, EmptyTextError, InvalidInputError, TextTooLargeError

_TRAILING_SPACE = re.compile(r"[ \t]+(?=\n)")
# Control characters other than tab, newline and carriage return: a few are normal in pasted terminal
# output, a text made mostly of them is binary.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_BINARY_CONTROL_RATIO = 0.10
# Lists a caller hands in are capped before anything is done with them: a tool call with a million tags
# or tool names costs memory and time long before any per-item check runs.
MAX_TAGS = 32
MAX_TOOLS = 64


def normalise(text: str) -> str:
    """NFC, Unix newlines, no trailing spaces on lines, no leading or trailing blank space."""
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _TRAILING_SPACE.sub("", text)
    return text.strip()


def text_hash(text: str) -> str:
    """sha256 hex of already-normalised text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def decode_bytes(data: bytes, what: str) -> str:
    """Bytes from a file or stdin as text, or `BinaryContentError` naming `what`."""
    if b"\x00" in data:
        raise BinaryContentError(f"{what} contains NUL bytes: it looks binary, not text.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BinaryContentError(
            f"{what} is not valid UTF-8 (byte {exc.start}); convert it to UTF-8 text first."
        ) from exc


def check_text(text: object, max_bytes: int, what: str = "text") -> str:
    """Validate and normalise text meant for storage; the result is what gets stored and hashed."""
    if not isinstance(text, str):
        raise InvalidInputError(f"{what} must be a string, not {type(text).__name__}.")
    if "\x00" in text:
        raise BinaryContentError(f"{what} contains NUL characters: it looks binary, not text.")
    try:
        encoded = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        # Lone surrogates: what Python makes of undecodable bytes in argv or a file read leniently.
        raise BinaryContentError(f"{what} holds bytes that are not valid UTF-8; pass UTF-8 text.") from exc
    if len(encoded) > max_bytes:
        raise TextTooLargeError(
            f"{what} is {len(encoded):,} bytes, over the limit of {max_bytes:,} bytes "
            "(store.max_text_bytes); split it, or import the file so it is chunked."
        )
    clean = normalise(text)
    if not clean:
        raise EmptyTextError(f"{what} is empty; give some text to store.")
    controls = len(_CONTROL.findall(clean))
    if controls and controls / len(clean) > _BINARY_CONTROL_RATIO:
        raise BinaryContentError(
            f"{what} is {controls / len(clean):.0%} control characters: it looks binary, not text."
        )
    return clean


def check_label(value: object, what: str, max_len: int = 200) -> str:
    """A tag, source or session id: a short single-line string."""
    if not isinstance(value, str):
        raise InvalidInputError(f"{what} must be a string, not {type(value).__name__}.")
    clean = value.strip()
    if not clean:
        raise InvalidInputError(f"{what} is empty.")
    if len(clean) > max_len or "\n" in clean or _CONTROL.search(clean):
        raise InvalidInputError(f"{what} must be one line of at most {max_len} characters.")
    return clean


def check_count(items: object, what: str, limit: int) -> None:
    """A list from a caller holds at most `limit` items (InvalidInputError naming the list otherwise)."""
    if isinstance(items, list | tuple | set | frozenset) and len(items) > limit:
        raise InvalidInputError(f"{len(items):,} {what} given; at most {limit} are accepted, give fewer.")
