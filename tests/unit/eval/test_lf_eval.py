"""LLaMA-Factory's eval YAML (task: mmlu_test ...) under `tunelab eval`, and its zipped benchmark folders."""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path

import pytest

from tunelab.config.errors import ConfigError
from tunelab.config.load import load_config
from tunelab.eval.choice import load_questions

LF_EVAL = """model_name_or_path: m
adapter_name_or_path: saves/x
finetuning_type: lora
task: ceval_validation
task_dir: evaluation
template: smollm2
lang: zh
n_shot: 3
save_dir: saves/x/eval
batch_size: 4
"""


def test_llamafactory_eval_yaml_becomes_a_choice_logits_task(tmp_path: Path) -> None:
    path = tmp_path / "eval.yaml"
    path.write_text(LF_EVAL, encoding="utf-8")
    config = load_config(path, purpose="eval")
    assert config.train.output_dir == "saves/x/eval" and config.eval.per_device_eval_batch_size == 4
    task = config.eval.tasks()[0]
    assert (task.name, task.type, task.task_dir, task.split, task.n_shot, task.lang) == \
        ("ceval_validation", "choice_logits", "evaluation/ceval", "val", 3, "zh")


def test_eval_keys_outside_eval_say_which_command(tmp_path: Path) -> None:
    path = tmp_path / "eval.yaml"
    path.write_text(LF_EVAL, encoding="utf-8")
    with pytest.raises(ConfigError, match="task: a key of LLaMA-Factory's eval config"):
        load_config(path, purpose="infer")
    with pytest.raises(ConfigError, match="not like mmlu_test"):
        load_config(None, ["model_name_or_path=m", "task=mmlu", "save_dir=o"], purpose="eval")
    path.write_text("model_name_or_path: m\noutput_dir: o\ntask: mmlu_test\n"
                    "eval_tasks: [{name: x, type: perplexity, dataset: d}]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="task and tunelab's eval_tasks are both set"):
        load_config(path, purpose="eval")


def test_zipped_benchmark_folder_is_extracted_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUNELAB_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "evaluation" / "mmlu"
    folder.mkdir(parents=True)
    rows = {"dev": [["1+1?", "1", "2", "3", "4", "B"]], "test": [["2+2?", "3", "4", "5", "6", "B"]] * 3}
    with zipfile.ZipFile(folder / "mmlu.zip", "w") as archive:
        for split, lines in rows.items():
            csv_path = tmp_path / f"math_{split}.csv"
            with csv_path.open("w", newline="", encoding="utf-8") as handle:
                csv.writer(handle).writerows(lines)
            archive.write(csv_path, f"data/{split}/math_{split}.csv")
    questions = load_questions(folder, "test")
    assert [q.id for q in questions] == ["math:0", "math:1", "math:2"]
    extracted = list((tmp_path / "cache" / "eval").iterdir())
    assert len(extracted) == 1 and extracted[0].name.startswith("mmlu-")
    assert len(load_questions(folder, "test")) == 3 and len(list((tmp_path / "cache" / "eval").iterdir())) == 1
