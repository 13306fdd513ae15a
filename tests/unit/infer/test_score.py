"""Reward scoring: last-token scores on any padding side, loading an rm folder (LoRA or full) back with equal
scores, and the errors for a folder that is not a reward model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from tunelab.infer import score as score_module
from tunelab.infer.score import RewardScorer, load_reward_scorer, pad_right, score_values
from tunelab.model.adapters import AdapterError
from tunelab.model.load import ModelError
from tunelab.model.value_head import ValueHeadError, ValueHeadModel
from tests.conftest import reward_head


@pytest.fixture
def full_rm(full_rm_dir: tuple[Path, Any]) -> tuple[Path, Any]:
    return full_rm_dir


@pytest.fixture
def lora_rm(lora_rm_dir: tuple[Path, Any]) -> tuple[Path, Any]:
    return lora_rm_dir


def test_the_score_is_the_value_at_the_last_real_token_on_either_side() -> None:
    values = torch.arange(12, dtype=torch.float32).reshape(2, 6)
    right = torch.tensor([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1]])
    left = torch.tensor([[0, 0, 0, 1, 1, 1], [1, 1, 1, 1, 1, 1]])
    assert score_values(values, right).tolist() == [2.0, 11.0]
    assert score_values(values, left).tolist() == [5.0, 11.0]


def test_padding_on_either_side_gives_the_unpadded_score(tiny_llama: Any) -> None:
    scorer = RewardScorer(reward_head(tiny_llama), tokenizer=None)
    row = [5, 9, 17, 33, 2]
    alone = scorer.score_ids(torch.tensor([row]), torch.ones(1, 5, dtype=torch.long))
    ids, mask = pad_right([row, [7, 8, 9, 10, 11, 12, 13]], 0)
    right = scorer.score_ids(ids, mask)
    left_ids = torch.tensor([[0, 0] + row, [7, 8, 9, 10, 11, 12, 13]])
    left = scorer.score_ids(left_ids, torch.tensor([[0, 0, 1, 1, 1, 1, 1], [1] * 7]))
    assert alone.dtype == torch.float32 and alone.shape == (1,)
    torch.testing.assert_close(right[0], alone[0])
    torch.testing.assert_close(left[0], alone[0])
    torch.testing.assert_close(left[1], right[1])
    assert not right.requires_grad


def test_a_full_rm_folder_scores_as_it_was_saved(full_rm: tuple[Path, Any]) -> None:
    folder, head = full_rm
    scorer = load_reward_scorer(str(folder), None, None)
    ids = torch.randint(3, 60, (3, 9))
    mask = torch.ones_like(ids)
    expected = head(ids, mask)[:, -1]
    torch.testing.assert_close(scorer.score_ids(ids, mask), expected)
    assert not scorer.model.training


def test_a_llamafactory_legacy_value_head_bin_loads_and_scores(tiny_model_dir: Path, tmp_path: Path) -> None:
    """LLaMA-Factory 0.9.5 without safe_serialization: torch.save of {v_head.summary.weight, v_head.summary.bias}
    as value_head.bin (fix_valuehead_checkpoint), read back by load_valuehead_params."""
    import shutil

    folder = tmp_path / "lf-rm"
    shutil.copytree(tiny_model_dir, folder)
    torch.manual_seed(3)
    weight, bias = torch.randn(1, 32), torch.randn(1)
    torch.save({"v_head.summary.weight": weight, "v_head.summary.bias": bias}, folder / "value_head.bin")
    scorer = load_reward_scorer(str(folder), None, None)
    ids, mask = pad_right([[5, 9, 17, 33, 2], [7, 8, 9, 10, 11, 12, 13]], 0)
    with torch.no_grad():
        hidden = scorer.model.pretrained_model.get_decoder()(input_ids=ids, attention_mask=mask).last_hidden_state
    expected = torch.stack([hidden[0, 4] @ weight[0] + bias[0], hidden[1, 6] @ weight[0] + bias[0]])
    torch.testing.assert_close(scorer.score_ids(ids, mask), expected)


def test_a_lora_rm_folder_scores_as_it_was_saved(tiny_model_dir: Path, lora_rm: tuple[Path, Any]) -> None:
    folder, head = lora_rm
    scorer = load_reward_scorer(str(tiny_model_dir), str(folder), None)
    ids = torch.randint(3, 60, (2, 11))
    mask = torch.ones_like(ids)
    expected = head(ids, mask)[:, -1]
    torch.testing.assert_close(scorer.score_ids(ids, mask), expected, atol=1e-5, rtol=1e-5)
    bare = ValueHeadModel(head.pretrained_model.get_base_model(), dropout=0.0)
    bare.v_head.load_state_dict(head.v_head.state_dict())
    with head.pretrained_model.disable_adapter():
        assert not torch.allclose(scorer.score_ids(ids, mask), bare(ids, mask)[:, -1])  # the adapter counts


def test_score_texts_tokenizes_without_special_tokens_and_cuts(full_rm: tuple[Path, Any]) -> None:
    folder, _ = full_rm
    scorer = load_reward_scorer(str(folder), None, None)
    texts = ["<|im_start|>user\nWho are you?<|im_end|>\n<|im_start|>assistant\nI am tunelab.<|im_end|>\n",
             "Hello there"]
    rows = [scorer.tokenizer(text, add_special_tokens=False)["input_ids"] for text in texts]
    ids, mask = pad_right(rows, 0)
    assert scorer.score_texts(texts) == pytest.approx(scorer.score_ids(ids, mask).tolist(), abs=1e-6)
    cut = scorer.score_texts(texts[:1], max_length=4)
    assert cut == pytest.approx(scorer.score_ids(torch.tensor([rows[0][:4]]), torch.ones(1, 4)).tolist(), abs=1e-6)
    with pytest.raises(ValueError, match="text 1 has no tokens"):
        scorer.score_texts(["Hello", ""])


def test_score_pairs_splits_chosen_then_rejected(full_rm: tuple[Path, Any]) -> None:
    from tunelab.data.collate import PairCollator

    scorer = load_reward_scorer(str(full_rm[0]), None, None)
    examples = [{"chosen_input_ids": [5, 6, 7], "chosen_labels": [-100, 6, 7],
                 "rejected_input_ids": [5, 6, 9, 10], "rejected_labels": [-100, 6, 9, 10]},
                {"chosen_input_ids": [11, 12], "chosen_labels": [-100, 12],
                 "rejected_input_ids": [11, 13, 14], "rejected_labels": [-100, 13, 14]}]
    chosen, rejected = scorer.score_pairs(PairCollator(0)(examples))
    alone = [float(scorer.score_ids(torch.tensor([ids]), torch.ones(1, len(ids)))[0])
             for ids in ([5, 6, 7], [11, 12], [5, 6, 9, 10], [11, 13, 14])]
    assert chosen.tolist() + rejected.tolist() == pytest.approx(alone, abs=1e-5)


def test_a_model_folder_without_a_head_is_refused_before_the_weights_load(
        tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_loading(*args: object) -> None:
        raise AssertionError("the weights were loaded")

    monkeypatch.setattr(score_module, "load_model", no_loading)
    with pytest.raises(ValueHeadError, match=f"{tiny_model_dir} is not a reward model: the model folder has no "
                                             "value_head.safetensors; give the output_dir of a stage: rm run"):
        load_reward_scorer(str(tiny_model_dir), None, None)


def test_an_sft_adapter_is_not_a_reward_model(tiny_model_dir: Path, lora_rm: tuple[Path, Any]) -> None:
    folder, _ = lora_rm
    (folder / "value_head.safetensors").unlink()
    with pytest.raises(ValueHeadError, match="the last folder of reward_model_adapters/adapter_name_or_path has no"):
        load_reward_scorer(str(tiny_model_dir), str(folder), None)


def test_a_folder_that_is_no_adapter_is_named(tiny_model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(AdapterError, match="has no adapter_config.json"):
        load_reward_scorer(str(tiny_model_dir), str(tmp_path), None)


def test_an_unknown_dtype_is_refused(tiny_model_dir: Path) -> None:
    with pytest.raises(ModelError, match="reward model dtype 'float8': use one of float32, bfloat16, float16"):
        load_reward_scorer(str(tiny_model_dir), None, None, dtype="float8")
