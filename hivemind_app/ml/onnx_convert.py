"""Converting a sentence-transformers model for ONNX Runtime, once per model and machine.

`convert_model` exports the model's transformer with torch's dynamo exporter, checks the exported graph
against sentence-transformers on probe sentences, and, for the int8 variant, quantises the weights per
channel. The work runs in a child process (`onnx_export.py`), so torch is never imported by the caller.
The files are kept in `embedding.converted_dir` under a fingerprint of the model's files, behind a
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
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from hivemind_app.locks import flock_within
from hivemind_app.ml.embedder import resolve_model
from hivemind_app.ml.onnx_runtime import (
    ConversionUnsupportedError,
    ConvertedModel,
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


def pooling_of(source: Path) -> str:
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
        try:
            taken = flock_within(handle, wait_s, poll_s=0.2)
        except OSError as exc:  # a file system without locks (some network mounts)
            raise ConversionUnsupportedError(f"cannot lock {handle.name} ({exc})") from exc
        if not taken:  # the other converter is stuck: do not wait with it
            raise ConversionUnsupportedError(
                f"another process has been converting into {directory} for over {wait_s:.0f} s"
            )
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
        converted = from_meta(directory, meta)
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


def from_meta(directory: Path, meta: dict[str, Any]) -> ConvertedModel:
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
    pooling_of(source)  # refuse an unsupported model before waiting for or starting a conversion
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
        write_json(
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
    command = [sys.executable, "-P", "-m", "hivemind_app.ml.onnx_export", str(source), str(directory)]
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
            error, refused, finished = _follow(child.stdout, reporter)
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


def _follow(events: Iterable[str], reporter: ConversionProgress | None) -> tuple[str | None, bool, bool]:
    """Read the child's event lines to the end, showing its steps: (error, refused, finished)."""
    error: str | None = None
    refused = finished = False
    for line in events:
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
    return error, refused, finished


def _tell(reporter: ConversionProgress | None, step: str, done: float) -> None:
    """A display that fails must not fail the conversion it shows."""
    if reporter is None:
        log.info("converting: %s", step)
        return
    try:
        reporter(step, done)
    except Exception:
        log.debug("the conversion progress display failed", exc_info=True)


def write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)
