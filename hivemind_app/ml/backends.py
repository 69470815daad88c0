"""Which embedder runs a model on this machine, from `embedding.backend` and the store's vector space.

A vector space is named by its model: `all-MiniLM-L6-v2` for fp32 vectors (torch and fp32 ONNX make the same
ones, so either may serve it) and `all-MiniLM-L6-v2+int8` for int8 ONNX vectors. The configured backend picks
the runner for fp32 spaces (torch whenever a GPU is asked for or, on `device = "auto"`, usable by the installed
torch: the ONNX backends are CPU-only); an int8 space is always served by the int8 graph, whatever the setting, so a
store's vectors and its queries never come from different spaces.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from hivemind_app.config import EmbeddingSettings
from hivemind_app.ml.embedder import Embedder, SentenceTransformerEmbedder
from hivemind_app.ml.onnx_embedder import OnnxEmbedder
from hivemind_app.ml.onnx_runtime import INT8_SUFFIX


def gpu_requested(device: str) -> bool:
    """`device` names a GPU, or is `auto` where torch could use one: an NVIDIA driver loaded and a CUDA
    build of torch installed (both checked without importing torch, which takes seconds)."""
    if device.startswith(("cuda", "mps")):
        return True
    return device == "auto" and Path("/proc/driver/nvidia/version").exists() and _torch_built_with_cuda()


def _torch_built_with_cuda() -> bool:
    spec = importlib.util.find_spec("torch")
    if spec is None or spec.origin is None:
        return False
    try:
        text = (Path(spec.origin).parent / "version.py").read_text()
    except OSError:
        return False
    # the CPU build says `cuda: Optional[str] = None`, a CUDA build names its CUDA version
    found = re.search(r"^cuda\b[^=\n]*=\s*(.+)$", text, re.MULTILINE)
    return found is not None and found.group(1).strip() != "None"


def configured_space(cfg: EmbeddingSettings) -> str:
    """The vector space new vectors go into with these settings."""
    if cfg.backend == "onnx-int8" and not cfg.model.endswith(INT8_SUFFIX):
        return cfg.model + INT8_SUFFIX
    return cfg.model


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
    if cfg.backend == "torch" or gpu_requested(cfg.device):
        return torch_embedder  # the ONNX backends run on the CPU only: a GPU is torch's
    return OnnxEmbedder(
        space, cfg.converted_dir, threads=cfg.threads, batch_size=cfg.batch_size, fallback=torch_embedder
    )
