"""The child side of a model conversion: runs in its own process (`python -m hivemind_app.ml.onnx_export`),
started by `onnx_convert`, so torch and the exporter's output never enter the caller.

Protocol: one JSON object per line on the original stdout: `{"step", "done"}` while working, and last, on
failure, `{"error", "refused"}` (`refused`: the model itself cannot be converted, so the caller remembers it).
The process exits when its stdin closes, so it never outlives the caller.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from hivemind_app.ml.embedder import Vectors
from hivemind_app.ml.onnx_convert import (
    CONVERSION_FORMAT,
    META_FILE,
    MIN_COSINE,
    PROBES,
    ConversionProgress,
    from_meta,
    pooling_of,
    write_json,
)
from hivemind_app.ml.onnx_runtime import (
    FP32_FILE,
    INT8_FILE,
    ConversionUnsupportedError,
    ConvertedModel,
    OnnxRuntimeSession,
)

log = logging.getLogger(__name__)


def convert_here(source: Path, directory: Path, int8: bool, report: ConversionProgress) -> None:
    """The conversion itself, in this process (the child `_convert_in_child` starts): export, check, quantise."""
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    pooling = pooling_of(source)
    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]

    directory.mkdir(parents=True, exist_ok=True)
    meta_path = directory / META_FILE
    meta: dict[str, Any] = {}
    if meta_path.exists():
        with contextlib.suppress(ValueError):
            meta = json.loads(meta_path.read_text())
    if meta.get("format") != CONVERSION_FORMAT or not (directory / FP32_FILE).exists():
        report("loading the model with torch", 0.05)
        model = SentenceTransformer(str(source), device="cpu", local_files_only=True)
        first_module: Any = model[0]
        transformer = first_module.auto_model.eval()
        tokenizer = model.tokenizer
        max_seq_length = int(model.max_seq_length or 512)
        report("exporting the transformer to ONNX", 0.2)
        _export(torch, transformer, tokenizer, directory / FP32_FILE)
        tokenizer.save_pretrained(str(directory))
        if not (directory / "tokenizer.json").exists():
            raise ConversionUnsupportedError("the model has no fast tokenizer (tokenizer.json)")
        report("checking the ONNX graph against torch", 0.7)
        expected = np.asarray(
            model.encode(list(PROBES), normalize_embeddings=True, show_progress_bar=False), dtype=np.float32
        )
        meta = {
            "format": CONVERSION_FORMAT,
            "source": str(source.resolve()),
            "dim": int(expected.shape[1]),
            "max_seq_length": max_seq_length,
            "pooling": pooling,
            "pad_token": str(tokenizer.pad_token or "[PAD]"),
            "pad_id": int(tokenizer.pad_token_id or 0),
        }
        converted = from_meta(directory, meta)
        meta["fp32_min_cosine"] = _check(converted, False, expected)
        np.save(directory / "probes.npy", expected)
        write_json(meta_path, meta)
    if int8 and "int8_min_cosine" not in meta:
        converted = from_meta(directory, meta)
        report("quantising the weights to int8", 0.85)
        _quantize(directory / FP32_FILE, directory / INT8_FILE)
        report("checking the int8 graph", 0.95)
        meta["int8_min_cosine"] = _check(converted, True, np.load(directory / "probes.npy"))
        write_json(meta_path, meta)
    report("done", 1.0)


def _export(torch: Any, transformer: Any, tokenizer: Any, target: Path) -> None:
    class LastHiddenState(torch.nn.Module):  # type: ignore[misc]
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            out = self.inner(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out.last_hidden_state

    # A padded batch of two different lengths, so batch and token axes are traced as dynamic.
    sample = tokenizer([PROBES[0], PROBES[2]], padding=True, return_tensors="pt")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    if "token_type_ids" not in sample:
        sample["token_type_ids"] = torch.zeros_like(sample["input_ids"])
    tmp = target.with_suffix(".tmp")
    try:
        # The TorchScript exporter (dynamo=False) traces transformers 5's mask code wrongly (outputs off by
        # ~1); the dynamo exporter matches torch to ~1e-6.
        torch.onnx.export(
            LastHiddenState(transformer),
            tuple(sample[name] for name in names),
            str(tmp),
            dynamo=True,
            external_data=False,
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes={name: {0: "batch", 1: "tokens"} for name in [*names, "last_hidden_state"]},
        )
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        raise ConversionUnsupportedError(f"torch.onnx.export failed ({type(exc).__name__}: {exc})") from exc
    tmp.replace(target)


def _quantize(source: Path, target: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = target.with_suffix(".tmp")
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # onnxruntime logs a "consider pre-processing" warning on the root logger
    try:
        # Per-channel scales: cosine with fp32 ~0.993 against ~0.960 per tensor, at the same speed.
        quantize_dynamic(str(source), str(tmp), weight_type=QuantType.QInt8, per_channel=True)
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        raise ConversionUnsupportedError(f"int8 quantisation failed ({type(exc).__name__}: {exc})") from exc
    finally:
        root.setLevel(level)
    tmp.replace(target)


def _check(converted: ConvertedModel, int8: bool, expected: Vectors) -> float:
    got = OnnxRuntimeSession(converted, int8, threads=0).embed(list(PROBES))
    worst = float(np.min(np.sum(got * expected, axis=1)))
    if worst < MIN_COSINE[int8]:
        raise ConversionUnsupportedError(
            f"the {'int8' if int8 else 'fp32'} ONNX graph disagrees with torch (min cosine {worst:.4f})"
        )
    return round(worst, 6)


def child_main(argv: list[str]) -> int:
    """`python -m hivemind_app.ml.onnx_export SOURCE DIRECTORY [--int8]`, as `onnx_convert` runs it."""
    # Progress goes out on a private copy of stdout; fd 1 itself then points at stderr, so whatever the
    # exporter prints (it prints its steps) cannot be mistaken for progress.
    events = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    logging.basicConfig(level=logging.ERROR)
    warnings.simplefilter("ignore")

    def report(step: str, done: float) -> None:
        events.write(json.dumps({"step": step, "done": done}) + "\n")

    def exit_with_parent() -> None:
        sys.stdin.read()  # returns when the parent closes the pipe or dies
        os._exit(3)

    threading.Thread(target=exit_with_parent, daemon=True).start()
    source, directory, int8 = Path(argv[0]), Path(argv[1]), "--int8" in argv[2:]
    try:
        import torch  # noqa: F401  # imported before the loggers are quieted: its import resets their levels

        for name in ("torch", "onnx_ir", "onnxscript", "sentence_transformers", "transformers", "onnxruntime"):
            logging.getLogger(name).setLevel(logging.ERROR)
        convert_here(source, directory, int8, report)
    except ConversionUnsupportedError as exc:  # the model itself: the export or the check said no
        events.write(json.dumps({"error": str(exc), "refused": True}) + "\n")
        return 2
    except Exception as exc:  # a full disk, a read-only cache, a model torch cannot load
        detail = str(exc).splitlines()[0] if str(exc) else "no detail"
        events.write(json.dumps({"error": f"{type(exc).__name__}: {detail}"}) + "\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1:]))
