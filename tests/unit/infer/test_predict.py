"""Batch prediction helpers: greedy by default, resumable ids, prompts without the answer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tunelab.config.errors import ConfigError
from tunelab.config.load import build
from tunelab.config.schema import DataSection, InferSection
from tunelab.data.examples import Message, Supervised
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
    row = prompt_rows([Supervised.chat(messages=turns, dataset="chats", row=4)], tiny_tokenizer, DataSection())[0]
    assert (row.id, row.label) == ("chats:4", "d")
    assert [m["content"] for m in row.messages] == ["a", "b", "c"]
    expected = tiny_tokenizer.apply_chat_template(row.messages, add_generation_prompt=True, tokenize=True,
                                                  return_dict=True)["input_ids"]
    assert row.input_ids == list(expected)
    assert row.prompt == tiny_tokenizer.apply_chat_template(row.messages, add_generation_prompt=True, tokenize=False)


def test_eval_dataset_serves_predict_and_training() -> None:
    base = {"model_name_or_path": "m", "output_dir": "o", "dataset": "d", "eval_dataset": "e"}
    assert build(base, purpose="predict").data.eval_dataset == "e"
    assert build(base, purpose="train").data.eval_dataset == "e"
    assert build({**base, "val_size": 0.1}, purpose="predict").data.val_size == 0.1  # a training config, reused
    with pytest.raises(ConfigError) as excinfo:
        build({"model_name_or_path": "m"}, purpose="predict")
    assert {p.key for p in excinfo.value.problems} == {"output_dir", "eval_dataset"}


def test_generate_batch_stops_at_eos_and_equals_hf_generate(tiny_tokenizer: Any, tiny_llama: Any) -> None:
    import torch

    from tunelab.infer.batch_generate import GenRequest, generate
    from tunelab.infer.batch_generate import stop_token_ids
    from tunelab.infer.predict import PromptRow, generate_batch
    from tunelab.model.load import ModelBundle

    eos = tiny_tokenizer.convert_tokens_to_ids("<|im_end|>")
    texts = ["Hello there", "What is the capital of France? Paris is"]
    rows = [PromptRow(id=str(i), dataset="d", messages=[], prompt=t, label="",
                      input_ids=tiny_tokenizer(t, add_special_tokens=False)["input_ids"]) for i, t in enumerate(texts)]
    # a second eos id in the generation config (as <|im_end|> next to <|endoftext|>): row 0's 4th free token
    extra = generate(tiny_llama, [GenRequest(rows[0].input_ids, 4)], 0)[0].token_ids[3]
    tiny_llama.generation_config.eos_token_id = [eos, extra]
    bundle = ModelBundle(tokenizer=tiny_tokenizer, model=tiny_llama, source=None)
    assert stop_token_ids(tiny_tokenizer, tiny_llama) == {eos, extra}
    answers = generate_batch(bundle, rows, prediction_settings(InferSection(max_new_tokens=10)))
    assert answers[0][1] <= 4
    for row, (text, count) in zip(rows, answers):
        with torch.inference_mode():
            out = tiny_llama.generate(torch.tensor([row.input_ids]), max_new_tokens=10, do_sample=False,
                                      eos_token_id=[eos, extra], pad_token_id=0)[0, len(row.input_ids):].tolist()
        assert count == len(out)  # the stop token counts as generated
        assert text == tiny_tokenizer.decode(out[:-1] if out[-1] in (eos, extra) else out,
                                             skip_special_tokens=True).strip()


@pytest.mark.parametrize(("answer", "max_new_tokens", "predict"), [("好中文", 4, "好"), ("好\ufffd中", 5, "好\ufffd")])
def test_an_answer_cut_inside_a_character_ends_before_it(tmp_path: Path, cjk_tokenizer: Any, make_dataset: Any,
                                                         monkeypatch: pytest.MonkeyPatch, capsys: Any, answer: str,
                                                         max_new_tokens: int, predict: str) -> None:
    """`tunelab predict` with max_new_tokens cutting between the two tokens of 中: the row ends before it, a U+FFFD
    the model wrote stays."""
    import json

    from tests.conftest import make_llama, scripted
    from tunelab.interfaces.cli import main

    model_dir = tmp_path / "model"
    make_llama(len(cjk_tokenizer)).save_pretrained(model_dir)
    cjk_tokenizer.save_pretrained(model_dir)
    make_dataset([{"instruction": "用中文问好", "output": "你好"}])
    script = scripted(cjk_tokenizer, answer)
    monkeypatch.setattr("tunelab.infer.predict.generate_each",
                        lambda model, requests, pad, max_batch=None: enumerate(script(model, requests, pad)))
    config = tmp_path / "predict.yaml"
    config.write_text(f"model_name_or_path: {model_dir}\neval_dataset: demo\ndataset_dir: {tmp_path / 'data'}\n"
                      f"output_dir: {tmp_path / 'out'}\nmax_new_tokens: {max_new_tokens}\n", encoding="utf-8")
    assert main(["predict", str(config)]) == 0
    rows = (tmp_path / "out" / "generated_predictions.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["predict"] for line in rows] == [predict]
    report = json.loads((tmp_path / "out" / "predict_report.json").read_text(encoding="utf-8"))
    assert report["generated_tokens"] == max_new_tokens  # every generated token counts, the half character too
