"""Published LoRA adapters: what one is, and the registry interface the trainer and infer nodes share.

Two registries implement it: the local one (SQLite + files in the data directory; the embedded default,
where the trainer and the infer worker share one machine) and the hub's (Redis, so every node sees the same
versions). Either way an adapter is immutable once published, identified by an increasing version, and
checked against its sha256 before llama.cpp is given the file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from hivemind_app.errors import AdapterError

GGUF_MAGIC = b"GGUF"


@dataclass(frozen=True)
class AdapterInfo:
    version: int
    sha256: str
    size: int
    base_model: str
    created_at: float
    node: str
    metrics: dict[str, Any] = field(default_factory=dict)
    active: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class AdapterRegistry(Protocol):
    def publish(self, path: Path, base_model: str, metrics: dict[str, Any], node: str) -> AdapterInfo: ...

    def activate(self, version: int | None) -> AdapterInfo | None: ...

    def active(self) -> AdapterInfo | None: ...

    def adapters(self) -> list[AdapterInfo]: ...

    def fetch(self, version: int) -> Path: ...

    def record_round(self, report: dict[str, Any]) -> None: ...

    def rounds(self, limit: int = 50) -> list[dict[str, Any]]: ...


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
