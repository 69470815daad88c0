"""Converting a sentence-transformers model for ONNX Runtime, once per model and machine.

`convert_model` exports the model's transformer with torch's dynamo exporter, checks the exported graph
against sentence-transformers on probe sentences, and, for the int8 variant, quantises the weights per
channel. The work runs in a child process (this module's `__main__`), so torch is never imported by the
caller. The files are kept in `embedding.converted_dir` under a fingerprint of the model's files, behind a
file lock so two processes never convert at the same time; conversions of earlier versions of the same
model directory are removed.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from hivemind_app.ml.embedder import Vectors, resolve_model
from hivemind_app.ml.onnx_runtime import (
    FP32_FILE,
    INT8_FILE,
    ConversionUnsupportedError,
    ConvertedModel,
    OnnxRuntimeSession,
)

log = logging.getLogger(__name__)

# Bump when what a conversion writes changes, so older conversions are redone rather than misread.
CONVERSION_FORMAT = 1
META_FILE = "conversion.json"
# A conversion takes ~5-15 s on 2 cores; one still running after this is stuck (or the machine is).
CONVERSION_TIMEOUT_S = 600.0
# fp32 must reproduce torch (measured: min cosine 1.0000 to 4 places); int8 may move vectors a little
# (measured: min 0.987 over 3,000 notes) but not turn them into something else.
MIN_COSINE = {False: 0.9999, True: 0.95}
PROBES = (
    "redis port on staging is 6380",
    "pytest fixture that starts redis-server on a free port",
    "Why does the CI job time out after the dependency upgrade? It hangs in the training tests.",
    "löschen: Datei mit Umlauten und emoji 🚀 im Namen",
    "x",
    " ".join(["a long note that runs past the model's sequence limit"] * 60),
)

#: (what is happening, fraction done 0..1): conversion steps for a progress bar or a log line
ConversionProgress = Callable[[str, float], None]

_reporter: ConversionProgress | None = None


def set_conversion_reporter(reporter: ConversionProgress | None) -> None:
    """Where conversions in this process report their steps (the CLI's progress bar, the TUI's widget)."""
    global _reporter
    _reporter = reporter


def _source_files(source: Path) -> list[Path]:
    return sorted(p for p in source.rglob("*") if p.is_file() and not p.name.startswith("."))


def fingerprint(source: Path) -> str:
    """Changes when any of the model's files changes (path, size, mtime): a stale conversion is never used."""
    digest = hashlib.sha256(f"{CONVERSION_FORMAT}:{source.resolve()}".encode())
    for path in _source_files(source):
        stat = path.stat()
        digest.update(f"{path.relative_to(source)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def conversion_dir(converted_root: Path, source: Path) -> Path:
    slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in source.resolve().name)[:60]
    return converted_root / f"{slug}-{fingerprint(source)}"


def _pooling_of(source: Path) -> str:
    """The pooling the ONNX runner must apply; unsupported module stacks refuse conversion."""
    modules_file = source / "modules.json"
    if not modules_file.exists():
        raise ConversionUnsupportedError(f"{source} has no modules.json (not a sentence-transformers model)")
    try:
        modules = json.loads(modules_file.read_text())
        kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
        extra = [k for k in kinds if k not in ("Transformer", "Pooling", "Normalize")]
        if extra or kinds[:2] != ["Transformer", "Pooling"]:
            raise ConversionUnsupportedError(f"modules {', '.join(kinds)} (only Transformer + Pooling [+ Normalize])")
        config = json.loads((source / modules[1].get("path", "1_Pooling") / "config.json").read_text())
        if not isinstance(config, dict):
            raise TypeError("the pooling config is not a JSON object")
    except (OSError, ValueError, AttributeError, TypeError) as exc:
        raise ConversionUnsupportedError(f"unreadable modules.json or pooling config in {source} ({exc})") from exc
    # Older sentence-transformers write one flag per mode (`pooling_mode_mean_tokens: true`), newer ones
    # `pooling_mode: "mean"` (or a list), which then wins; with neither, sentence-transformers pools by mean.
    named = config.get("pooling_mode")
    if named is not None:
        modes = [str(m) for m in (named if isinstance(named, list) else [named])]
    else:
        modes = [
            str(k).removeprefix("pooling_mode_").removesuffix("_tokens").removesuffix("_token")
            for k, v in config.items()
            if k.startswith("pooling_mode_") and v is True
        ] or ["mean"]
    if modes not in (["mean"], ["cls"]):
        raise ConversionUnsupportedError(f"pooling {'+'.join(modes) or 'none'} (only mean or cls)")
    return modes[0]


@contextlib.contextmanager
def _locked(directory: Path, wait_s: float) -> Iterator[None]:
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        handle = open(_lock_path(directory), "w")  # noqa: SIM115  # closed below
    except OSError as exc:
        raise ConversionUnsupportedError(f"cannot write to embedding.converted_dir {directory.parent} ({exc})") from exc
    with handle:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:  # the other converter is stuck: do not wait with it
                    raise ConversionUnsupportedError(
                        f"another process has been converting into {directory} for over {wait_s:.0f} s"
                    ) from None
                time.sleep(0.2)
            except OSError as exc:  # a file system without locks (some network mounts)
                raise ConversionUnsupportedError(f"cannot lock {handle.name} ({exc})") from exc
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _lock_path(directory: Path) -> Path:
    return directory.parent / f".{directory.name}.lock"


def _read_meta(directory: Path, int8: bool) -> ConvertedModel | None:
    try:
        meta = json.loads((directory / META_FILE).read_text())
    except (OSError, ValueError):
        return None
    try:
        converted = _from_meta(directory, meta)
    except (KeyError, TypeError, ValueError):
        return None
    if meta.get("format") != CONVERSION_FORMAT or not converted.onnx_path(int8).exists():
        return None
    if int8 and "int8_min_cosine" not in meta:
        return None
    return converted


def _remove_older_conversions(current: Path, source: Path) -> None:
    """Conversions of earlier versions of the same model directory (~100 MB each) are never used again."""
    slug = current.name.rsplit("-", 1)[0]
    for other in current.parent.glob(f"{slug}-*"):
        if other == current or not other.is_dir():
            continue
        try:
            meta = json.loads((other / META_FILE).read_text())
        except (OSError, ValueError):
            continue
        if meta.get("source") == str(source.resolve()):
            shutil.rmtree(other, ignore_errors=True)
            _lock_path(other).unlink(missing_ok=True)


def _from_meta(directory: Path, meta: dict[str, Any]) -> ConvertedModel:
    return ConvertedModel(
        directory,
        int(meta["dim"]),
        int(meta["max_seq_length"]),
        str(meta["pooling"]),
        str(meta["pad_token"]),
        int(meta["pad_id"]),
    )


def convert_model(model_name: str, converted_root: Path, int8: bool) -> ConvertedModel:
    """The converted model for `model_name`, converting it first if this machine has not yet."""
    source = Path(resolve_model(model_name))
    if not source.is_dir():
        raise ConversionUnsupportedError(f"{model_name!r} is not a local model directory")
    try:
        directory = conversion_dir(converted_root, source)
    except OSError as exc:  # a model file vanished or became unreadable while we looked
        raise ConversionUnsupportedError(f"cannot read the model files in {source} ({exc})") from exc
    found = _read_meta(directory, int8)
    if found is not None:
        return found
    _pooling_of(source)  # refuse an unsupported model before waiting for or starting a conversion
    refused = _remembered_failure(directory, int8)
    if refused is not None:
        raise ConversionUnsupportedError(refused)
    with _locked(directory, CONVERSION_TIMEOUT_S):
        found = _read_meta(directory, int8)  # another process may have converted it while we waited
        if found is not None:
            return found
        refused = _remembered_failure(directory, int8)
        if refused is not None:
            raise ConversionUnsupportedError(refused)
        missing = [name for name in ("torch", "onnxscript", "onnx") if importlib.util.find_spec(name) is None]
        if missing:
            raise ConversionUnsupportedError(f"{', '.join(missing)} not installed (the ONNX conversion needs it)")
        # Without a progress bar to show it, say why this start is slow.
        level = logging.INFO if _reporter else logging.WARNING
        started = time.monotonic()
        log.log(level, "Converting embedding model %s for ONNX Runtime (once per machine, ~10 s)", model_name)
        try:
            _convert_in_child(source, directory, int8, _reporter, CONVERSION_TIMEOUT_S)
        except _ModelRefused as exc:
            _remember_failure(directory, int8, str(exc))
            raise
        log.log(level, "Converted %s in %.1f s into %s", model_name, time.monotonic() - started, directory)
        _remove_older_conversions(directory, source)
        found = _read_meta(directory, int8)
        if found is None:
            raise ConversionUnsupportedError(f"the conversion into {directory} left no usable files")
        return found


class _ModelRefused(ConversionUnsupportedError):
    """The converter ran and found this model cannot be converted (not a crash, a timeout or a full disk):
    remembered, so later starts go straight to torch instead of trying again."""


def _failure_path(directory: Path, int8: bool) -> Path:
    return directory.parent / f".{directory.name}{'-int8' if int8 else ''}.failed.json"


def _versions() -> dict[str, str]:
    found = {}
    for name in ("torch", "onnx", "onnxscript", "onnxruntime", "transformers", "sentence-transformers"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found[name] = importlib.metadata.version(name)
    return found


def _remember_failure(directory: Path, int8: bool, reason: str) -> None:
    with contextlib.suppress(OSError):
        _write_json(
            _failure_path(directory, int8), {"format": CONVERSION_FORMAT, "versions": _versions(), "reason": reason}
        )


def _remembered_failure(directory: Path, int8: bool) -> str | None:
    """Why this model could not be converted last time, unless a package it depends on changed since."""
    try:
        record = json.loads(_failure_path(directory, int8).read_text())
    except (OSError, ValueError):
        return None
    if (
        not isinstance(record, dict)
        or record.get("format") != CONVERSION_FORMAT
        or record.get("versions") != _versions()
    ):
        return None
    return f"{record.get('reason')} (remembered from an earlier try; upgrading torch or onnx tries again)"


def _convert_in_child(
    source: Path, directory: Path, int8: bool, reporter: ConversionProgress | None, timeout_s: float
) -> None:
    """Run `_convert` in a child process: torch (~1 GB) never stays in the caller, and the exporter's
    chatter on stdout (the MCP server's protocol channel) and its logging never reach the caller's.

    The child writes one JSON object per line on its stdout: `{"step", "done"}` or, last, `{"error"}`.
    It exits when its stdin closes, so a caller killed outright leaves no converter running behind it.
    """
    # -P: the caller's working directory (a user's project, for the MCP server) must not shadow packages
    command = [sys.executable, "-P", "-m", "hivemind_app.ml.onnx_convert", str(source), str(directory)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TOKENIZERS_PARALLELISM": "false"}
    error: str | None = None
    refused = finished = timed_out = False
    with tempfile.TemporaryFile() as stderr:
        try:
            child = subprocess.Popen(  # our own module, with paths we resolved
                [*command, *(["--int8"] if int8 else [])],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                env=env,
                text=True,
            )
        except OSError as exc:
            raise ConversionUnsupportedError(f"cannot start the converter ({exc})") from exc

        def stop_stuck_child() -> None:
            nonlocal timed_out
            timed_out = True
            child.kill()

        watchdog = threading.Timer(timeout_s, stop_stuck_child)
        watchdog.daemon = True
        watchdog.start()
        try:
            assert child.stdout is not None
            for line in child.stdout:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if not isinstance(event, dict):
                    continue
                if "error" in event:
                    error, refused = str(event["error"]), bool(event.get("refused"))
                elif "step" in event:
                    finished = float(event["done"]) >= 1.0
                    _tell(reporter, str(event["step"]), float(event["done"]))
            code = child.wait()
        finally:
            watchdog.cancel()
            if child.poll() is None:  # interrupted while converting: leave no orphan behind
                child.kill()
                child.wait()
            if child.stdin is not None:
                with contextlib.suppress(OSError):
                    child.stdin.close()
            if not finished:
                _tell(reporter, "failed", 1.0)  # a progress display waiting for the end gets it
        if timed_out:
            raise ConversionUnsupportedError(f"converting into {directory} took over {timeout_s:.0f} s; stopped it")
        if code != 0 or error is not None:
            stderr.seek(0)
            tail = [line for line in stderr.read().decode(errors="replace").splitlines() if line.strip()][-1:]
            detail = error or (tail[0] if tail else f"the converter exited with status {code}")
            raise (_ModelRefused if refused else ConversionUnsupportedError)(
                f"converting into {directory} failed: {detail}"
            )


def _tell(reporter: ConversionProgress | None, step: str, done: float) -> None:
    """A display that fails must not fail the conversion it shows."""
    if reporter is None:
        log.info("converting: %s", step)
        return
    try:
        reporter(step, done)
    except Exception:
        log.debug("the conversion progress display failed", exc_info=True)


def _convert(source: Path, directory: Path, int8: bool, report: ConversionProgress) -> None:
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    pooling = _pooling_of(source)
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
        converted = _from_meta(directory, meta)
        meta["fp32_min_cosine"] = _check(converted, False, expected)
        np.save(directory / "probes.npy", expected)
        _write_json(meta_path, meta)
    if int8 and "int8_min_cosine" not in meta:
        converted = _from_meta(directory, meta)
        report("quantising the weights to int8", 0.85)
        _quantize(directory / FP32_FILE, directory / INT8_FILE)
        report("checking the int8 graph", 0.95)
        meta["int8_min_cosine"] = _check(converted, True, np.load(directory / "probes.npy"))
        _write_json(meta_path, meta)
    report("done", 1.0)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)


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


def _child_main(argv: list[str]) -> int:
    """`python -m hivemind_app.ml.onnx_convert SOURCE DIRECTORY [--int8]`, as `_convert_in_child` runs it."""
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
        _convert(source, directory, int8, report)
    except ConversionUnsupportedError as exc:  # the model itself: the export or the check said no
        events.write(json.dumps({"error": str(exc), "refused": True}) + "\n")
        return 2
    except Exception as exc:  # a full disk, a read-only cache, a model torch cannot load
        detail = str(exc).splitlines()[0] if str(exc) else "no detail"
        events.write(json.dumps({"error": f"{type(exc).__name__}: {detail}"}) + "\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
