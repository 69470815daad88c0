"""The ONNX backends of `embedding.backend`: an `Embedder` that converts its model on first use.

fp32 vectors match torch's to ~1e-6, so `onnx` and `torch` share one vector space; int8 vectors
(cosine ~0.99 with fp32) are a space of their own, which the store names `<model>+int8`. Measured on this
project's 2-core VM (bench/embed.py, 2026-12-01): a query takes 3.1 ms on fp32 ONNX and 1.7 ms on int8
against 10.1 ms on torch; batches run at ~210 and ~430 short notes a second against ~140.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hivemind_app.errors import EmbedderUnavailableError
from hivemind_app.ml.embedder import Vectors, resolve_model
from hivemind_app.ml.onnx_convert import META_FILE, convert_model
from hivemind_app.ml.onnx_runtime import INT8_SUFFIX, ConversionUnsupportedError, OnnxRuntimeSession

log = logging.getLogger(__name__)


class OnnxEmbedder:
    """An `Embedder` on ONNX Runtime; converts the model on first use.

    With `fallback` (fp32 only: the same vector space), a model that cannot be converted is run by the
    fallback instead, with one warning that says why.
    """

    def __init__(
        self,
        model_name: str,
        converted_root: Path,
        *,
        int8: bool = False,
        threads: int = 0,
        batch_size: int = 64,
        fallback: Any = None,
    ) -> None:
        self.source_model = model_name
        # the store's name for this vector space: int8 vectors are not interchangeable with fp32 ones
        self.model_name = model_name + INT8_SUFFIX if int8 else model_name
        self.converted_root = converted_root
        self.int8 = int8
        self.threads = threads
        self.batch_size = batch_size
        self._fallback = fallback
        self._runner: OnnxRuntimeSession | Any = None
        self._failure: EmbedderUnavailableError | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"onnx:{self.model_name}"

    @property
    def backend(self) -> str:
        """What actually runs: `onnx`, `onnx-int8`, or `torch` when the fallback took over."""
        self.load()
        return "torch" if self._runner is self._fallback else ("onnx-int8" if self.int8 else "onnx")

    @property
    def loaded(self) -> bool:
        return self._runner is not None

    def load(self) -> None:
        with self._lock:
            if self._runner is not None:
                return
            if self._failure is not None:
                raise self._failure
            try:
                self._runner = self._open()
            except ConversionUnsupportedError as exc:
                if self._fallback is None:
                    self._failure = EmbedderUnavailableError(
                        f"Embedding model {self.source_model!r} cannot run on ONNX Runtime: {exc}. "
                        "Set embedding.backend to torch; if the store already holds int8 vectors, run "
                        "`hivemind-app reembed` after that (int8 vectors are a space of their own)."
                    )
                    raise self._failure from exc
                if not exc.silent:
                    log.warning("Embedding with torch: %s cannot run on ONNX Runtime (%s)", self.source_model, exc)
                self._runner = self._fallback
            except EmbedderUnavailableError as exc:
                self._failure = exc
                raise

    def _open(self) -> OnnxRuntimeSession:
        source = Path(resolve_model(self.source_model))
        if not source.is_dir():
            # a hub name or a missing path: the fallback's loader explains that better than we can
            raise ConversionUnsupportedError(f"{self.source_model!r} is not a local model directory", silent=True)
        converted = convert_model(self.source_model, self.converted_root, self.int8)
        try:
            return OnnxRuntimeSession(converted, self.int8, self.threads, self.batch_size)
        except ConversionUnsupportedError:
            raise
        except Exception as exc:  # a truncated or corrupt file: convert again, once
            log.warning(
                "The converted model in %s is unreadable (%s); converting it again",
                converted.directory,
                str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
            )
            (converted.directory / META_FILE).unlink(missing_ok=True)
            converted = convert_model(self.source_model, self.converted_root, self.int8)
            try:
                return OnnxRuntimeSession(converted, self.int8, self.threads, self.batch_size)
            except ConversionUnsupportedError:
                raise
            except Exception as again:  # twice unreadable: this machine cannot keep it (a failing disk?)
                raise ConversionUnsupportedError(
                    f"the model converted into {converted.directory} is unreadable even after converting it "
                    f"again ({type(again).__name__})"
                ) from again

    @property
    def dim(self) -> int:
        self.load()
        return int(self._runner.dim)

    def embed(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> Vectors:
        self.load()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors: Vectors = self._runner.embed(texts, progress)
        return vectors
