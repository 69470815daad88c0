from __future__ import annotations

import pytest

from hivemind_app.content import check_label, check_text, decode_bytes, normalise, text_hash
from hivemind_app.errors import BinaryContentError, EmptyTextError, InvalidInputError, TextTooLargeError


def test_normalising_makes_line_endings_and_trailing_space_irrelevant_to_the_id() -> None:
    a = normalise("  staging DB on 5433  \r\nreplica on 5434\t\r\n")
    b = normalise("staging DB on 5433\nreplica on 5434")
    assert a == b
    assert text_hash(a) == text_hash(b)


def test_normalising_keeps_indentation_inside_code() -> None:
    code = "def f():\n    return 1"
    assert normalise(code) == code


def test_empty_and_whitespace_only_text_is_refused() -> None:
    for text in ["", "   ", "\n\t\n"]:
        with pytest.raises(EmptyTextError, match="empty"):
            check_text(text, 1000)


def test_text_over_the_limit_is_refused_with_its_size_and_the_setting_name() -> None:
    with pytest.raises(TextTooLargeError, match=r"2,000 bytes.*1,000 bytes.*store.max_text_bytes"):
        check_text("x" * 2000, 1000)


def test_binary_junk_is_refused() -> None:
    with pytest.raises(BinaryContentError, match="NUL"):
        check_text("abc\x00def", 1000)
    with pytest.raises(BinaryContentError, match="control characters"):
        check_text("\x01\x02\x03\x04\x05abc", 1000)
    with pytest.raises(BinaryContentError, match="UTF-8"):
        check_text("caf\udce9", 1000)  # what argv makes of a latin-1 byte
    with pytest.raises(BinaryContentError, match="not valid UTF-8"):
        decode_bytes(b"caf\xe9 au lait", "notes.txt")


def test_wrong_types_are_named() -> None:
    with pytest.raises(InvalidInputError, match="must be a string, not int"):
        check_text(42, 1000)
    with pytest.raises(InvalidInputError, match="one line"):
        check_label("two\nlines", "a tag")
