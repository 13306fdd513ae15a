"""TunelabTrainer: the selective loss inside the HF Trainer, normalised over the whole accumulated batch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from tunelab.config.schema import LoraSection
from tunelab.data.collate import PadCollator
from tunelab.data.bundle import DataBundle
from tunelab.data.report import DataReport
from tunelab.model.adapters import apply_lora
from tunelab.model.load import ModelBundle, ResolvedModel
from tunelab.train.stages import BUILDERS


def examples(tokenizer: Any) -> list[dict[str, list[int]]]:
    out = []
    for prompt, answer in (("Hello there", "I am fine, thanks."), ("Who are you?", "I am tunelab.")):
        p = tokenizer.encode(f"<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n")
        a = tokenizer.encode(f"{answer}<|im_end|>\n")
        out.append({"input_ids": p + a, "labels": [-100] * len(p) + a})
    return out


@pytest.fixture
def trainer(tmp_path: Path, tiny_llama: Any, tiny_tokenizer: Any) -> Any:
    from datasets import Dataset
    from transformers import TrainingArguments

    model = apply_lora(tiny_llama, LoraSection(lora_rank=4))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.1)
    rows = examples(tiny_tokenizer)
    data = DataBundle(train=Dataset.from_list(rows), eval=None, report=DataReport())
    args = TrainingArguments(output_dir=str(tmp_path / "out"), use_cpu=True, report_to="none",
                             gradient_accumulation_steps=2, per_device_train_batch_size=1, remove_unused_columns=False,
                             disable_tqdm=True)
    bundle = ModelBundle(tokenizer=tiny_tokenizer, model=model, source=ResolvedModel(tmp_path, "tiny", "folder"))
    return BUILDERS["sft"](bundle, data, args, [])


def test_the_tiny_llama_uses_the_selective_loss(trainer: Any) -> None:
    assert trainer.selective
    assert trainer.loss_is_scaled_for_ga is True


def test_compute_loss_equals_the_model_loss(trainer: Any, tiny_tokenizer: Any) -> None:
    batch = PadCollator(tiny_tokenizer.pad_token_id)(examples(tiny_tokenizer))
    count = (batch["labels"][:, 1:] != -100).sum()
    with torch.no_grad():
        ours = trainer.compute_loss(trainer.model, batch, num_items_in_batch=count)
        reference = trainer.model(**batch).loss
    torch.testing.assert_close(ours, reference)


def test_accumulated_gradients_equal_one_big_batch(trainer: Any, tiny_tokenizer: Any) -> None:
    """Two micro-batches of different label counts: the sum of their steps is the gradient of the token mean."""
    collate = PadCollator(tiny_tokenizer.pad_token_id)
    micro = [collate([example]) for example in examples(tiny_tokenizer)]
    total = sum((b["labels"][:, 1:] != -100).sum() for b in micro)
    model = trainer.model
    model.train()
    for b in micro:
        trainer.training_step(model, b, num_items_in_batch=total)
    accumulated = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    model.zero_grad()
    summed = sum(model(**b, num_items_in_batch=total).loss for b in micro)
    summed.backward()
    for name, grad in accumulated.items():
        torch.testing.assert_close(grad, dict(model.named_parameters())[name].grad, msg=name)


def test_bf16_training_step_runs_under_autocast(tmp_path: Path, tiny_tokenizer: Any, make_tiny_llama: Any) -> None:
    """bf16 frozen weights + float32 LoRA without PEFT's input casts only work inside autocast; the
    selective loss bypasses model.forward (where accelerate puts autocast), so the trainer must add it."""
    from datasets import Dataset
    from transformers import TrainingArguments

    from tunelab.model.adapters import keep_input_dtype

    model = apply_lora(make_tiny_llama().to(torch.bfloat16), LoraSection(lora_rank=4))
    assert keep_input_dtype(model) > 0
    data = DataBundle(train=Dataset.from_list(examples(tiny_tokenizer)), eval=None, report=DataReport())
    args = TrainingArguments(output_dir=str(tmp_path / "out"), use_cpu=True, bf16=True, report_to="none",
                             per_device_train_batch_size=2, max_steps=1, save_strategy="no",
                             remove_unused_columns=False, disable_tqdm=True)
    bundle = ModelBundle(tokenizer=tiny_tokenizer, model=model, source=ResolvedModel(tmp_path, "tiny", "folder"))
    result = BUILDERS["sft"](bundle, data, args, []).train()
    assert torch.isfinite(torch.tensor(result.training_loss))


def test_loraplus_puts_the_b_matrices_in_a_faster_group(tmp_path: Path, tiny_llama: Any, tiny_tokenizer: Any) -> None:
    from datasets import Dataset
    from transformers import TrainingArguments

    from tunelab.train.trainer import TrainerOptions

    model = apply_lora(tiny_llama, LoraSection(lora_rank=4))
    data = DataBundle(train=Dataset.from_list(examples(tiny_tokenizer)), eval=None, report=DataReport())
    args = TrainingArguments(output_dir=str(tmp_path / "out"), use_cpu=True, report_to="none", learning_rate=1e-4,
                             remove_unused_columns=False, disable_tqdm=True)
    bundle = ModelBundle(tokenizer=tiny_tokenizer, model=model, source=ResolvedModel(tmp_path, "tiny", "folder"))
    trainer = BUILDERS["sft"](bundle, data, args, [], TrainerOptions(loraplus_lr_ratio=16))
    optimizer = trainer.create_optimizer()
    rates = sorted({group["lr"] for group in optimizer.param_groups if group["params"]})
    assert rates == [1e-4, 16e-4]


def test_trained_tokens_are_counted_on_labelled_positions(trainer: Any, tiny_tokenizer: Any) -> None:
    trainer.train()
    expected = sum(sum(1 for label in row["labels"][1:] if label != -100) for row in examples(tiny_tokenizer))
    assert trainer.trained_tokens().count == expected * trainer.args.num_train_epochs  # 3 epochs by default
