"""Stage grpo: advantages, the loss against hand-computed values, the sampled batch, and whole tiny runs."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch

from tunelab.config.load import build
from tunelab.config.schema import InferSection
from tunelab.data.encode.cutoff import IGNORE_INDEX
from tunelab.train.grpo_loss import group_advantages, group_spread, grpo_loss, k3_kl
from tunelab.train.grpo_rollout import answer_seed, completion_batch, roll_out
from tunelab.train.logps import labelled_logps
from tunelab.train.outdir import RunError
from tunelab.train.plots import read_log
from tunelab.train.run import train


def test_advantages_are_normalised_within_each_group() -> None:
    advantages = group_advantages(torch.tensor([1.0, 0.0, 0.0, 0.0, 2.0, 2.0, 2.0, 2.0]), 4)
    # group 1: mean 0.25, sample std sqrt((0.75^2 + 3 x 0.25^2) / 3) = 0.5; group 2: all equal -> 0
    expected = torch.tensor([0.75, -0.25, -0.25, -0.25, 0, 0, 0, 0]) / (0.5 + 1e-4)
    torch.testing.assert_close(advantages, expected)
    assert group_spread(torch.tensor([1.0, 0.0, 0.0, 0.0, 2.0, 2.0, 2.0, 2.0]), 4).item() == pytest.approx(0.25)


def test_the_clipped_loss_and_kl_by_hand() -> None:
    # two answers: tokens (0, 1) of answer 0, token 2 of answer 1
    logps = torch.tensor([math.log(0.5), math.log(0.2), math.log(0.9)])
    old = torch.tensor([math.log(0.25), math.log(0.2), math.log(0.9)])  # token 0's ratio is 2: clipped
    ref = torch.tensor([math.log(0.5), math.log(0.4), math.log(0.3)])
    rows = torch.tensor([0, 0, 1])
    advantages = torch.tensor([1.0, -1.0])
    parts = grpo_loss(logps, old, ref, advantages, rows, beta=0.1, epsilon=0.2)
    kl = [0.0, 2.0 - math.log(2.0) - 1, 1 / 3 - math.log(1 / 3) - 1]  # exp(d) - d - 1, d = ref - logp
    answer0 = (-min(2.0 * 1, 1.2 * 1) + 0.1 * kl[0] + (-1.0 + 0.1 * kl[1])) / 2
    answer1 = 1.0 + 0.1 * kl[2]  # ratio 1, advantage -1: -min(-1, -1)
    assert parts.loss.item() == pytest.approx((answer0 + answer1) / 2, abs=1e-6)
    assert parts.kl.item() == pytest.approx(sum(kl) / 3, abs=1e-6)
    torch.testing.assert_close(k3_kl(logps, logps), torch.zeros(3))


def test_without_a_reference_there_is_no_kl_term() -> None:
    logps = torch.tensor([-1.0, -2.0])
    parts = grpo_loss(logps, logps, None, torch.tensor([0.5, -0.5]), torch.tensor([0, 1]), beta=0.3, epsilon=0.2)
    assert parts.loss.item() == pytest.approx(0.0) and parts.kl.item() == 0.0


def test_the_loss_on_a_tiny_model_matches_the_full_logits_formula(tiny_llama: torch.nn.Module) -> None:
    torch.manual_seed(0)
    prompts = [[5, 6, 7], [8, 9]]
    answers = [[10, 11], [12], [13, 14, 15], [16, 17]]  # two answers per prompt
    batch = completion_batch(prompts, answers, 2, 0, torch.device("cpu"))
    advantages = torch.tensor([1.0, -1.0, 0.5, -0.5])
    logps, rows = labelled_logps(tiny_llama, batch)
    loss = grpo_loss(logps, logps.detach(), None, advantages, rows, beta=0.0, epsilon=0.2).loss
    loss.backward()
    ours = tiny_llama.lm_head.weight.grad.clone()
    tiny_llama.zero_grad()
    # by hand: ratio 1 everywhere, so each answer's loss is -A x mean(exp(logp - logp.detach())) over its tokens
    expected = torch.zeros(())
    for i, answer in enumerate(answers):
        ids = torch.tensor([prompts[i // 2] + answer])
        logits = tiny_llama(input_ids=ids).logits[0, :-1].float().log_softmax(-1)
        picked = logits[len(prompts[i // 2]) - 1:].gather(1, torch.tensor(answer)[:, None])[:, 0]
        expected = expected + (-advantages[i] * torch.exp(picked - picked.detach())).mean() / len(answers)
    assert loss.item() == pytest.approx(expected.item(), abs=1e-6)
    expected.backward()
    torch.testing.assert_close(ours, tiny_llama.lm_head.weight.grad, atol=1e-6, rtol=1e-4)


def test_the_batch_labels_only_the_answers() -> None:
    batch = completion_batch([[5, 6], [7]], [[1, 2], [3], [4, 4, 4], []], 2, 0, torch.device("cpu"))
    assert batch["input_ids"].tolist() == [[5, 6, 1, 2], [5, 6, 3, 0], [7, 4, 4, 4], [7, 0, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 1, 0], [1, 1, 1, 1], [1, 0, 0, 0]]
    ignore = IGNORE_INDEX
    assert batch["labels"].tolist() == [[ignore, ignore, 1, 2], [ignore, ignore, 3, ignore],
                                        [ignore, 4, 4, 4], [ignore] * 4]
    assert answer_seed(42, 3, 1, 5) == answer_seed(42, 3, 1, 5) != answer_seed(42, 3, 1, 6)


def test_sampling_repeats_prompts_and_references_per_answer(tiny_llama: torch.nn.Module, tiny_tokenizer: Any) -> None:
    prompt = tiny_tokenizer.encode("Hello there")
    reference = tiny_tokenizer.encode("Paris") + [tiny_tokenizer.eos_token_id]
    inputs = {"input_ids": torch.tensor([[0] + prompt, [0] * (len(prompt) + 1)]),
              "attention_mask": torch.tensor([[0] + [1] * len(prompt), [0] * len(prompt) + [1]]),
              "labels": torch.tensor([reference, [tiny_tokenizer.eos_token_id] + [IGNORE_INDEX] * (len(reference) - 1)])}
    settings = InferSection(max_new_tokens=3, temperature=1.0, top_p=1.0, top_k=0)
    rollout = roll_out(tiny_llama, tiny_tokenizer, inputs, 3, settings, frozenset({tiny_tokenizer.eos_token_id}),
                       list(range(6)))
    assert rollout.references == ["Paris"] * 3 + [None] * 3
    assert rollout.prompts[:3] == ["Hello there"] * 3 and len(rollout.completions) == 6
    assert rollout.batch["input_ids"].shape[0] == 6 and all(1 <= n <= 4 for n in rollout.lengths)
    again = roll_out(tiny_llama, tiny_tokenizer, inputs, 3, settings, frozenset({tiny_tokenizer.eos_token_id}),
                     list(range(6)))
    assert again.completions == rollout.completions  # the seeds decide the samples


QA = [{"instruction": f"Question {i}?", "output": "yes" if i % 2 else "no"} for i in range(8)]


def run(tmp_path: Path, tiny_model_dir: Path, data_dir: Path, **flat: Any) -> tuple[dict[str, Any], Path]:
    out = tmp_path / "out"
    config = build({"model_name_or_path": str(tiny_model_dir), "dataset_dir": str(data_dir), "output_dir": str(out),
                    "stage": "grpo", "dataset": "qa", "max_steps": 2, "per_device_train_batch_size": 2,
                    "learning_rate": 1e-3, "logging_steps": 1, "lora_rank": 4, "report_to": "none",
                    "plot_loss": True, "num_generations": 2, "max_new_tokens": 4, "save_steps": 1,
                    "reward_funcs": [{"name": "accuracy"}, {"name": "format", "pattern": ".*", "flags": "s"},
                                     {"name": "length", "target": 8}],  # random answers differ in length
                    **flat})
    return train(config), out


def test_a_lora_run_logs_the_figures_and_plots_them(tmp_path: Path, tiny_model_dir: Path, make_dataset: Any,
                                                    data_dir: Path) -> None:
    make_dataset(QA, name="qa", file_name="qa.json")
    metrics, out = run(tmp_path, tiny_model_dir, data_dir, val_size=2, eval_strategy="steps", eval_steps=2,
                       compute_accuracy=True)
    assert metrics["eval_loss"] > 0 and 0 <= metrics["eval_accuracy"] <= 1  # the reference answers' cross-entropy
    records = [r for r in read_log(out / "run.jsonl") if "loss" in r]
    assert [r["step"] for r in records] == [1, 2]
    for key in ("reward", "reward_std", "kl", "completion_length", "rewards/accuracy", "rewards/format",
                "rewards/length"):
        assert all(key in r for r in records), key
    assert all(r["rewards/format"] == 1.0 for r in records)
    assert all(r["reward"] == pytest.approx(1.0 + r["rewards/accuracy"] + r["rewards/length"]) for r in records)
    assert records[0]["kl"] == pytest.approx(0.0, abs=1e-6)  # the adapter starts as the reference
    assert metrics["completions_per_second"] > 0
    summary = json.loads((out / "run_summary.json").read_text())
    assert summary["completions_per_second"] == metrics["completions_per_second"]
    for name in ("reward", "reward_std", "kl", "completion_length", "rewards_accuracy", "rewards_length"):
        assert (out / f"training_{name}.png").is_file(), name
    assert (out / "checkpoint-2").is_dir()


def test_ref_model_is_the_reference_of_the_kl_term(tmp_path: Path, tiny_model_dir: Path, make_dataset: Any,
                                                    data_dir: Path, make_tiny_llama: Any, tiny_tokenizer: Any) -> None:
    make_dataset(QA, name="qa", file_name="qa.json")
    other = tmp_path / "other-llama"
    make_tiny_llama(seed=1).save_pretrained(other)  # other weights, the same vocabulary
    tiny_tokenizer.save_pretrained(other)
    _, out = run(tmp_path, tiny_model_dir, data_dir, max_steps=1, ref_model=str(other))
    first = [r for r in read_log(out / "run.jsonl") if "loss" in r][0]
    assert first["kl"] > 0.01  # the adapter starts as the base model, which is not ref_model


def test_full_training_uses_a_frozen_copy_and_resumes(tmp_path: Path, tiny_model_dir: Path, make_dataset: Any,
                                                       data_dir: Path) -> None:
    make_dataset(QA, name="qa", file_name="qa.json")
    _, out = run(tmp_path, tiny_model_dir, data_dir, finetuning_type="full", max_steps=3)
    first = [r for r in read_log(out / "run.jsonl") if "loss" in r]
    assert first[0]["reward_std"] > 0 and first[1]["kl"] > 0  # the copy stays where training started
    (out / "run.jsonl").unlink()
    import shutil
    shutil.rmtree(out / "checkpoint-3")
    _, out = run(tmp_path, tiny_model_dir, data_dir, finetuning_type="full", max_steps=3,
                 resume_from_checkpoint=str(out / "checkpoint-2"), overwrite_output_dir=False)
    again = [r for r in read_log(out / "run.jsonl") if "loss" in r]
    assert again[-1]["step"] == 3
    for key in ("loss", "reward", "kl", "completion_length"):
        assert again[-1][key] == pytest.approx(first[2][key], rel=1e-4, abs=1e-6), key


def test_prompts_without_a_reference_stop_the_run_or_are_skipped(tmp_path: Path, tiny_model_dir: Path,
                                                                 make_dataset: Any, data_dir: Path) -> None:
    make_dataset(QA[:6] + [{"instruction": "No answer here", "output": ""}], name="qa", file_name="qa.json")
    with pytest.raises(RunError) as excinfo:
        run(tmp_path, tiny_model_dir, data_dir)
    assert "reward accuracy" in str(excinfo.value) and "1 train prompts have none" in str(excinfo.value)
    metrics, _ = run(tmp_path, tiny_model_dir, data_dir, on_bad_row="skip", max_steps=1, overwrite_output_dir=True)
    assert metrics["global_step"] == 1
