"""LoRA fine-tuning with peft on the HF form of the inference model, and held-out loss.

torch, transformers and peft are imported inside the functions: importing them costs seconds, and only a
trainer needs them. The loss covers the answer only (the tool call and its end-of-turn token): the prompt
is given at inference, so learning to predict it would spend the adapter's capacity on nothing.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hivemind_app.errors import TrainingError

Chat = Sequence[dict[str, str]]
IGNORE = -100


@dataclass(frozen=True)
class LoraRecipe:
    """Hyper-parameters of one training run (from the `train` settings)."""

    r: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    target_modules: tuple[str, ...] = ("q", "k", "v", "o")
    steps: int = 40
    learning_rate: float = 1e-3
    batch_size: int = 8
    max_seq_len: int = 256
    seed: int = 0
    device: str = "auto"

    @property
    def peft_targets(self) -> list[str]:
        return [f"{name}_proj" for name in self.target_modules]


@dataclass(frozen=True)
class StepReport:
    step: int
    steps: int
    loss: float
    examples_per_s: float


@dataclass(frozen=True)
class TrainedAdapter:
    directory: Path
    steps: int
    final_loss: float
    seconds: float
    examples_per_s: float
    device: str


def pick_device(requested: str) -> str:
    import torch

    if requested != "auto":
        return requested
    return "cuda" if torch.cuda.is_available() else "cpu"


def encode(tokenizer: Any, chat: Chat, max_len: int) -> tuple[list[int], list[int]]:
    """Token ids of prompt + answer, and labels that score the answer only.

    The prompt and the answer are tokenized apart, as llama.cpp sees them: it tokenizes the prompt, then
    generates from a token boundary. The tool's result (the turn after the answer) is left out: under
    causal attention, tokens after the last scored one cannot change the loss, so they would cost time only.
    """
    prompt = tokenizer.apply_chat_template(list(chat[:2]), tokenize=False, add_generation_prompt=True)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(chat[2]["content"] + "<|im_end|>", add_special_tokens=False)["input_ids"]
    ids = (prompt_ids + answer_ids)[-max_len:]
    labels = ([IGNORE] * len(prompt_ids) + answer_ids)[-max_len:]
    return ids, labels


def _batch(rows: Sequence[tuple[list[int], list[int]]], pad_id: int, device: str) -> dict[str, Any]:
    import torch

    width = max(len(ids) for ids, _ in rows)
    input_ids = [ids + [pad_id] * (width - len(ids)) for ids, _ in rows]
    labels = [lab + [IGNORE] * (width - len(lab)) for _, lab in rows]
    mask = [[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in rows]
    return {
        "input_ids": torch.tensor(input_ids, device=device),
        "labels": torch.tensor(labels, device=device),
        "attention_mask": torch.tensor(mask, device=device),
    }


def quiet_transformers() -> None:
    """The CLI and TUI draw their own progress; transformers' bars and deprecation notes would garble it."""
    import warnings

    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"(transformers|peft)\b")
    warnings.filterwarnings("ignore", category=UserWarning, module=r"peft\b")


def load_base(base_dir: Path, device: str) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    quiet_transformers()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    return model.to(device), tokenizer  # type: ignore[arg-type]


def _peft_model(base_dir: Path, recipe: LoraRecipe, device: str) -> tuple[Any, Any]:
    """The base model with a fresh LoRA adapter on `recipe`'s targets, and its tokenizer."""
    from peft import LoraConfig, get_peft_model

    model, tokenizer = load_base(base_dir, device)
    config = LoraConfig(
        r=recipe.r,
        lora_alpha=recipe.alpha,  # type: ignore[arg-type]  # peft accepts floats (it scales by alpha / r)
        lora_dropout=recipe.dropout,
        target_modules=recipe.peft_targets,
        bias="none",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config), tokenizer


def learning_rate_factor(recipe: LoraRecipe) -> Callable[[int], float]:
    """Linear warm-up over the first tenth of the steps, then cosine down to a tenth of the rate."""
    warmup = max(1, recipe.steps // 10)

    def rate(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        done = (step - warmup) / max(1, recipe.steps - warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * done))

    return rate


def batch_order(count: int, batch_size: int, seed: int) -> Iterator[list[int]]:
    """Endless batches of example indices: each epoch a fresh shuffle, batches running across epochs."""
    rng = random.Random(seed)
    order: list[int] = []
    while True:
        if len(order) < batch_size:
            more = list(range(count))
            rng.shuffle(more)
            order += more
        picked, order = order[:batch_size], order[batch_size:]
        yield picked


def train_adapter(
    base_dir: Path,
    chats: Sequence[Chat],
    recipe: LoraRecipe,
    out_dir: Path,
    progress: Callable[[StepReport], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainedAdapter:
    """Fine-tune a fresh LoRA adapter on `chats` for `recipe.steps` steps and save it (peft format) in `out_dir`."""
    if not chats:
        raise TrainingError("No training examples: nothing to fine-tune on.")
    import torch

    device = pick_device(recipe.device)
    torch.manual_seed(recipe.seed)
    model, tokenizer = _peft_model(base_dir, recipe, device)
    rows = [encode(tokenizer, chat, recipe.max_seq_len) for chat in chats]
    pad_id = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id)
    params = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(params, lr=recipe.learning_rate, weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, learning_rate_factor(recipe))
    batches = batch_order(len(rows), recipe.batch_size, recipe.seed)
    model.train()
    started = time.perf_counter()
    loss_value = float("nan")
    smoothed: float | None = None
    step = 0
    for step in range(recipe.steps):
        if should_stop is not None and should_stop():
            raise TrainingError("Training was stopped before it finished; nothing was published.")
        loss = model(**_batch([rows[i] for i in next(batches)], pad_id, device)).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimiser.step()
        scheduler.step()
        optimiser.zero_grad(set_to_none=True)
        loss_value = float(loss.detach())
        smoothed = loss_value if smoothed is None else 0.8 * smoothed + 0.2 * loss_value
        if progress is not None:
            elapsed = time.perf_counter() - started
            progress(StepReport(step + 1, recipe.steps, smoothed, (step + 1) * recipe.batch_size / elapsed))
    seconds = time.perf_counter() - started
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir))
    return TrainedAdapter(
        directory=out_dir,
        steps=step + 1,
        final_loss=smoothed if smoothed is not None else loss_value,
        seconds=seconds,
        examples_per_s=(step + 1) * recipe.batch_size / seconds if seconds else 0.0,
        device=device,
    )


def held_out_loss(base_dir: Path, adapter_dir: Path | None, chats: Sequence[Chat], recipe: LoraRecipe) -> float:
    """Mean loss per answer token on `chats`, for the base model or the base with a peft adapter."""
    if not chats:
        return float("nan")
    import torch

    device = pick_device(recipe.device)
    model, tokenizer = load_base(base_dir, device)
    if adapter_dir is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter_dir)
    model.eval()
    pad_id = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id)
    rows = [encode(tokenizer, chat, recipe.max_seq_len) for chat in chats]
    total, tokens = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(rows), recipe.batch_size):
            batch = _batch(rows[start : start + recipe.batch_size], pad_id, device)
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            shifted = logits[:, :-1].reshape(-1, logits.shape[-1])
            targets = batch["labels"][:, 1:].reshape(-1)
            total += float(torch.nn.functional.cross_entropy(shifted, targets, ignore_index=IGNORE, reduction="sum"))
            tokens += int((targets != IGNORE).sum())
    return total / max(1, tokens)
