"""`tunelab train predict.yaml` with do_predict: problems reported before any model loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from tunelab.interfaces.cli import main

YAML = """\
model_name_or_path: no-such-model
stage: sft
do_predict: true
finetuning_type: lora
eval_dataset: identity
output_dir: {out}
predict_with_generate: true
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "predict.yaml"
    path.write_text(text.format(out=tmp_path / "out"), encoding="utf-8")
    return path


def test_do_predict_without_generation_is_a_config_problem(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["train", str(write(tmp_path, YAML.replace("predict_with_generate: true", "")))])
    err = capsys.readouterr().err
    assert code == 2 and "do_predict: predictions are generated answers: set predict_with_generate: true" in err
    assert "not supported yet" not in err and "Traceback" not in err


def test_an_earlier_prediction_stops_the_run_before_the_model_loads(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "generated_predictions.jsonl").write_text("{}\n")
    code = main(["train", str(write(tmp_path, YAML))])
    err = capsys.readouterr().err
    assert code == 1 and "already holds generated_predictions.jsonl of an earlier prediction" in err
    assert "no-such-model" not in err  # stopped before loading
