"""Batch prediction helpers: greedy by default, resumable ids, prompts without the answer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tunelab.config.errors import ConfigError
from tunelab.config.load import build
from tunelab.config.schema import DataSection, InferSection
from tunelab.data.records import ChatRecord, Message
from tunelab.infer.predict import done_ids, prediction_settings, prompt_rows


def test_greedy_unless_do_sample_is_set() -> None:
    assert prediction_settings(InferSection()).do_sample is False
    assert prediction_settings(InferSection(do_sample=True)).do_sample is True


def test_done_ids_skip_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "generated_predictions.jsonl"
    assert done_ids(path) == set()
    path.write_text('{"id": "d:1", "predict": "a"}\n{"id": "d:2", "predict": "b"}\n{"id": "d:3", "pre')
    assert done_ids(path) == {"d:1", "d:2"}


def test_prompt_rows_hold_everything_but_the_answer(tiny_tokenizer: Any) -> None:
    turns = (Message("user", "a"), Message("assistant", "b"), Message("user", "c"), Message("assistant", "d"))
    row = prompt_rows([ChatRecord(messages=turns, dataset="chats", row=4)], tiny_tokenizer, DataSection())[0]
    assert (row.id, row.label) == ("chats:4", "d")
    assert [m["content"] for m in row.messages] == ["a", "b", "c"]
    expected = tiny_tokenizer.apply_chat_template(row.messages, add_generation_prompt=True, tokenize=True,
                                                  return_dict=True)["input_ids"]
    assert row.input_ids == list(expected)
    assert row.prompt == tiny_tokenizer.apply_chat_template(row.messages, add_generation_prompt=True, tokenize=False)


def test_eval_dataset_is_for_predict_not_training() -> None:
    base = {"model_name_or_path": "m", "output_dir": "o", "dataset": "d", "eval_dataset": "e"}
    assert build(base, purpose="predict").data.eval_dataset == "e"
    with pytest.raises(ConfigError) as excinfo:
        build(base, purpose="train")
    assert "eval_dataset: used by `tunelab predict`" in str(excinfo.value)
    with pytest.raises(ConfigError) as excinfo:
        build({"model_name_or_path": "m"}, purpose="predict")
    assert {p.key for p in excinfo.value.problems} == {"output_dir", "eval_dataset"}
