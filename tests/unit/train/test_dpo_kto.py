"""The dpo and kto trainers on a tiny Llama: their loss equals LLaMA-Factory's full-logits computation (padded and
padding-free batches), the reference kinds, and the figures they log."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from tunelab.config.schema import LoraSection, PrefSection
from tunelab.data.bundle import DataBundle
from tunelab.data.collate import FeedbackCollator, PackedFeedbackCollator, PackedPairCollator, PairCollator
from tunelab.data.report import DataReport
from tunelab.model.adapters import apply_lora
from tunelab.model.attention import use_packed_attention
from tunelab.model.load import ModelBundle, ResolvedModel
from tunelab.train.plots import STAGE_PLOTS
from tunelab.train.reference import Reference
from tunelab.train.stages import BUILDERS
from tunelab.train.trainer import TrainerOptions


def encoded(tokenizer: Any, prompt: str, answer: str) -> tuple[list[int], list[int]]:
    p = tokenizer.encode(f"<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n")
    a = tokenizer.encode(f"{answer}<|im_end|>\n")
    return p + a, [-100] * len(p) + a


def pairs(tokenizer: Any) -> list[dict[str, list[int]]]:
    out = []
    for prompt, good, bad in (("Who are you?", "I am tunelab.", "I am a large language model made by someone."),
                              ("Hi", "Hello, I am the tunelab assistant!", "Hey.")):
        c_ids, c_labels = encoded(tokenizer, prompt, good)
        r_ids, r_labels = encoded(tokenizer, prompt, bad)
        out.append({"chosen_input_ids": c_ids, "chosen_labels": c_labels, "rejected_input_ids": r_ids,
                    "rejected_labels": r_labels})
    return out


def feedback(tokenizer: Any) -> list[dict[str, Any]]:
    rows = []
    answers = [("Who are you?", "I am tunelab.", True), ("Hi", "I am a cat.", False), ("Name?", "tunelab.", True)]
    for index, (prompt, answer, tag) in enumerate(answers):
        ids, labels = encoded(tokenizer, prompt, answer)
        kl_ids, kl_labels = encoded(tokenizer, prompt, answers[(index + 1) % 3][1])
        rows.append({"input_ids": ids, "labels": labels, "kl_input_ids": kl_ids, "kl_labels": kl_labels,
                     "kto_tags": tag})
    return rows


def lora_model(tiny_llama: Any) -> Any:
    model = apply_lora(tiny_llama, LoraSection(lora_rank=4, lora_dropout=0.1))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.2)
    return model


def build(stage: str, model: Any, tokenizer: Any, tmp_path: Path, rows: list, pref: PrefSection,
          reference: Reference | None) -> Any:
    from datasets import Dataset
    from transformers import TrainingArguments

    data = DataBundle(train=Dataset.from_list(rows), eval=Dataset.from_list(rows), report=DataReport())
    args = TrainingArguments(output_dir=str(tmp_path / "out"), use_cpu=True, report_to="none",
                             per_device_train_batch_size=2, remove_unused_columns=False, disable_tqdm=True,
                             logging_steps=1, max_steps=2, learning_rate=1e-2)
    bundle = ModelBundle(tokenizer=tokenizer, model=model, source=ResolvedModel(tmp_path, "tiny", "folder"))
    return BUILDERS[stage](bundle, data, args, [], TrainerOptions(pref=pref, reference=reference))


def full_logps(model: Any, ids: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """LLaMA-Factory's get_batch_logps over full fp32 logits."""
    logits = model(input_ids=ids, attention_mask=mask).logits.float()[:, :-1]
    targets = labels[:, 1:].clone()
    keep = targets != -100
    targets[~keep] = 0
    return (logits.log_softmax(-1).gather(2, targets[..., None])[..., 0] * keep).sum(-1)


@pytest.mark.parametrize("packed", [False, True])
def test_dpo_loss_equals_the_full_logits_dpo_loss(tmp_path: Path, tiny_llama: Any, tiny_tokenizer: Any,
                                                   packed: bool) -> None:
    model = lora_model(tiny_llama)
    if packed:
        assert use_packed_attention(model.get_base_model())
    trainer = build("dpo", model, tiny_tokenizer, tmp_path, pairs(tiny_tokenizer), PrefSection(pref_beta=0.1),
                    Reference(None))
    assert isinstance(trainer.data_collator, PackedPairCollator if packed else PairCollator)
    rows = pairs(tiny_tokenizer)
    batch = trainer.data_collator(rows)
    loss = trainer.compute_loss(trainer.model, batch)
    padded = PairCollator(tiny_tokenizer.pad_token_id)(rows)
    with torch.no_grad():
        with model.disable_adapter():
            ref = full_logps(model, padded["input_ids"], padded["attention_mask"], padded["labels"])
    policy = full_logps(model, padded["input_ids"], padded["attention_mask"], padded["labels"])
    logits = (policy[:2] - policy[2:]) - (ref[:2] - ref[2:])
    expected = -F.logsigmoid(0.1 * logits).mean()
    torch.testing.assert_close(loss, expected, atol=1e-5, rtol=1e-4)
    # the gradient of the LoRA weights too (the frozen head's per-token gradients made in forward)
    lora_b = next(p for n, p in model.named_parameters() if "lora_B" in n)
    (ours,) = torch.autograd.grad(loss, lora_b)
    (theirs,) = torch.autograd.grad(expected, lora_b)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-3)


def test_training_logs_the_stage_figures_and_dropout_is_off(tmp_path: Path, tiny_llama: Any,
                                                           tiny_tokenizer: Any) -> None:
    model = lora_model(tiny_llama)
    trainer = build("dpo", model, tiny_tokenizer, tmp_path, pairs(tiny_tokenizer), PrefSection(pref_beta=0.1),
                    Reference(None))
    assert not any(isinstance(m, torch.nn.Dropout) and m.p > 0 for m in model.modules())
    trainer.train()
    logged = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(logged) == 2 and all(set(STAGE_PLOTS["dpo"]) <= set(entry) for entry in logged)
    assert logged[0]["loss"] == pytest.approx(-F.logsigmoid(torch.tensor(0.0)).item(), abs=0.2)
    metrics = trainer.evaluate()
    assert {f"eval_{key}" for key in STAGE_PLOTS["dpo"]} <= set(metrics)


def test_a_frozen_copy_reference_does_not_change_while_the_policy_trains(tmp_path: Path, tiny_llama: Any,
                                                                         tiny_tokenizer: Any) -> None:
    reference = Reference(copy.deepcopy(tiny_llama).requires_grad_(False).eval())
    before = {k: v.clone() for k, v in reference.model.state_dict().items()}
    policy_before = tiny_llama.lm_head.weight.detach().clone()
    trainer = build("dpo", tiny_llama, tiny_tokenizer, tmp_path, pairs(tiny_tokenizer),
                    PrefSection(pref_beta=0.1), reference)
    trainer.train()
    assert all(torch.equal(before[k], v) for k, v in reference.model.state_dict().items())
    assert not torch.equal(policy_before, tiny_llama.lm_head.weight)


def test_the_disabled_adapter_reference_gives_the_base_model_logps(tiny_llama: Any, tiny_tokenizer: Any) -> None:
    from tunelab.train.logps import sequence_logps

    base = copy.deepcopy(tiny_llama)
    model = lora_model(tiny_llama)
    batch = PairCollator(tiny_tokenizer.pad_token_id)(pairs(tiny_tokenizer))
    sums, _ = Reference(None).logps(model, batch)
    torch.testing.assert_close(sums, sequence_logps(base, batch)[0])
    assert not torch.allclose(sums, sequence_logps(model, batch)[0])


def test_orpo_and_simpo_train_without_a_reference(tmp_path: Path, tiny_llama: Any, tiny_tokenizer: Any) -> None:
    trainer = build("dpo", lora_model(tiny_llama), tiny_tokenizer, tmp_path, pairs(tiny_tokenizer),
                    PrefSection(pref_loss="orpo"), None)
    trainer.train()
    assert "odds_ratio_loss" in trainer.state.log_history[0]


@pytest.mark.parametrize("packed", [False, True])
def test_kto_loss_equals_the_full_logits_kto_loss(tmp_path: Path, tiny_llama: Any, tiny_tokenizer: Any,
                                                   packed: bool) -> None:
    model = lora_model(tiny_llama)
    if packed:
        use_packed_attention(model.get_base_model())
    rows = feedback(tiny_tokenizer)
    trainer = build("kto", model, tiny_tokenizer, tmp_path, rows, PrefSection(pref_beta=0.1), Reference(None))
    assert isinstance(trainer.data_collator, PackedFeedbackCollator if packed else FeedbackCollator)
    loss = trainer.compute_loss(trainer.model, trainer.data_collator(rows))
    padded = FeedbackCollator(tiny_tokenizer.pad_token_id)(rows)
    args = [padded[k] for k in ("input_ids", "attention_mask", "labels")]
    kl_args = [padded[f"kl_{k}"] for k in ("input_ids", "attention_mask", "labels")]
    with torch.no_grad():
        kl_policy = full_logps(model, *kl_args)
        with model.disable_adapter():
            ref, kl_ref = full_logps(model, *args), full_logps(model, *kl_args)
    ratios = full_logps(model, *args) - ref
    kl = (kl_policy - kl_ref).mean().clamp(min=0)
    tags = padded["kto_tags"]
    expected = torch.cat((1 - torch.sigmoid(0.1 * (ratios[tags] - kl)),
                          1 - torch.sigmoid(0.1 * (kl - ratios[~tags])))).mean()
    torch.testing.assert_close(loss, expected, atol=1e-5, rtol=1e-4)
    trainer.train()
    logged = trainer.state.log_history[0]
    assert set(STAGE_PLOTS["kto"]) <= set(logged) and "rewards/chosen_sum" not in logged


def lf_ld_logps(per_token: torch.Tensor, labels: torch.Tensor, alpha: float) -> torch.Tensor:
    """LLaMA-Factory's get_batch_logps with ld_alpha, on given per-token values [rows, length - 1]."""
    loss_mask = labels[:, 1:] != -100
    valid = loss_mask.sum(-1)
    half = labels.shape[0] // 2
    shorter = torch.min(valid[:half], valid[half:])
    public = torch.argmax(loss_mask.int(), dim=1) + torch.cat([shorter, shorter])
    ld_mask = torch.arange(loss_mask.shape[1])[None].expand_as(per_token) < public[:, None]
    return (per_token * ld_mask * loss_mask).sum(-1) + alpha * (per_token * ~ld_mask * loss_mask).sum(-1)


@pytest.mark.parametrize("packed", [False, True])
def test_ld_alpha_weights_match_llamafactory(tiny_tokenizer: Any, packed: bool) -> None:
    from tunelab.train.logps import length_weights, per_row_sums, token_rows

    rows = pairs(tiny_tokenizer)
    padded = PairCollator(tiny_tokenizer.pad_token_id, multiple_of=1)(rows)
    torch.manual_seed(0)
    per_token = torch.randn(padded["labels"].shape[0], padded["labels"].shape[1] - 1)
    expected = lf_ld_logps(per_token, padded["labels"], 0.3)
    keep = padded["labels"][:, 1:] != -100
    values = per_token[keep]  # row-major: the order token_rows gives for both forms
    batch = PackedPairCollator()(rows) if packed else padded
    token_row, _, count = token_rows(batch)
    ours = per_row_sums(values * length_weights(batch, 0.3), token_row, count)
    torch.testing.assert_close(ours, expected)
