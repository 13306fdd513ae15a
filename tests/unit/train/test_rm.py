"""Stage rm on the tiny model: the pairwise loss against hand-computed values, pair accuracy, the saved folder
(adapter or model + value_head.safetensors) scoring as training evaluated it, and an exact resume."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch

from tunelab.config.load import build
from tunelab.data.collate import PairCollator
from tunelab.infer.score import load_reward_scorer
from tunelab.model.value_head import ValueHeadModel
from tunelab.train.plots import read_log
from tunelab.train.run import train
from tunelab.train.stages.rm import PackedPairCollator, pair_scores, pairwise_loss

PAIRS = [{"instruction": f"Who are you? ({i})", "input": "",
          "chosen": f"I am tunelab, a small model {i}.", "rejected": f"I am fine, thanks {i}."} for i in range(10)]
PAIR_ENTRY = {"ranking": True, "columns": {"prompt": "instruction", "query": "input", "chosen": "chosen",
                                           "rejected": "rejected"}}


def test_the_loss_is_the_mean_negative_log_sigmoid_of_the_margins() -> None:
    chosen, rejected = torch.tensor([1.0, -0.5]), torch.tensor([0.0, 0.5])
    expected = (math.log(1 + math.exp(-1.0)) + math.log(1 + math.exp(1.0))) / 2  # 0.813262
    assert float(pairwise_loss(chosen, rejected)) == pytest.approx(expected, abs=1e-6)
    assert float(pairwise_loss(torch.zeros(3), torch.zeros(3))) == pytest.approx(math.log(2), abs=1e-6)
    assert pairwise_loss(chosen.half(), rejected.half()).dtype == torch.float32


def test_pair_scores_are_each_rows_last_real_token(tiny_llama: Any) -> None:
    model = ValueHeadModel(tiny_llama, dropout=0.0).eval()
    rows = [[5, 6, 7], [11, 12], [5, 6, 9, 10, 13], [11, 13, 14]]  # chosen 0, chosen 1, rejected 0, rejected 1
    batch = PairCollator(0)([{"chosen_input_ids": rows[0], "chosen_labels": rows[0],
                              "rejected_input_ids": rows[2], "rejected_labels": rows[2]},
                             {"chosen_input_ids": rows[1], "chosen_labels": rows[1],
                              "rejected_input_ids": rows[3], "rejected_labels": rows[3]}])
    with torch.no_grad():
        chosen, rejected = pair_scores(model, batch)
        alone = [float(model(torch.tensor([row]))[0, -1]) for row in rows]
    assert chosen.tolist() + rejected.tolist() == pytest.approx(alone, abs=1e-5)


def test_packed_pairs_score_as_padded_ones(tiny_llama: Any) -> None:
    from tunelab.model.attention import use_packed_attention

    assert use_packed_attention(tiny_llama)
    model = ValueHeadModel(tiny_llama, dropout=0.0).eval()
    examples = [{"chosen_input_ids": [5, 6, 7], "chosen_labels": [-100, 6, 7],
                 "rejected_input_ids": [5, 6, 9, 10, 13], "rejected_labels": [-100, 6, 9, 10, 13]},
                {"chosen_input_ids": [11, 12], "chosen_labels": [-100, 12],
                 "rejected_input_ids": [11, 13, 14], "rejected_labels": [-100, 13, 14]}]
    packed = PackedPairCollator()(examples)
    assert packed["input_ids"].shape == (1, 13) and packed["cu_seq_lens_q"].tolist() == [0, 3, 5, 10, 13]
    with torch.no_grad():
        one_row = pair_scores(model, packed)
        padded = pair_scores(model, PairCollator(0)(examples))
    torch.testing.assert_close(one_row, padded, atol=1e-5, rtol=1e-5)


def rm_run(tmp_path: Path, tiny_model_dir: Path, data_dir: Path, out: str, **flat: Any) -> tuple[dict[str, Any], Path]:
    config = build({"model_name_or_path": str(tiny_model_dir), "dataset_dir": str(data_dir), "stage": "rm",
                    "dataset": "pairs", "eval_dataset": "held", "output_dir": str(tmp_path / out), "max_steps": 4,
                    "per_device_train_batch_size": 2, "per_device_eval_batch_size": 3, "learning_rate": 5e-3,
                    "logging_steps": 1, "lora_rank": 4, "report_to": "none", "plot_loss": True, "save_steps": 2,
                    "eval_strategy": "steps", "eval_steps": 2, "disable_shuffling": True, **flat})
    return train(config), tmp_path / out


def scored_like_training(scorer: Any, data_dir: Path, tiny_model_dir: Path) -> tuple[float, float]:
    """(accuracy, mean loss) of the reloaded model over the held-out pairs."""
    from tunelab.data.pipeline import build_data

    config = build({"model_name_or_path": str(tiny_model_dir), "dataset_dir": str(data_dir), "stage": "rm",
                    "dataset": "held", "output_dir": "unused"})
    bundle = build_data(config.data, scorer.tokenizer, 42, "rm", None)
    batch = PairCollator(scorer.tokenizer.pad_token_id)(list(bundle.train))
    chosen, rejected = scorer.score_pairs(batch)
    return float((chosen > rejected).float().mean()), float(pairwise_loss(chosen, rejected))


@pytest.fixture
def pair_data(make_dataset: Any, data_dir: Path) -> Path:
    make_dataset(PAIRS, name="pairs", file_name="pairs.json", entry=PAIR_ENTRY)
    make_dataset(PAIRS[:7], name="held", file_name="held.json", entry=PAIR_ENTRY)
    return data_dir


@pytest.mark.parametrize("finetuning_type", ["lora", "full"])
def test_a_reward_model_saves_what_scores_as_it_evaluated(tmp_path: Path, tiny_model_dir: Path, pair_data: Path,
                                                          finetuning_type: str) -> None:
    metrics, out = rm_run(tmp_path, tiny_model_dir, pair_data, "rm", finetuning_type=finetuning_type)
    weights = "adapter_model.safetensors" if finetuning_type == "lora" else "model.safetensors"
    for folder in (out, out / "checkpoint-2", out / "checkpoint-4"):
        assert (folder / weights).is_file() and (folder / "value_head.safetensors").is_file()
        assert (folder / "tokenizer_config.json").is_file()
    records = read_log(out / "run.jsonl")
    assert [r["step"] for r in records if "eval_accuracy" in r] == [2, 4]
    assert (out / "training_eval_accuracy.png").is_file() and (out / "training_loss.png").is_file()
    assert metrics["global_step"] == 4 and 0 <= metrics["eval_accuracy"] <= 1
    summary = json.loads((out / "run_summary.json").read_text())
    report = json.loads((out / "data_report.json").read_text())
    assert summary["stage"] == "rm" and 0 < summary["trained_tokens"] < summary["input_tokens"]
    assert report["totals"]["tokens_trained"] > 0
    base, adapters = (str(tiny_model_dir), str(out)) if finetuning_type == "lora" else (str(out), None)
    accuracy, loss = scored_like_training(load_reward_scorer(base, adapters, None), pair_data, tiny_model_dir)
    assert accuracy == pytest.approx(metrics["eval_accuracy"], abs=1e-6)
    assert loss == pytest.approx(metrics["eval_loss"], abs=1e-4)


@pytest.mark.parametrize("finetuning_type", ["lora", "full"])
def test_a_resumed_reward_model_ends_with_the_same_weights(tmp_path: Path, tiny_model_dir: Path, pair_data: Path,
                                                           finetuning_type: str) -> None:
    from safetensors.torch import load_file

    flat = {"eval_strategy": "no", "eval_dataset": None, "finetuning_type": finetuning_type}
    _, whole = rm_run(tmp_path, tiny_model_dir, pair_data, "whole", **flat)
    _, resumed = rm_run(tmp_path, tiny_model_dir, pair_data, "resumed", **flat,
                        resume_from_checkpoint=str(whole / "checkpoint-2"))
    weights = "adapter_model.safetensors" if finetuning_type == "lora" else "model.safetensors"
    for name in ("value_head.safetensors", weights):
        final, again = load_file(str(whole / name)), load_file(str(resumed / name))
        assert all(torch.equal(final[key], again[key]) for key in final), name
    losses = {r["step"]: r["loss"] for r in read_log(whole / "run.jsonl") if "loss" in r}
    assert {r["step"]: r["loss"] for r in read_log(resumed / "run.jsonl") if "loss" in r} == \
        {step: loss for step, loss in losses.items() if step > 2}


def test_gradient_checkpointing_reaches_the_model_under_the_head(tmp_path: Path, tiny_model_dir: Path,
                                                                pair_data: Path) -> None:
    metrics, out = rm_run(tmp_path, tiny_model_dir, pair_data, "checkpointed", gradient_checkpointing=True,
                          max_steps=2, eval_strategy="no", eval_dataset=None, save_steps=10)
    records = read_log(out / "run.jsonl")
    assert metrics["global_step"] == 2 and all(math.isfinite(r["loss"]) for r in records if "loss" in r)
    assert (out / "value_head.safetensors").is_file()


def test_scores_and_loss_equal_llamafactorys() -> None:
    from tests.conftest import make_llama, reward_head

    golden = json.loads((Path(__file__).parent / "lf_rm_golden.json").read_text())
    model = reward_head(make_llama(300, seed=5))
    batch = {"input_ids": torch.tensor(golden["input_ids"]), "attention_mask": torch.tensor(golden["attention_mask"])}
    with torch.no_grad():
        chosen, rejected = pair_scores(model, batch)
    assert chosen.tolist() == pytest.approx(golden["chosen"], abs=1e-5)
    assert rejected.tolist() == pytest.approx(golden["rejected"], abs=1e-5)
    assert float(pairwise_loss(chosen, rejected)) == pytest.approx(golden["loss"], abs=1e-5)


def test_the_best_reward_model_by_pair_accuracy_is_kept(tmp_path: Path, tiny_model_dir: Path,
                                                        pair_data: Path) -> None:
    metrics, out = rm_run(tmp_path, tiny_model_dir, pair_data, "best", load_best_model_at_end=True,
                          metric_for_best_model="eval_accuracy")
    summary = json.loads((out / "run_summary.json").read_text())
    assert summary["best"]["metric"] == "eval_accuracy" and summary["best"]["checkpoint"].endswith(
        ("checkpoint-2", "checkpoint-4"))
    best = max(r["eval_accuracy"] for r in read_log(out / "run.jsonl") if "eval_accuracy" in r)
    assert summary["best"]["value"] == best
    accuracy, _ = scored_like_training(load_reward_scorer(str(tiny_model_dir), str(out), None), pair_data,
                                       tiny_model_dir)
    assert accuracy == pytest.approx(best, abs=1e-6)  # the saved adapter and head are the best checkpoint's
