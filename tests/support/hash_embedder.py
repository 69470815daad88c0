"""A fast deterministic embedder for tests about sync, not about the model: 5,000 memories in milliseconds.

It has its own model name, so its vectors can never be mistaken for MiniLM's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

import numpy as np


class HashEmbedder:
    model_name = "test-hash-embedder"
    dim = 32

    def embed(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            raw = np.frombuffer(hashlib.sha256(text.encode()).digest(), dtype=np.uint8)[: self.dim].astype(np.float32)
            out[i] = (raw - 127.5) / np.linalg.norm(raw - 127.5)
        if progress:
            progress(len(texts))
        return out
