"""YAML + overrides -> RunConfig: typing, did-you-mean, LLaMA-Factory keys, renamed keys, round trips."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tunelab.config.errors import ConfigError
from tunelab.config.load import build, dump_yaml, load_config, parse_overrides, read_yaml
from tunelab.config.schema import RunConfig

LLAMAFACTORY_TUTORIAL = """\
model_name_or_path: smollm2-135m-instruct
stage: sft
do_train: true
finetuning_type: lora
lora_target: all
dataset: identity
template: smollm2
cutoff_len: 2048
max_samples: 1000
overwrite_cache: true
preprocessing_num_workers: 2
output_dir: saves/smollm2-135m/lora/sft
logging_steps: 10
save_steps: 500
plot_loss: true
overwrite_output_dir: true
per_device_train_batch_size: 1
gradient_accumulation_steps: 8
learning_rate: 1.0e-4
num_train_epochs: 3.0
lr_scheduler_type: cosine
warmup_ratio: 0.1
bf16: true
ddp_timeout: 180000000
val_size: 0.1
per_device_eval_batch_size: 1
eval_strategy: steps
eval_steps: 500
"""

MINIMAL = {"model_name_or_path": "tiny", "dataset": "demo", "output_dir": "out"}


def write(tmp_path: Path, text: str, name: str = "run.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems_of(excinfo: pytest.ExceptionInfo[ConfigError]) -> dict[str, str]:
    return {p.key: p.message for p in excinfo.value.problems}


def test_flat_yaml_becomes_typed_sections(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        model_name_or_path: tiny
        dataset: a, b
        output_dir: out
        learning_rate: 2.0e-4
        lora_rank: 16
        cutoff_len: 512
        bf16: true
        max_new_tokens: 64
        """)
    config = load_config(path)
    assert isinstance(config, RunConfig)
    assert config.model.model_name_or_path == "tiny"
    assert config.data.dataset == "a, b"
    assert config.data.cutoff_len == 512
    assert config.train.learning_rate == pytest.approx(2e-4)
    assert config.train.bf16 is True
    assert config.lora.lora_rank == 16
    assert config.infer.max_new_tokens == 64
    assert config.lora.lora_alpha is None  # default, 2 x rank when applied


def test_the_llamafactory_tutorial_yaml_validates_as_is(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, LLAMAFACTORY_TUTORIAL))
    assert config.model.model_name_or_path == "smollm2-135m-instruct"
    assert config.method.stage == "sft" and config.method.finetuning_type == "lora"
    assert config.data.template == "smollm2"
    assert config.data.max_samples == 1000
    assert config.data.val_size == pytest.approx(0.1)
    assert config.train.learning_rate == pytest.approx(1e-4)
    assert config.train.gradient_accumulation_steps == 8
    assert config.train.ddp_timeout == 180000000
    assert config.eval.eval_strategy == "steps" and config.eval.eval_steps == 500


def test_overrides_are_typed_as_yaml_scalars(tmp_path: Path) -> None:
    path = write(tmp_path, LLAMAFACTORY_TUTORIAL)
    config = load_config(path, ["learning_rate=1e-4", "bf16=false", "max_samples=10", "lora_alpha=null",
                                "dataset=a,b", "num_train_epochs=1"])
    assert config.train.learning_rate == pytest.approx(1e-4)
    assert isinstance(config.train.learning_rate, float)
    assert config.train.bf16 is False
    assert config.data.max_samples == 10
    assert config.data.dataset == "a,b"
    assert config.train.num_train_epochs == 1.0


def test_parse_overrides_values() -> None:
    values, problems = parse_overrides(["bf16=true", "max_steps=2", "lora_alpha=", "output_dir=saves/x=1"])
    assert values == {"bf16": True, "max_steps": 2, "lora_alpha": None, "output_dir": "saves/x=1"}
    assert problems == []


def test_an_override_without_equals_sign_is_reported_with_an_example() -> None:
    with pytest.raises(ConfigError) as excinfo:
        load_config(None, ["model_name_or_path=tiny", "learning_rate"], purpose="infer")
    assert problems_of(excinfo) == {
        "learning_rate": "an override must look like key=value, e.g. learning_rate=5e-5"}


def test_a_text_override_with_colon_space_stays_text() -> None:
    config = load_config(None, ["model_name_or_path=tiny", "default_system=Role: tutor"], purpose="infer")
    assert config.data.default_system == "Role: tutor"


def test_a_text_override_with_hash_keeps_all_its_text() -> None:
    config = load_config(None, ["model_name_or_path=tiny", "default_system=Answer with a #hashtag"],
                         purpose="infer")
    assert config.data.default_system == "Answer with a #hashtag"


def test_unknown_key_suggests_the_closest_key() -> None:
    with pytest.raises(ConfigError) as excinfo:
        build({**MINIMAL, "learning_rat": 1e-4})
    assert problems_of(excinfo) == {"learning_rat": "unknown key; did you mean learning_rate?"}


def test_unknown_key_without_a_close_match_has_no_suggestion() -> None:
    with pytest.raises(ConfigError) as excinfo:
        build({**MINIMAL, "zzzz_qqqq": 1})
    assert problems_of(excinfo) == {"zzzz_qqqq": "unknown key"}


def test_llamafactory_key_is_named_as_unsupported_not_unknown() -> None:
    with pytest.raises(ConfigError) as excinfo:
        build({**MINIMAL, "use_galore": True})
    message = problems_of(excinfo)["use_galore"]
    assert "LLaMA-Factory key that tunelab does not support" in message
    assert "remove it" in message and "tunelab config --keys" in message
    assert "unknown" not in message


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("learning_rate", "fast", "input should be a valid number, unable to parse string as a number (got 'fast')"),
    ("bf16", "maybe", "input should be a valid boolean, unable to interpret input (got 'maybe')"),
    ("cutoff_len", 0, "input should be greater than 0 (got 0)"),
    ("stage", "orpo", "input should be 'pt', 'sft', 'rm', 'dpo', 'kto', 'ppo' or 'grpo' (got 'orpo')"),
    ("lora_dropout", 1.5, "input should be less than 1 (got 1.5)"),
    ("output_dir", ["a"], "input should be a valid string (got ['a'])"),
])
def test_wrong_types_name_the_key_and_the_value(key: str, value: object, expected: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        build({**MINIMAL, key: value})
    assert problems_of(excinfo) == {key: expected}


def test_missing_required_key_says_how_to_give_it() -> None:
    with pytest.raises(ConfigError) as excinfo:
        build({"dataset": "demo", "output_dir": "out"})
    assert problems_of(excinfo) == {
        "model_name_or_path": "required; add it to the YAML or pass model_name_or_path=..."}


def test_several_problems_are_reported_together_in_file_order(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        model_name_or_path: tiny
        dataset: demo
        output_dir: out
        learning_rat: 1.0e-4
        use_galore: true
        lora_rank: many
        """)
    with pytest.raises(ConfigError) as excinfo:
        load_config(path, ["cutoff_len=-1", "oops"])
    error = excinfo.value
    assert [p.key for p in error.problems] == ["oops", "learning_rat", "use_galore", "cutoff_len", "lora_rank"]
    assert str(error).splitlines()[0] == f"the config {path} has 5 problems"
    assert "  learning_rat: unknown key; did you mean learning_rate?" in str(error).splitlines()


def test_field_problems_and_cross_check_problems_are_reported_together() -> None:
    with pytest.raises(ConfigError) as excinfo:
        build({"dataset": "demo", "bf16": True, "fp16": True})
    assert set(problems_of(excinfo)) == {"model_name_or_path", "output_dir", "bf16"}


@pytest.mark.parametrize(("old", "new", "value"), [
    ("evaluation_strategy", "eval_strategy", "steps"),
    ("lora_r", "lora_rank", 4),
    ("model_name", "model_name_or_path", "other"),
])
def test_renamed_keys_are_accepted_under_their_new_name(old: str, new: str, value: object) -> None:
    base = {key: v for key, v in MINIMAL.items() if key != new}
    if new == "model_name_or_path":
        base[old] = value
    config = build({**base, "val_size": 0.1, old: value})
    assert config.flat()[new] == value


def test_old_and_new_name_of_one_key_together_is_a_problem() -> None:
    with pytest.raises(ConfigError) as excinfo:
        build({**MINIMAL, "val_size": 0.1, "evaluation_strategy": "steps", "eval_strategy": "no"})
    assert "evaluation_strategy" in str(excinfo.value) and "eval_strategy" in str(excinfo.value)


def test_section_blocks_are_flattened(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        model:
          model_name_or_path: tiny
        data:
          dataset: demo
          cutoff_len: 128
        train:
          output_dir: out
          learning_rate: 3.0e-4
          max_steps: 2
        lora_rank: 4
        """)
    config = load_config(path)
    assert config.model.model_name_or_path == "tiny"
    assert config.data.cutoff_len == 128
    assert config.train.learning_rate == pytest.approx(3e-4) and config.train.max_steps == 2
    assert config.lora.lora_rank == 4


def test_unknown_key_inside_a_section_block_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path, "train:\n  learning_rat: 1.0e-4\n")
    with pytest.raises(ConfigError) as excinfo:
        load_config(path, ["model_name_or_path=tiny"], purpose="infer")
    assert problems_of(excinfo) == {"learning_rat": "unknown key; did you mean learning_rate?"}


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as excinfo:
        load_config(path)
    assert problems_of(excinfo) == {str(path): "no such file; give the path of a YAML config"}


def test_bad_yaml_names_the_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "model_name_or_path: tiny\n  bad: indent\noutput_dir: out\n")
    with pytest.raises(ConfigError) as excinfo:
        read_yaml(path)
    assert problems_of(excinfo) == {f"{path} line 2": "not valid YAML (mapping values are not allowed here)"}


def test_yaml_that_is_not_a_mapping_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "- a\n- b\n")
    with pytest.raises(ConfigError) as excinfo:
        read_yaml(path)
    assert problems_of(excinfo) == {str(path): "the file must be a mapping of key: value lines"}


def test_non_utf8_yaml_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("default_system: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError) as excinfo:
        read_yaml(path)
    assert problems_of(excinfo) == {str(path): "not UTF-8 text; save the file as UTF-8"}


def test_empty_yaml_file_is_an_empty_mapping(tmp_path: Path) -> None:
    assert read_yaml(write(tmp_path, "# nothing yet\n")) == {}


def test_dump_yaml_round_trips(tmp_path: Path) -> None:
    text = LLAMAFACTORY_TUTORIAL + 'default_system: "You are tunelab: answer briefly, #1 rule."\nseed: 7\n'
    config = load_config(write(tmp_path, text))
    assert config.data.default_system == "You are tunelab: answer briefly, #1 rule."
    dumped = tmp_path / "dumped.yaml"
    dumped.write_text(dump_yaml(config), encoding="utf-8")
    assert load_config(dumped) == config


def test_dump_yaml_round_trips_the_defaults(tmp_path: Path) -> None:
    config = build({"model_name_or_path": "tiny"}, purpose="infer")
    dumped = tmp_path / "dumped.yaml"
    dumped.write_text(dump_yaml(config), encoding="utf-8")
    assert load_config(dumped, purpose="infer") == config


def test_dump_yaml_groups_keys_by_section() -> None:
    text = dump_yaml(build(MINIMAL))
    headers = [line for line in text.splitlines() if line.startswith("###")]
    assert headers == ["### model", "### data", "### method", "### lora", "### train", "### eval", "### launch", "### infer",
                       "### backend", "### export", "### pref"]
    assert "learning_rate: 5.0e-05" in text


def test_unquoted_no_is_the_no_strategy(tmp_path: Path) -> None:
    """YAML 1.1 reads `no` as false; for eval_strategy and save_strategy it is LLaMA-Factory's 'no'."""
    path = write(tmp_path, "model_name_or_path: tiny\ndataset: demo\noutput_dir: out\neval_strategy: no\n"
                           "save_strategy: no\n")
    config = load_config(path)
    assert (config.eval.eval_strategy, config.train.save_strategy) == ("no", "no")
    assert load_config(path, ["save_strategy=no"]).train.save_strategy == "no"


def test_yes_is_not_a_strategy(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as excinfo:
        build({**MINIMAL, "save_strategy": True})
    assert problems_of(excinfo) == {"save_strategy": "input should be 'no', 'steps' or 'epoch' (got True)"}
