from __future__ import annotations

import numpy as np
import pytest

from hivemind_app.errors import EmbedderUnavailableError
from hivemind_app.ml.embedder import Embedder, SentenceTransformerEmbedder


def test_the_bundled_model_gives_unit_vectors_of_its_own_dimension(minilm: Embedder) -> None:
    vectors = minilm.embed(["staging DB on 5433", "prod DB on 5432", "tomatoes need sun"])
    assert vectors.shape == (3, minilm.dim) == (3, 384)
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]


def test_a_missing_model_raises_a_clear_error_and_keeps_raising_it_cheaply() -> None:
    embedder = SentenceTransformerEmbedder("/nonexistent/model-dir")
    with pytest.raises(EmbedderUnavailableError, match=r"could not be loaded.*embedding.model.*Keyword search"):
        embedder.embed(["x"])
    with pytest.raises(EmbedderUnavailableError):
        embedder.embed(["x"])
