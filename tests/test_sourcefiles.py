"""Chunks know their span: each chunk's byte range in the file holds exactly the chunk's paragraphs."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from hivemind_app.sourcefiles import byte_spans, chunk_spans, chunk_text

BITS = st.sampled_from(["word", "é", "日本", " ", "\t", "\n", "\n\n", " \n \n", "\r\n", "x" * 30, "😀"])
TEXTS = st.lists(BITS, max_size=60).map("".join)


def squeeze(text: str) -> str:
    return "".join(ch for ch in text if not ch.isspace())


@settings(max_examples=300, deadline=None)
@given(text=TEXTS, limit=st.integers(min_value=1, max_value=40), bom=st.booleans())
def test_every_chunk_spans_its_own_text_in_the_file(text: str, limit: int, bom: bool) -> None:
    data = (b"\xef\xbb\xbf" if bom else b"") + text.encode()
    chunks = chunk_spans(text, limit)
    assert [c.text for c in chunks] == chunk_text(text, limit)
    for chunk, (start, end) in zip(chunks, byte_spans(text, chunks, data), strict=True):
        span = data[start:end].decode()
        assert span == text[chunk.start : chunk.end]
        # the chunk is its span with the blank runs between paragraphs folded: same characters otherwise
        assert squeeze(span) == squeeze(chunk.text)
        assert span[:1] == chunk.text[:1] and span[-1:] == chunk.text[-1:]
