"""Running a model converted for ONNX Runtime: tokenizers, one inference session and the pooling, in numpy.

Only onnxruntime, tokenizers and numpy are imported (~0.1 s, against ~3 s for torch); `onnx_convert` makes
the files this reads.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hivemind_app.errors import EmbedderUnavailableError
from hivemind_app.install import install_package_hint
from hivemind_app.ml.embedder import Vectors

FP32_FILE = "model.onnx"
INT8_FILE = "model-int8.onnx"
# The store's model name for int8 vectors: a vector space of its own, never mixed with fp32 vectors.
INT8_SUFFIX = "+int8"


class ConversionUnsupportedError(EmbedderUnavailableError):
    """The model cannot be converted (its pooling, a missing package); torch can still run it."""

    def __init__(self, message: str, *, silent: bool = False) -> None:
        super().__init__(message)
        self.silent = silent


@dataclass(frozen=True)
class ConvertedModel:
    directory: Path
    dim: int
    max_seq_length: int
    pooling: str  # "mean" or "cls"
    pad_token: str = "[PAD]"
    pad_id: int = 0

    def onnx_path(self, int8: bool) -> Path:
        return self.directory / (INT8_FILE if int8 else FP32_FILE)


def compute_threads(threads: int) -> int:
    """The intra-op threads a session runs with: `embedding.threads`, or 0 for the cores this process may use."""
    return threads or len(os.sched_getaffinity(0))


class OnnxRuntimeSession:
    """One converted graph, its tokenizer and the pooling: texts in, unit vectors out."""

    def __init__(self, converted: ConvertedModel, int8: bool, threads: int, batch_size: int = 64) -> None:
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ModuleNotFoundError as exc:
            missing = exc.name or "onnxruntime"
            raise ConversionUnsupportedError(f"{missing} is not installed ({install_package_hint(missing)})") from exc
        tokenizer = Tokenizer.from_file(str(converted.directory / "tokenizer.json"))
        # Pad to the batch's longest text and truncate where sentence-transformers does, not where
        # tokenizer.json says (it may pad everything to a fixed length).
        tokenizer.enable_truncation(max_length=converted.max_seq_length)
        tokenizer.enable_padding(pad_id=converted.pad_id, pad_token=converted.pad_token)
        self._tokenizer = tokenizer
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = compute_threads(threads)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self._session = ort.InferenceSession(
            str(converted.onnx_path(int8)), options, providers=["CPUExecutionProvider"]
        )
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._pooling = converted.pooling
        self.dim = converted.dim
        self.batch_size = batch_size

    def _forward(self, texts: Sequence[str]) -> Vectors:
        encoded = self._tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encoded], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = self._session.run(None, {k: v for k, v in feed.items() if k in self._inputs})[0]
        if self._pooling == "cls":
            pooled = hidden[:, 0, :]
        else:
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        pooled = pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        return np.asarray(pooled, dtype=np.float32)

    def token_vectors(self, texts: Sequence[str]) -> list[Vectors]:
        """Per text, the unit-length hidden state of each of its tokens ([CLS], [SEP] and padding left out):
        what token-level similarity (retrieval/rescore.py) compares. One batch, texts truncated as `embed` does."""
        if not texts:
            return []
        encoded = self._tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encoded], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = self._session.run(None, {k: v for k, v in feed.items() if k in self._inputs})[0]
        out = []
        for row, e in enumerate(encoded):
            keep = [i for i, (m, special) in enumerate(zip(e.attention_mask, e.special_tokens_mask, strict=True))
                    if m and not special]  # fmt: skip
            states = np.asarray(hidden[row, keep or [0], :], dtype=np.float32)
            out.append(states / np.clip(np.linalg.norm(states, axis=1, keepdims=True), 1e-12, None))
        return out

    def embed(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> Vectors:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        # Longest first, as sentence-transformers does: texts of similar length pad little.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        for start in range(0, len(texts), self.batch_size):
            rows = order[start : start + self.batch_size]
            out[rows] = self._forward([texts[i] for i in rows])
            if progress:
                progress(len(rows))
        return out
