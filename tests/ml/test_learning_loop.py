"""The learning loop end to end on the real bundled model: learning lifts accuracy, noise is rejected,
an empty or all-failures queue changes nothing, and llama.cpp serves exactly what peft trained."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hivemind_app.hive import Hive
from hivemind_app.ml.examples import clean, split
from hivemind_app.ml.tool_calls import messages_for
from tests.support.tool_uses import TOOLS, shuffled_labels, tool_uses
from tests.support.training import training_settings

# A module that may pay for the session's training round (learned_round) gets more than the default 300 s.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]


def test_a_round_on_realistic_tool_uses_lifts_held_out_accuracy_and_is_promoted(learned_round: dict[str, Any]) -> None:
    report = learned_round["report"]
    evaluation = report["evaluation"]
    print(
        f"\nheld-out tool accuracy: base {evaluation['reference_accuracy']:.0%} -> adapter {evaluation['accuracy']:.0%}"
        f" (exact match {evaluation['reference_exact_match']:.0%} -> {evaluation['exact_match']:.0%}, "
        f"loss {evaluation['base_loss']:.3f} -> {evaluation['loss']:.3f}, {evaluation['held_out']} held out)"
    )
    assert report["verdict"] == "promoted", report["reason"]
    assert evaluation["reference"] == "base"
    assert evaluation["accuracy"] >= evaluation["reference_accuracy"] + 0.2
    assert evaluation["accuracy"] >= evaluation["majority_accuracy"] + 0.3
    assert evaluation["loss"] < evaluation["base_loss"] / 2
    assert report["adapter_version"] == 1
    assert report["queue"]["taken"] == 300 and report["queue"]["failures"] > 0
    assert set(learned_round["stages"]) >= {
        "examples",
        "base model",
        "training",
        "converting",
        "evaluating",
        "publishing",
    }
    with Hive(learned_round["settings"]) as hive:
        active = hive.active_adapter()
        assert active is not None and active.version == 1 and active.metrics["accuracy"] == evaluation["accuracy"]
        assert hive.training_history()[0]["verdict"] == "promoted"
        assert hive.learning_status()["backlog"] == 0


def test_the_gguf_adapter_in_llama_cpp_reproduces_the_peft_model_token_for_token(
    learned_round: dict[str, Any], hf_base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import hivemind_app.ml.gguf_lora as gguf_lora
    from hivemind_app.ml.llm import LocalLLM, bundled_llm_path
    from hivemind_app.ml.lora import quiet_transformers

    quiet_transformers()
    settings = learned_round["settings"]
    with Hive(settings) as hive:
        served = hive.fetch_adapter(1)
    peft_dir = settings.data_dir / "training" / "peft" / "v1"
    tokenizer = AutoTokenizer.from_pretrained(hf_base)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(hf_base, dtype=torch.float32), peft_dir)
    model.eval()
    held_out = split(clean(tool_uses(300, seed=0)).kept, 0.2)[1]
    prompts = [messages_for(use.query, sorted(TOOLS)) for use in held_out[:10]]

    def peft_tokens(messages: list[dict[str, str]]) -> list[int]:
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        ids = tokenizer(text, add_special_tokens=False, return_tensors="pt").input_ids
        with torch.no_grad():
            out = model.generate(ids, max_new_tokens=16, do_sample=False)
        return [t for t in out[0, ids.shape[1] :].tolist() if t != tokenizer.eos_token_id]

    def agreement(adapter: Path) -> int:
        llm = LocalLLM(str(bundled_llm_path()), 2048, None, str(adapter))
        agreed = 0
        for messages, expected in zip(prompts, reference, strict=True):
            text = llm.complete(messages=messages, max_tokens=16).text
            agreed += tokenizer(text, add_special_tokens=False).input_ids[:16] == expected[:16]
        return agreed

    reference = [peft_tokens(m) for m in prompts]
    agreed = agreement(served)
    # Control: the same adapter converted without the q/k row permutation.
    monkeypatch.setattr(gguf_lora, "_rope_permute", lambda b, heads: b)
    unpermuted = gguf_lora.convert(
        peft_dir, tmp_path / "unpermuted.gguf", json.loads((hf_base / "config.json").read_text())
    )
    control = agreement(unpermuted)
    print(f"\nfirst 16 tokens identical on {agreed}/10 prompts (without the q/k permutation: {control}/10)")
    assert agreed >= 7
    assert control < agreed


def test_a_round_trained_on_shuffled_labels_is_rejected_and_nothing_is_published(tmp_path: Path, hf_base: Path) -> None:
    # noise is judged on 20 held-out uses, not 40: fewer can only make a (wrong) promotion harder to reach
    settings = training_settings(tmp_path / "data", hf_base, steps=16, eval_limit=20)
    with Hive(settings) as hive:
        for item in shuffled_labels(tool_uses(300, seed=0)):
            hive.add_to_learning_queue(item)
        report = hive.train_round()
        print(f"\nshuffled labels: {report['reason']}")
        assert report["verdict"] == "rejected"
        assert report["adapter_version"] is None
        assert hive.adapters() == [] and hive.active_adapter() is None
        assert hive.training_history()[0]["verdict"] == "rejected"
        assert hive.learning_status()["backlog"] == 0  # the round used its entries, though it published nothing


def test_an_empty_queue_makes_a_round_that_says_so_and_changes_nothing(tmp_path: Path, hf_base: Path) -> None:
    with Hive(training_settings(tmp_path / "data", hf_base)) as hive:
        report = hive.train_round()
        assert report["verdict"] == "skipped" and "empty" in report["reason"]
        assert hive.adapters() == [] and [r["verdict"] for r in hive.training_history()] == ["skipped"]


def test_an_all_failures_queue_makes_a_round_that_says_so_and_changes_nothing(tmp_path: Path, hf_base: Path) -> None:
    with Hive(training_settings(tmp_path / "data", hf_base)) as hive:
        for item in tool_uses(40, seed=9, failures=1.0):
            hive.add_to_learning_queue(item)
        report = hive.train_round()
        assert report["verdict"] == "skipped" and "40 failed" in report["reason"]
        assert hive.adapters() == [] and hive.active_adapter() is None
        status = hive.learning_status()
        assert status["backlog"] == 0 and status["pool"] == 0
