"""The Train form generated from the config schema: every key is there, a saved YAML loads back to the same form,
and the command preview is what the real CLI parser accepts and runs."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import yaml

from tunelab.config.errors import ConfigError
from tunelab.config.load import load_config
from tunelab.config.schema import key_owners
from tunelab.interfaces import cli
from tunelab.interfaces.webui import form, train_actions
from tunelab.interfaces.webui.command_run import shown_command

REPO = Path(__file__).resolve().parents[4]


def form_values(**changes: object) -> dict[str, form.UiValue]:
    values = {field.key: form.to_ui(field, field.default) for field in form.fields()}
    values.update(changes)
    return values


def test_every_schema_key_is_a_form_field_and_each_is_shown_once() -> None:
    keys = [field.key for field in form.fields()]
    assert sorted(keys) == sorted(key_owners())
    shown = list(form.TOP_KEYS) + [f.key for f in form.common_fields() if f.key not in form.TOP_KEYS]
    shown += [f.key for fields in form.section_keys().values() for f in fields]
    assert sorted(shown) == sorted(key_owners())


def test_field_kinds_follow_the_annotations() -> None:
    by_key = form.fields_by_key()
    assert by_key["bf16"].kind == "bool"
    assert by_key["lr_scheduler_type"].kind == "choice" and "cosine" in by_key["lr_scheduler_type"].choices
    assert by_key["lora_rank"].kind == "integer" and by_key["learning_rate"].kind == "number"
    assert by_key["lora_alpha"].kind == "integer" and by_key["lora_alpha"].optional
    assert by_key["resume_from_checkpoint"].kind == "yaml"
    assert by_key["dataset"].kind == "datasets"
    assert by_key["template"].kind == "text" and by_key["template"].optional


def test_saved_yaml_loads_back_to_the_same_form(tmp_path: Path) -> None:
    values = form_values(model_name_or_path="smollm2-135m-instruct", dataset=["identity", "identity_text"],
                         dataset_dir="examples/data", output_dir="saves/x", learning_rate=1e-3, max_steps=5,
                         lr_scheduler_type="constant", lora_alpha=32, gradient_checkpointing="true",
                         template="smollm2", bf16=True, freeze_extra_modules="embed_tokens")
    path = train_actions.save_yaml(values, "cfg/run.yaml", tmp_path)
    assert path == tmp_path / "cfg" / "run.yaml"
    assert train_actions.load_yaml("cfg/run.yaml", tmp_path) == values
    saved = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert saved["dataset"] == "identity,identity_text" and saved["lora_alpha"] == 32
    assert "adam_beta1" not in saved  # defaults stay out of the file


def test_unset_choice_and_empty_text_are_the_defaults() -> None:
    by_key = form.fields_by_key()
    assert form.from_ui(by_key["export_quantization_bit"], form.UNSET) is None
    assert form.from_ui(by_key["optim"], "") == "adamw_torch"
    assert form.from_ui(by_key["export_quantization_bit"], "4") == 4


def test_bad_yaml_text_names_the_key() -> None:
    with pytest.raises(ConfigError, match="resume_from_checkpoint: not valid YAML"):
        form.from_ui(form.fields_by_key()["resume_from_checkpoint"], "[unclosed")


def test_loading_a_yaml_with_an_unknown_key_names_it(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("learning_rat: 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="learning_rat"):
        train_actions.load_yaml("bad.yaml", tmp_path)


def test_command_preview_parses_with_the_real_cli_and_loads_the_same_config(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    for name in ("dataset_info.json", "identity.json"):
        (tmp_path / "data" / name).write_bytes((REPO / "examples" / "data" / name).read_bytes())
    values = form_values(model_name_or_path="smollm2-135m-instruct", dataset=["identity"], output_dir="saves/r1",
                         max_steps=3, learning_rate=2e-4)
    planned = train_actions.plan(values, tmp_path)
    planned.yaml_path.parent.mkdir(parents=True)
    planned.yaml_path.write_text(planned.yaml, encoding="utf-8")
    shown = form.command_text(planned.command)
    assert shown == "tunelab train saves/r1/webui_train.yaml"
    args = cli.build_parser().parse_args(shlex.split(shown)[1:])
    assert args.func is cli.cmd_train
    config = load_config(tmp_path / args.config, args.overrides, purpose="train")
    assert config.train.max_steps == 3 and config.train.learning_rate == 2e-4
    assert config.data.dataset == "identity" and config.train.output_dir == "saves/r1"
    assert shown_command(train_actions.tunelab_argv(*planned.command[1:])) == shown  # the process runs what is shown


def test_plan_reports_config_problems_before_anything_starts(tmp_path: Path) -> None:
    values = form_values(model_name_or_path="smollm2-135m-instruct", output_dir="saves/r", learning_rate=-1.0,
                         dataset_dir=".")
    with pytest.raises(ConfigError, match="learning_rate"):
        train_actions.plan(values, tmp_path)
    with pytest.raises(ConfigError, match="output_dir: choose the run folder"):
        train_actions.plan(form_values(model_name_or_path="m", output_dir=""), tmp_path)
