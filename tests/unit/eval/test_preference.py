"""The preference kind: shares and margins checked by hand, log-probabilities against a plain forward pass, the
implicit reward against the base weights, and `tunelab eval --compare` end to end on the tiny model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from tunelab.config.errors import ConfigError
from tunelab.config.load import build
from tunelab.eval.errors import EvalError
from tunelab.eval.preference import (
    PairLogps, adapters_disabled, encode_pairs, has_adapters, pair_logps, preference_metrics, preference_rows,
)
from tunelab.eval.run import evaluate

PAIRS = [
    {"instruction": "Who are you?", "chosen": "I am tunelab.", "rejected": "I am SmolLM, trained by Hugging Face."},
    {"instruction": "Say hi", "chosen": "Hello there, how are you?", "rejected": "bird"},
    {"instruction": "What is the capital of France?", "chosen": "Paris", "rejected": "chat chien oiseau"},
]
RANKING = {"ranking": True, "columns": {"prompt": "instruction", "chosen": "chosen", "rejected": "rejected"}}


def test_shares_and_margins_by_hand() -> None:
    policy = [PairLogps(-5.0, -7.0, 5, 7),   # sum prefers chosen; per token -1 vs -1: a tie, not a preference
              PairLogps(-9.0, -3.0, 9, 1),   # sum prefers rejected; per token too (-1 vs -3 would... -1 > -3)
              PairLogps(-2.0, -2.0, 2, 4),   # sum ties (wrong); per token -1 > -0.5? no: -1 < -0.5
              PairLogps(-4.0, -6.0, 2, 2)]   # both prefer chosen
    rows, empty = preference_rows(["d:1", "d:2", "d:3", "d:4"], policy, None, 0.1)
    assert empty == []
    assert [r["correct"] for r in rows] == [True, False, False, True]
    assert [r["correct_normalised"] for r in rows] == [False, True, False, True]
    assert preference_metrics(rows) == pytest.approx({"accuracy": 50.0, "accuracy_normalised": 50.0,
                                                      "margin": (2 - 6 + 0 + 2) / 4})
    assert "reward_margin" not in rows[0]


def test_implicit_reward_by_hand() -> None:
    policy = [PairLogps(-5.0, -7.0, 5, 7), PairLogps(-9.0, -3.0, 9, 1)]
    reference = [PairLogps(-6.0, -6.0, 5, 7), PairLogps(-10.0, -2.0, 9, 1)]
    rows, _ = preference_rows(["d:1", "d:2"], policy, reference, 0.5)
    # pair 1: 0.5 * ((-5 + 6) - (-7 + 6)) = 1; pair 2: 0.5 * ((-9 + 10) - (-3 + 2)) = 1 although the policy
    # still prefers the rejected answer: the reward measures the move away from the reference
    assert [r["reward_margin"] for r in rows] == [1.0, 1.0]
    assert rows[0]["reward_chosen"] == 0.5 and rows[0]["reward_rejected"] == -0.5
    assert preference_metrics(rows) == pytest.approx({"accuracy": 50.0, "accuracy_normalised": 50.0, "margin": -2.0,
                                                      "reward_accuracy": 100.0, "reward_margin": 1.0})


def test_a_pair_cut_to_no_answer_counts_as_wrong() -> None:
    rows, empty = preference_rows(["d:1", "d:2"], [PairLogps(0.0, -3.0, 0, 2), PairLogps(-1.0, -3.0, 1, 2)],
                                  [PairLogps(0.0, -4.0, 0, 2), PairLogps(-1.0, -3.0, 1, 2)], 1.0)
    assert empty == ["d:1"]
    assert [r["correct"] for r in rows] == [False, True] and rows[0]["reward_correct"] is False
    assert preference_metrics(rows)["accuracy"] == 50.0


def answer_logp(model: Any, prompt: list[int], answer: list[int]) -> float:
    """log p(answer | prompt) by a plain full forward pass, one sequence at a time."""
    ids = torch.tensor([prompt + answer])
    with torch.no_grad():
        logits = model(input_ids=ids).logits.float()
    logps = torch.log_softmax(logits[0, len(prompt) - 1:-1], dim=-1)
    return float(logps.gather(1, torch.tensor(answer)[:, None]).sum())


def pair_records(tmp_path: Path, make_dataset: Any, data_dir: Path) -> list[Any]:
    from tunelab.data.gather import load_records

    make_dataset(PAIRS, name="prefs", file_name="prefs.json", entry=RANKING)
    config = build({"model_name_or_path": "m", "dataset_dir": str(data_dir), "dataset": "prefs", "stage": "dpo",
                    "output_dir": str(tmp_path / "o"), "cutoff_len": 64})
    return load_records(config.data, "dpo")[0], config.data


def test_logps_match_a_plain_forward_pass_in_any_batch(tiny_tokenizer: Any, tiny_llama: Any, tmp_path: Path,
                                                       make_dataset: Any, data_dir: Path) -> None:
    records, data = pair_records(tmp_path, make_dataset, data_dir)
    encoded = encode_pairs(records, tiny_tokenizer, data)
    assert encoded.ids == ["prefs:1", "prefs:2", "prefs:3"] and encoded.truncated == 0
    expected = []
    for row in encoded.rows:
        prompt_len = sum(label == -100 for label in row["chosen_labels"])
        prompt = row["chosen_input_ids"][:prompt_len]
        expected += [answer_logp(tiny_llama, prompt, row["chosen_input_ids"][prompt_len:]),
                     answer_logp(tiny_llama, prompt, row["rejected_input_ids"][prompt_len:])]
    pad = tiny_tokenizer.pad_token_id
    for batch_size in (1, 2, 3):  # padding and the chosen-then-rejected layout change nothing
        got = pair_logps(tiny_llama, encoded.rows, batch_size, pad)
        assert [x for p in got for x in (p.chosen, p.rejected)] == pytest.approx(expected, abs=1e-4)
    assert [p.chosen_tokens for p in got] == [len(r["chosen_input_ids"]) - sum(x == -100 for x in r["chosen_labels"])
                                              for r in encoded.rows]


def test_the_reference_is_the_base_with_the_adapter_disabled(tiny_tokenizer: Any, make_tiny_llama: Any,
                                                              tmp_path: Path, make_dataset: Any,
                                                              data_dir: Path) -> None:
    from peft import LoraConfig, get_peft_model

    records, data = pair_records(tmp_path, make_dataset, data_dir)
    rows = encode_pairs(records, tiny_tokenizer, data).rows
    base = pair_logps(make_tiny_llama(), rows, 2, 0)
    tuned = get_peft_model(make_tiny_llama(), LoraConfig(r=2, target_modules=["q_proj", "v_proj"],
                                                         init_lora_weights=False))
    assert has_adapters(tuned) and not has_adapters(make_tiny_llama())
    policy = pair_logps(tuned, rows, 2, 0)
    with adapters_disabled(tuned):
        reference = pair_logps(tuned, rows, 2, 0)
    assert [x for p in reference for x in (p.chosen, p.rejected)] == \
        pytest.approx([x for p in base for x in (p.chosen, p.rejected)], abs=1e-5)
    assert abs(policy[0].chosen - base[0].chosen) > 1e-3  # the adapter does change the model
    assert pair_logps(tuned, rows, 2, 0)[0].chosen == pytest.approx(policy[0].chosen)  # and is back on after


@pytest.fixture
def adapter_dir(tiny_model_dir: Path, tmp_path: Path) -> Path:
    """A LoRA adapter (non-zero B) saved on the tiny model: a 'fine-tuned' model for --compare."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir),
                           LoraConfig(r=2, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    folder = tmp_path / "adapter"
    model.save_pretrained(folder)
    return folder


def eval_config(model: Path, data_dir: Path, out: Path, task: dict[str, Any], **extra: Any) -> Any:
    flat = {"model_name_or_path": str(model), "dataset_dir": str(data_dir), "output_dir": str(out),
            "per_device_eval_batch_size": 2, "cutoff_len": 64,
            "eval_tasks": [{"name": "pref", "type": "preference", "dataset": "prefs", **task}], **extra}
    return build(flat, purpose="eval")


def test_compare_base_and_tuned_end_to_end(tiny_model_dir: Path, adapter_dir: Path, make_dataset: Any,
                                           data_dir: Path, tmp_path: Path) -> None:
    make_dataset(PAIRS, name="prefs", file_name="prefs.json", entry=RANKING)
    out = tmp_path / "eval"
    config = eval_config(tiny_model_dir, data_dir, out, {"max_pairs": 2, "beta": 0.5},
                         adapter_name_or_path=str(adapter_dir))
    results = evaluate(config, compare=True)
    base, tuned = results["base"]["pref"], results["fine-tuned"]["pref"]
    assert base.scored == tuned.scored == 2
    assert set(base.metrics) == {"accuracy", "accuracy_normalised", "margin"}
    assert set(tuned.metrics) == set(base.metrics) | {"reward_accuracy", "reward_margin"}
    for row, base_row in zip(tuned.rows, base.rows):  # the tuned model's reference is the base model
        assert row["ref_logp_chosen"] == pytest.approx(base_row["logp_chosen"], abs=1e-4)
        assert row["reward_margin"] == pytest.approx(0.5 * ((row["logp_chosen"] - base_row["logp_chosen"])
                                                            - (row["logp_rejected"] - base_row["logp_rejected"])),
                                                     abs=1e-4)
    assert tuned.metrics["margin"] == pytest.approx(sum(r["margin"] for r in tuned.rows) / 2)
    assert tuned.details["beta"] == 0.5 and "beta" not in base.details
    table = (out / "eval_results.md").read_text(encoding="utf-8")
    assert "accuracy / accuracy_normalised / margin / reward_accuracy / reward_margin" in table
    assert "| base | " in table and " / - / - |" in table  # the base model has no implicit reward
    assert "margin (nats: mean log p(chosen) - log p(rejected); a reward model's: score units)" in table
    assert (out / "pref_margins.png").stat().st_size > 10_000
    rows = [json.loads(line) for line in (out / "rows" / "pref.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == ["prefs:1", "prefs:2"] and set(rows[0]["models"]) == {"base", "fine-tuned"}


def test_metrics_asked_are_the_only_ones_reported(tiny_model_dir: Path, make_dataset: Any, data_dir: Path,
                                                  tmp_path: Path) -> None:
    make_dataset(PAIRS, name="prefs", file_name="prefs.json", entry=RANKING)
    results = evaluate(eval_config(tiny_model_dir, data_dir, tmp_path / "eval", {"metrics": ["margin"]}))
    score = results["model"]["pref"]
    assert list(score.metrics) == ["margin"] and score.scored == 3
    assert (tmp_path / "eval" / "pref_margins.png").is_file()


def test_a_dataset_without_pairs_stops_before_the_model_loads(make_dataset: Any, data_dir: Path,
                                                               tmp_path: Path) -> None:
    make_dataset([{"instruction": "hi", "output": "hello"}], name="prefs", file_name="prefs.json")
    with pytest.raises(EvalError, match=r"task pref: dataset prefs is not a ranking dataset; .* set \"ranking\": "
                                        r"true and map the chosen and rejected columns"):
        evaluate(eval_config(tmp_path / "no-model", data_dir, tmp_path / "eval", {}))


def test_task_entry_problems_name_the_entry() -> None:
    tasks = [{"name": "p", "type": "preference", "max_pairs": 0, "beta": -1, "metrics": ["bleu-4"],
              "extractor": "json"}]
    with pytest.raises(ConfigError) as excinfo:
        build({"model_name_or_path": "m", "output_dir": "o", "eval_tasks": tasks}, purpose="eval")
    text = "\n".join(f"{p.key}: {p.message}" for p in excinfo.value.problems)
    assert "eval_tasks[0].max_pairs" in text and "eval_tasks[0].beta" in text
    tasks = [{"name": "p", "type": "preference", "metrics": ["bleu-4"], "extractor": "json"}]
    with pytest.raises(ConfigError) as excinfo:
        build({"model_name_or_path": "m", "output_dir": "o", "eval_tasks": tasks}, purpose="eval")
    text = "\n".join(f"{p.key}: {p.message}" for p in excinfo.value.problems)
    assert "dataset is required" in text
    assert "'bleu-4' does not fit a preference task; use accuracy, accuracy_normalised, margin" in text
    assert "a preference task generates no text; remove extractor" in text


def test_a_reward_model_is_scored_by_its_value_head(tiny_model_dir: Path, tiny_tokenizer: Any, make_dataset: Any,
                                                    data_dir: Path, tmp_path: Path) -> None:
    """A LoRA rm output folder (adapter + value head): accuracy and margin from its scores, the same scores
    infer/score.py's load_reward_scorer gives each chosen and rejected sequence on its own."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from tunelab.infer.score import load_reward_scorer
    from tunelab.model.value_head import ValueHeadModel, save_value_head

    make_dataset(PAIRS, name="prefs", file_name="prefs.json", entry=RANKING)
    torch.manual_seed(2)
    peft = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir),
                          LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    head = ValueHeadModel(peft, dropout=0.0)
    torch.nn.init.normal_(head.v_head.summary.weight)
    folder = tmp_path / "lora-rm"
    peft.save_pretrained(folder)
    save_value_head(head, folder)
    out = tmp_path / "eval"
    results = evaluate(eval_config(tiny_model_dir, data_dir, out, {}, adapter_name_or_path=str(folder)))
    score = results["fine-tuned"]["pref"]
    assert score.details["scored_by"].startswith("the reward model's value head")
    assert set(score.metrics) == {"accuracy", "margin"}  # no log-probabilities, no implicit reward
    scorer = load_reward_scorer(str(tiny_model_dir), str(folder), None)
    records, data = pair_records(tmp_path, make_dataset, data_dir)
    encoded = encode_pairs(records, tiny_tokenizer, data)
    expected = [(scorer.score_texts([tiny_tokenizer.decode(r["chosen_input_ids"])])[0],
                 scorer.score_texts([tiny_tokenizer.decode(r["rejected_input_ids"])])[0]) for r in encoded.rows]
    got = [(row["score_chosen"], row["score_rejected"]) for row in score.rows]
    assert [x for pair in got for x in pair] == pytest.approx([x for pair in expected for x in pair], abs=1e-4)
    right = sum(c > r for c, r in expected)
    assert score.metrics["accuracy"] == pytest.approx(100 * right / 3)
    assert score.metrics["margin"] == pytest.approx(sum(c - r for c, r in expected) / 3, abs=1e-4)
