"""A peft LoRA adapter (safetensors) written as a GGUF LoRA adapter that llama.cpp loads with `lora_path`.

Two details decide whether llama.cpp then computes what peft computed:

- Names: peft's `model.layers.N.self_attn.q_proj.lora_A.weight` is llama.cpp's `blk.N.attn_q.weight.lora_a`.
- Row order: when a llama-architecture model is converted to GGUF, the rows of the q and k projections are
  permuted (llama.cpp's rotary embedding pairs dimensions differently from HF's). The base model here came
  from that GGUF, de-permuted by transformers, so the adapter's B matrices for q and k must be permuted the
  same way again. A only mixes the input side, which no permutation touches.

llama.cpp scales the product by `adapter.lora.alpha / r`, as peft does.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from hivemind_app.errors import AdapterError

_PEFT_NAME = re.compile(
    r"(?:base_model\.model\.)?model\.layers\.(\d+)\.(self_attn|mlp)\.(\w+)_proj\.lora_([AB])\.weight$"
)
_GGUF_NAMES = {
    "q": "attn_q",
    "k": "attn_k",
    "v": "attn_v",
    "o": "attn_output",
    "gate": "ffn_gate",
    "up": "ffn_up",
    "down": "ffn_down",
}


def _rope_permute(b: npt.NDArray[np.float32], heads: int) -> npt.NDArray[np.float32]:
    """The row permutation llama.cpp's converter applies to q/k weights, applied to a LoRA B (out x r)."""
    out, rank = b.shape
    return b.reshape(heads, 2, out // heads // 2, rank).swapaxes(1, 2).reshape(out, rank)


def gguf_tensor_name(peft_name: str) -> str:
    match = _PEFT_NAME.search(peft_name)
    if match is None or match.group(3) not in _GGUF_NAMES:
        raise AdapterError(f"Adapter tensor {peft_name!r} is not a LoRA weight of a llama-architecture layer.")
    layer, _, proj, side = match.groups()
    return f"blk.{layer}.{_GGUF_NAMES[proj]}.weight.lora_{side.lower()}"


def convert(adapter_dir: Path, out_path: Path, base_config: dict[str, Any], name: str = "hivemind adapter") -> Path:
    """Write `adapter_dir` (peft output) as a GGUF LoRA at `out_path`; `base_config` is the base's config.json."""
    import gguf
    from safetensors.numpy import load_file

    try:
        peft_config = json.loads((adapter_dir / "adapter_config.json").read_text())
        tensors = load_file(str(adapter_dir / "adapter_model.safetensors"))
    except (OSError, ValueError) as exc:
        raise AdapterError(f"Cannot read the peft adapter in {adapter_dir}: {exc}") from exc
    if peft_config.get("peft_type") != "LORA":
        raise AdapterError(f"{adapter_dir} holds a {peft_config.get('peft_type')} adapter, not LoRA.")
    heads = int(base_config["num_attention_heads"])
    kv_heads = int(base_config.get("num_key_value_heads") or heads)

    writer = gguf.GGUFWriter(str(out_path), arch="llama")
    writer.add_name(name)
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(peft_config["lora_alpha"]))
    for peft_name in sorted(tensors):
        target = gguf_tensor_name(peft_name)
        data = np.ascontiguousarray(tensors[peft_name], dtype=np.float32)
        if target.endswith("lora_b") and ".attn_q." in target:
            data = _rope_permute(data, heads)
        elif target.endswith("lora_b") and ".attn_k." in target:
            data = _rope_permute(data, kv_heads)
        writer.add_tensor(target, np.ascontiguousarray(data))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out_path
