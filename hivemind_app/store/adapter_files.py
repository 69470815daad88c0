"""An adapter's bytes: their sha256, the check made before llama.cpp is given a file, and a checked cache copy.

Used by both adapter registries (the local one in `store/training.py`, the hub's in `hub/adapters.py`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from hivemind_app.errors import AdapterError

GGUF_MAGIC = b"GGUF"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_adapter_bytes(data: bytes, expected_sha256: str, version: int) -> None:
    """Refuse bytes that are not the published adapter: a checksum mismatch, or not a GGUF file at all."""
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected_sha256:
        raise AdapterError(
            f"Adapter v{version} is corrupt: its sha256 is {actual[:12]}..., the registry says "
            f"{expected_sha256[:12]}...; the previous adapter stays in use. Publish it again or activate another."
        )
    if not data.startswith(GGUF_MAGIC):
        raise AdapterError(f"Adapter v{version} is not a GGUF file; the previous adapter stays in use.")


def verified_copy(source: Callable[[], bytes], expected_sha256: str, version: int, cache_dir: Path) -> Path:
    """The adapter's bytes in `cache_dir`, checked; a cached copy is checked again before it is trusted."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / f"adapter-v{version}-{expected_sha256[:12]}.gguf"
    if target.exists():
        try:
            check_adapter_bytes(target.read_bytes(), expected_sha256, version)
            return target
        except AdapterError:
            target.unlink()  # damaged on disk: fetch it again
    data = source()
    check_adapter_bytes(data, expected_sha256, version)
    partial = target.with_suffix(".part")
    partial.write_bytes(data)
    partial.replace(target)
    return target
