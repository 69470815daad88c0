"""Which embedder runs a model on this machine, from `embedding.backend` and the store's vector space.

A vector space is named by its model: `all-MiniLM-L6-v2` for fp32 vectors (torch and fp32 ONNX make the same
ones, so either may serve it) and `all-MiniLM-L6-v2+int8` for int8 ONNX vectors. The configured backend picks
the runner for fp32 spaces; an int8 space is always served by the int8 graph, whatever the setting, so a
store's vectors and its queries never come from different spaces.
"""

from __future__ import annotations

from hivemind_app.config import EmbeddingSettings
from hivemind_app.ml.embedder import Embedder, SentenceTransformerEmbedder
from hivemind_app.ml.onnx_embedder import OnnxEmbedder
from hivemind_app.ml.onnx_runtime import INT8_SUFFIX


def configured_space(cfg: EmbeddingSettings) -> str:
    """The vector space new vectors go into with these settings."""
    return cfg.model + INT8_SUFFIX if cfg.backend == "onnx-int8" else cfg.model


def local_embedder(space: str, cfg: EmbeddingSettings) -> Embedder:
    """An in-process embedder whose vectors belong to `space`."""
    if space.endswith(INT8_SUFFIX):
        return OnnxEmbedder(
            space.removesuffix(INT8_SUFFIX),
            cfg.converted_dir,
            int8=True,
            threads=cfg.threads,
            batch_size=cfg.batch_size,
        )
    torch_embedder = SentenceTransformerEmbedder(space, cfg.device, cfg.batch_size)
    if cfg.backend == "torch":
        return torch_embedder
    return OnnxEmbedder(
        space, cfg.converted_dir, threads=cfg.threads, batch_size=cfg.batch_size, fallback=torch_embedder
    )
