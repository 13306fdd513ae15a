"""The value head: LLaMA-Factory's file and key names, last-token scores, and the errors of a folder without one."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tunelab.model.value_head import (KEYS, ValueHeadError, ValueHeadModel, has_value_head, last_token_values,
                                      read_value_head, save_value_head)


def test_saved_head_loads_back_with_llamafactory_keys(tiny_llama: torch.nn.Module, tmp_path: Path) -> None:
    model = ValueHeadModel(tiny_llama, dropout=0.0).eval()
    torch.nn.init.normal_(model.v_head.summary.weight)
    path = save_value_head(model, tmp_path)
    assert path.name == "value_head.safetensors" and has_value_head(tmp_path)
    state = read_value_head(tmp_path)
    assert set(state) == set(KEYS) and state[KEYS[0]].shape == (1, 32)
    other = ValueHeadModel(tiny_llama, dropout=0.0).eval()
    other.load_head_state(state, tmp_path)
    ids = torch.randint(3, 60, (2, 7))
    torch.testing.assert_close(other(ids), model(ids))


def test_scores_are_the_values_at_the_last_real_token() -> None:
    values = torch.arange(12, dtype=torch.float32).reshape(2, 6)
    mask = torch.tensor([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1]])
    assert last_token_values(values, mask).tolist() == [2.0, 11.0]


def test_a_folder_without_a_head_is_not_a_reward_model(tmp_path: Path) -> None:
    with pytest.raises(ValueHeadError, match="it is not a reward model; train one with stage: rm"):
        read_value_head(tmp_path)


def test_a_corrupt_head_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "value_head.safetensors").write_bytes(b"\x10\x00garbage")
    with pytest.raises(ValueHeadError, match="value_head.safetensors: not a readable safetensors file"):
        read_value_head(tmp_path)


def test_a_head_of_another_hidden_size_is_refused(tiny_llama: torch.nn.Module, tmp_path: Path) -> None:
    state = {KEYS[0]: torch.zeros(1, 64), KEYS[1]: torch.zeros(1)}
    with pytest.raises(ValueHeadError, match="does not fit this model"):
        ValueHeadModel(tiny_llama).load_head_state(state, tmp_path)
