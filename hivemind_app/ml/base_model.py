"""The Hugging Face form of the inference model, which peft trains on.

For a GGUF base (the bundled SmolLM2 by default), transformers de-quantises it once (tens of seconds) and
the result is cached as float32 safetensors in the data directory, keyed by the GGUF's name and a digest
of its first megabyte and size, so a changed model file is converted again rather than trained on stale.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import shutil
from collections.abc import Callable
from pathlib import Path

from hivemind_app.errors import TrainingError
from hivemind_app.install import install_extra_hint


def _fingerprint(gguf_path: Path) -> str:
    digest = hashlib.sha256(str(gguf_path.stat().st_size).encode())
    with gguf_path.open("rb") as handle:
        digest.update(handle.read(1 << 20))
    return digest.hexdigest()[:12]


def hf_base_dir(gguf_path: Path, cache_root: Path, progress: Callable[[str], None] | None = None) -> Path:
    """A directory `from_pretrained` can load: the cached conversion of `gguf_path`, made now if missing."""
    if not gguf_path.is_file():
        raise TrainingError(f"The base model {gguf_path} does not exist; set infer.model_path to a GGUF file.")
    target = cache_root / f"{gguf_path.stem}-{_fingerprint(gguf_path)}"
    if (target / "config.json").exists() and (target / "model.safetensors").exists():
        return target
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise TrainingError(f"Training needs the train extra: {install_extra_hint('train')}") from exc
    from hivemind_app.ml.lora import quiet_transformers

    quiet_transformers()
    if progress is not None:
        progress(f"de-quantising {gguf_path.name} (once; cached in {cache_root})")
    try:
        # transformers draws its own tqdm bar here, whatever its logging settings; ours is the caller's.
        with contextlib.redirect_stderr(io.StringIO()):
            tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
            model = AutoModelForCausalLM.from_pretrained(
                gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32
            )
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise TrainingError(f"transformers cannot load {gguf_path.name} as a trainable model: {exc}") from exc
    # What is saved is plain float32 weights: drop the note that they came from a quantised file, or
    # save_pretrained refuses ("quantized with gguf and is not serializable").
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None  # type: ignore[assignment]
    model.is_quantized = False  # type: ignore[assignment]
    partial = target.with_name(target.name + ".part")
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    shutil.rmtree(target, ignore_errors=True)
    partial.replace(target)
    return target
