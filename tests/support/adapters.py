"""Small real GGUF files for registry tests (the registry checks bytes and checksums, not what they compute)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def tiny_gguf(path: Path, seed: int = 0) -> Path:
    import gguf

    writer = gguf.GGUFWriter(str(path), arch="llama")
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, 16.0)
    rng = np.random.default_rng(seed)
    writer.add_tensor("blk.0.attn_q.weight.lora_a", rng.standard_normal((4, 8)).astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def corrupt(path: Path) -> None:
    """Flip bytes in the middle of the file: same size, same magic, different checksum."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 8] = bytes(b ^ 0xFF for b in data[middle : middle + 8])
    path.write_bytes(bytes(data))
