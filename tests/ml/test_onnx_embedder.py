"""The ONNX backends against the real bundled model: converted once, same vectors as torch, int8 in a space of
its own, and every way a conversion can go wrong ends in torch or in a message that says what to do."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from hivemind_app.config import EmbeddingSettings, Settings
from hivemind_app.errors import EmbedderUnavailableError
from hivemind_app.hive import Hive, MemoryDraft
from hivemind_app.ml.backends import configured_space, local_embedder
from hivemind_app.ml.embedder import Embedder, SentenceTransformerEmbedder, bundled_model_path
from hivemind_app.ml.onnx_convert import (
    META_FILE,
    _failure_path,
    _remember_failure,
    conversion_dir,
    convert_model,
    fingerprint,
    pooling_of,
    set_conversion_reporter,
)
from hivemind_app.ml.onnx_embedder import OnnxEmbedder
from hivemind_app.ml.onnx_runtime import ConversionUnsupportedError

TEXTS = [
    "The staging Postgres listens on port 5433",
    "pytest -x stops at the first failure",
    "Überprüfe die Umlaute: Größe, Straße, naïve café 🚀",
    "x",
    " ".join(["a long note past the model's 256-token limit"] * 80),
]


@pytest.fixture(scope="module")
def torch_embedder() -> SentenceTransformerEmbedder:
    model = SentenceTransformerEmbedder("all-MiniLM-L6-v2", device="cpu")
    model.load()
    return model


def _bundled() -> Path:
    path = bundled_model_path()
    assert path is not None
    return path


def _command_lines() -> list[str]:
    lines = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            lines.append(cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            continue  # a process that ended while we looked
    return lines


def _linked_copy(target: Path, replace: dict[str, str] | None = None) -> Path:
    """The bundled model as a directory of symlinks (cheap), with some files' text replaced."""
    source = _bundled()
    for path in source.rglob("*"):
        if path.is_file():
            dest = target / path.relative_to(source)
            dest.parent.mkdir(parents=True, exist_ok=True)
            relative = str(path.relative_to(source))
            if replace and relative in replace:
                dest.write_text(replace[relative])
            else:
                dest.symlink_to(path)
    return target


def test_onnx_vectors_are_torch_vectors_so_both_serve_one_space(
    minilm: Embedder, torch_embedder: SentenceTransformerEmbedder
) -> None:
    assert getattr(minilm, "backend", None) == "onnx" and minilm.model_name == torch_embedder.model_name
    onnx, torch = minilm.embed(TEXTS), torch_embedder.embed(TEXTS)
    assert onnx.shape == torch.shape == (len(TEXTS), 384) and onnx.dtype == np.float32
    assert np.allclose(np.linalg.norm(onnx, axis=1), 1.0, atol=1e-5)
    assert np.min(np.sum(onnx * torch, axis=1)) > 0.9999
    assert minilm.embed([]).shape == (0, 384)


@pytest.mark.slow  # converts the int8 graph
def test_int8_vectors_are_close_to_fp32_but_live_in_a_space_named_for_them(
    minilm: Embedder, converted_models: Path
) -> None:
    int8 = local_embedder("all-MiniLM-L6-v2+int8", EmbeddingSettings(device="cpu", converted_dir=converted_models))
    assert int8.model_name == "all-MiniLM-L6-v2+int8" and getattr(int8, "backend", None) == "onnx-int8"
    cosines = np.sum(int8.embed(TEXTS) * minilm.embed(TEXTS), axis=1)
    assert 0.95 < float(np.min(cosines)) < 0.99999  # close, and really quantised
    assert configured_space(EmbeddingSettings(backend="onnx-int8")) == "all-MiniLM-L6-v2+int8"
    assert configured_space(EmbeddingSettings(backend="torch")) == "all-MiniLM-L6-v2"
    # an int8 store is served by the int8 graph even when the settings name another backend
    served = local_embedder("all-MiniLM-L6-v2+int8", EmbeddingSettings(backend="torch", converted_dir=converted_models))
    assert isinstance(served, OnnxEmbedder) and served.int8


def test_a_converted_model_starts_without_torch_in_a_new_process(minilm: Embedder, converted_models: Path) -> None:
    minilm.embed(["make sure the conversion exists"])
    code = (
        "import sys, json, time\n"
        "from pathlib import Path\n"
        "from hivemind_app.config import EmbeddingSettings\n"
        "from hivemind_app.ml.backends import local_embedder\n"
        f"cfg = EmbeddingSettings(device='cpu', converted_dir=Path({str(converted_models)!r}))\n"
        "e = local_embedder('all-MiniLM-L6-v2', cfg)\n"
        "v = e.embed(['redis port on staging'])\n"
        "print(json.dumps({'backend': e.backend, 'dim': int(v.shape[1]), 'torch': 'torch' in sys.modules}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(out.stdout) == {"backend": "onnx", "dim": 384, "torch": False}
    assert "Converting" not in out.stderr


@pytest.mark.slow  # converts the model twice
def test_a_model_changed_in_place_is_converted_anew_and_the_old_conversion_removed(tmp_path: Path) -> None:
    model = _linked_copy(tmp_path / "model")
    root = tmp_path / "converted"
    before = fingerprint(model)
    assert fingerprint(model) == before
    first = convert_model(str(model), root, int8=False)
    config = model / "config.json"
    text = config.resolve().read_text()
    config.unlink()
    config.write_text(text)  # same content, a new file: a fine-tuned model saved over the old one
    assert fingerprint(model) != before
    second = convert_model(str(model), root, int8=False)
    assert second.directory == conversion_dir(root, model) != first.directory
    assert not first.directory.exists() and second.onnx_path(False).exists()
    assert conversion_dir(root, _bundled()) != second.directory


@pytest.mark.slow  # converts the model twice
def test_a_corrupt_converted_file_is_converted_again_and_the_conversion_shows_progress(tmp_path: Path) -> None:
    root = tmp_path / "converted"
    steps: list[tuple[str, float]] = []
    set_conversion_reporter(lambda step, done: steps.append((step, done)))
    try:
        first = OnnxEmbedder("all-MiniLM-L6-v2", root)
        expected = first.embed(TEXTS[:2])
        fractions = [done for _, done in steps]
        assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(steps) >= 4
        assert any("export" in step for step, _ in steps)
        converted = convert_model("all-MiniLM-L6-v2", root, int8=False)
        assert json.loads((converted.directory / META_FILE).read_text())["fp32_min_cosine"] > 0.9999

        steps.clear()
        OnnxEmbedder("all-MiniLM-L6-v2", root).embed(["cached"])
        assert steps == []  # converted once, not on every start

        model_file = converted.onnx_path(False)
        model_file.write_bytes(model_file.read_bytes()[:4096])  # a disk that filled up mid-write
        again = OnnxEmbedder("all-MiniLM-L6-v2", root)
        assert np.allclose(again.embed(TEXTS[:2]), expected, atol=1e-5)
        assert steps and steps[-1][1] == 1.0
    finally:
        set_conversion_reporter(None)


def test_a_model_onnx_cannot_run_falls_back_to_torch_and_int8_says_what_to_do(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, torch_embedder: SentenceTransformerEmbedder
) -> None:
    max_pooling = json.dumps({"word_embedding_dimension": 384, "pooling_mode_max_tokens": True})
    model = str(_linked_copy(tmp_path / "max-pooled", {"1_Pooling/config.json": max_pooling}))
    cfg = EmbeddingSettings(model=model, device="cpu", converted_dir=tmp_path / "converted")

    fp32 = local_embedder(model, cfg)
    with caplog.at_level(logging.WARNING, logger="hivemind_app"):
        vectors = fp32.embed(TEXTS[:2])
    assert getattr(fp32, "backend", None) == "torch" and vectors.shape == (2, 384)
    assert "Embedding with torch" in caplog.text and "pooling max" in caplog.text
    # it really is max pooling now: not the bundled (mean-pooled) vectors
    assert float(np.min(np.sum(vectors * torch_embedder.embed(TEXTS[:2]), axis=1))) < 0.99

    int8 = local_embedder(model + "+int8", cfg)
    with pytest.raises(EmbedderUnavailableError, match=r"cannot run on ONNX Runtime: pooling max.*embedding.backend"):
        int8.embed(["x"])
    assert not (tmp_path / "converted").exists() or not any((tmp_path / "converted").glob("*/model.onnx"))


def test_an_unwritable_converted_dir_falls_back_to_torch(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the directory should be")
    fp32 = OnnxEmbedder("all-MiniLM-L6-v2", blocker / "converted", fallback=SentenceTransformerEmbedder())
    with caplog.at_level(logging.WARNING, logger="hivemind_app"):
        assert fp32.embed(["still works"]).shape == (1, 384)
    assert fp32.backend == "torch" and "cannot write to embedding.converted_dir" in caplog.text
    assert blocker.read_text() == "a file where the directory should be"


@pytest.mark.slow  # converts the int8 graph unless an earlier test did
def test_switching_to_int8_is_reported_and_reembed_moves_the_store_into_the_int8_space(isolated_env: Path) -> None:
    with Hive(Settings()) as hive:
        hive.store_memories([MemoryDraft(f"note {n}: redis replication lag on replica {n}") for n in range(6)])
        assert hive.search_model == "all-MiniLM-L6-v2"
    with Hive(Settings(embedding={"backend": "onnx-int8"})) as hive:
        assert "make all-MiniLM-L6-v2+int8" in (hive.model_mismatch or "")
        assert hive.search_memory("replication lag", mode="vector").hits  # the fp32 vectors still serve
        state = hive.reembed(model="all-MiniLM-L6-v2")  # `reembed --model`: its int8 space, on this backend
        assert state.finished and state.done == 6 and state.dropped == ["all-MiniLM-L6-v2"]
        assert hive.search_model == "all-MiniLM-L6-v2+int8" and hive.model_mismatch is None
        hits = hive.search_memory("which replica lags behind", mode="vector").hits
        assert len(hits) == 6 and hits[0].score > 0.3


@pytest.mark.slow  # converts the model in a fresh CLI process
def test_the_cli_shows_a_progress_bar_while_it_converts(tmp_path: Path) -> None:
    from tests.support.console import console_script

    exe = console_script()
    assert exe is not None
    env = {**os.environ, "HIVEMIND_EMBEDDING__CONVERTED_DIR": str(tmp_path / "fresh"), "HIVEMIND_FORCE_PROGRESS": "1"}
    first = subprocess.run(
        [exe, "store", "a note that needs a vector"], capture_output=True, text=True, env=env, timeout=300
    )
    assert first.returncode == 0, first.stderr
    assert "embedding model converted for ONNX Runtime (once)" in first.stderr
    assert first.stdout.startswith("stored ")
    second = subprocess.run([exe, "recall", "note vector"], capture_output=True, text=True, env=env, timeout=120)
    assert second.returncode == 0 and "converted for ONNX Runtime" not in second.stderr  # converted once
    assert "a note that needs a vector" in second.stdout


@pytest.mark.parametrize(
    ("pooling", "expected"),
    [
        ({"word_embedding_dimension": 384, "pooling_mode_mean_tokens": True}, "mean"),
        ({"embedding_dimension": 384, "pooling_mode": "mean"}, "mean"),  # sentence-transformers 5's format
        ({"embedding_dimension": 384, "pooling_mode": ["cls"]}, "cls"),
        ({"embedding_dimension": 384}, "mean"),  # sentence-transformers' default
        ({"embedding_dimension": 384, "pooling_mode": ["mean", "max"]}, "pooling mean+max"),
        ({"word_embedding_dimension": 384, "pooling_mode_weightedmean_tokens": True}, "pooling weightedmean"),
    ],
)
def test_both_pooling_config_formats_are_read_and_unsupported_poolings_refused(
    tmp_path: Path, pooling: dict[str, object], expected: str
) -> None:
    model = _linked_copy(tmp_path / "model", {"1_Pooling/config.json": json.dumps(pooling)})
    if expected.startswith("pooling "):
        with pytest.raises(ConversionUnsupportedError, match=expected.replace("+", r"\+")):
            pooling_of(model)
    else:
        assert pooling_of(model) == expected


def test_a_gpu_device_keeps_fp32_on_torch_and_int8_on_onnx(converted_models: Path) -> None:
    cfg = EmbeddingSettings(device="cuda", converted_dir=converted_models)
    assert isinstance(local_embedder("all-MiniLM-L6-v2", cfg), SentenceTransformerEmbedder)
    assert isinstance(local_embedder("all-MiniLM-L6-v2+int8", cfg), OnnxEmbedder)
    cpu = EmbeddingSettings(device="cpu", converted_dir=converted_models)
    assert isinstance(local_embedder("all-MiniLM-L6-v2", cpu), OnnxEmbedder)


def test_threads_embedding_at_once_get_the_vectors_one_thread_gets(minilm: Embedder) -> None:
    texts = [f"note {n}: the build on runner {n % 7} failed at step {n % 5}" for n in range(64)]
    alone = minilm.embed(texts)
    with ThreadPoolExecutor(4) as pool:
        parts = list(pool.map(lambda start: minilm.embed(texts[start : start + 8]), range(0, 64, 8)))
    assert np.allclose(np.concatenate(parts), alone, atol=1e-5)


def test_a_failed_conversion_ends_the_progress_display_and_says_why(tmp_path: Path) -> None:
    model = _linked_copy(tmp_path / "broken", {"model.safetensors": "not a safetensors file"})
    steps: list[tuple[str, float]] = []

    def fragile_display(step: str, done: float) -> None:
        steps.append((step, done))
        raise RuntimeError("the terminal went away")  # a display that fails must not change the outcome

    set_conversion_reporter(fragile_display)
    try:
        with pytest.raises(ConversionUnsupportedError, match=r"converting into .* failed: .*"):
            convert_model(str(model), tmp_path / "converted", int8=False)
    finally:
        set_conversion_reporter(None)
    assert steps and steps[-1] == ("failed", 1.0)
    assert not list((tmp_path / "converted").glob("*/model.onnx"))


@pytest.mark.slow  # converts the model in a fresh process
def test_two_processes_starting_at_once_convert_the_model_once_and_neither_imports_torch(tmp_path: Path) -> None:
    code = (
        "import json, logging, sys\n"
        "from pathlib import Path\n"
        "logging.basicConfig(level=logging.INFO, format='%(message)s')\n"
        "from hivemind_app.ml.onnx_embedder import OnnxEmbedder\n"
        f"e = OnnxEmbedder('all-MiniLM-L6-v2', Path({str(tmp_path / 'converted')!r}))\n"
        "v = e.embed(['redis port on staging'])\n"
        "print(json.dumps({'backend': e.backend, 'dim': int(v.shape[1]), 'torch': 'torch' in sys.modules}))\n"
    )
    runs = [
        subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [run.communicate(timeout=300) for run in runs]
    assert all(run.returncode == 0 for run in runs), [err for _, err in outs]
    assert [json.loads(out) for out, _ in outs] == [{"backend": "onnx", "dim": 384, "torch": False}] * 2
    assert sum(err.count("Converted all-MiniLM-L6-v2") for _, err in outs) == 1  # the other one waited
    assert len(list((tmp_path / "converted").glob("*/model.onnx"))) == 1


def test_the_vector_index_library_and_onnxruntime_load_in_either_order(converted_models: Path) -> None:
    """A store opened before the first query loads usearch first; some usearch wheels then crash the process
    when onnxruntime loads (pyproject pins the versions that do not)."""
    embed = (
        "from pathlib import Path\n"
        "from hivemind_app.config import EmbeddingSettings\n"
        "from hivemind_app.ml.backends import local_embedder\n"
        f"cfg = EmbeddingSettings(device='cpu', converted_dir=Path({str(converted_models)!r}))\n"
        "print(local_embedder('all-MiniLM-L6-v2', cfg).embed(['a query after the index loaded']).shape)\n"
    )
    for first in ("import usearch.index\n", ""):
        code = first + embed + ("import usearch.index\n" if not first else "")
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, f"{first or 'onnxruntime first'}: exit {run.returncode}: {run.stderr[-500:]}"
        assert run.stdout.strip() == "(1, 384)"


@pytest.mark.slow  # converts the model once more
def test_a_model_the_converter_refused_goes_to_torch_at_once_until_a_package_changes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model = _linked_copy(tmp_path / "model")
    root = tmp_path / "converted"
    directory = conversion_dir(root, model)
    directory.parent.mkdir(parents=True)
    # what the converter records when the exported graph fails its check against torch
    _remember_failure(directory, False, "the fp32 ONNX graph disagrees with torch (min cosine 0.4210)")
    cfg = EmbeddingSettings(model=str(model), device="cpu", converted_dir=root)
    fp32 = local_embedder(str(model), cfg)
    with caplog.at_level(logging.WARNING, logger="hivemind_app"):
        assert fp32.embed(["no second try"]).shape == (1, 384)
    assert getattr(fp32, "backend", None) == "torch"
    assert "disagrees with torch (min cosine 0.4210) (remembered" in caplog.text
    assert "Converting" not in caplog.text and not directory.exists()

    record = json.loads(_failure_path(directory, False).read_text())
    record["versions"]["torch"] = "0.0.1"  # torch was upgraded since: worth another try
    _failure_path(directory, False).write_text(json.dumps(record))
    assert convert_model(str(model), root, int8=False).onnx_path(False).exists()


def test_a_conversion_that_runs_too_long_is_stopped_and_torch_takes_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from hivemind_app.ml import onnx_convert

    monkeypatch.setattr(onnx_convert, "CONVERSION_TIMEOUT_S", 0.5)  # a converter stuck for good, in short
    fp32 = OnnxEmbedder("all-MiniLM-L6-v2", tmp_path / "converted", fallback=SentenceTransformerEmbedder())
    with caplog.at_level(logging.WARNING, logger="hivemind_app"):
        assert fp32.embed(["still answered"]).shape == (1, 384)
    assert fp32.backend == "torch" and "took over 0 s; stopped it" in caplog.text
    assert not [cmd for cmd in _command_lines() if str(tmp_path) in cmd]  # the child is gone, not running on
    conversion = conversion_dir(tmp_path / "converted", _bundled())
    assert not _failure_path(conversion, False).exists()  # a timeout is not the model's fault: try again later
