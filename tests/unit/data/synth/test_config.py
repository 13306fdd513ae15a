"""The synthesis config: closed sections, every problem at once, API keys kept out of the YAML."""

from __future__ import annotations

from pathlib import Path

import pytest

from tunelab.config.errors import ConfigError
from tunelab.data.tools.synth.config import load_synth_config

from .conftest import write_config


def problems(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_synth_config(path)
    return str(caught.value)


def test_a_valid_config_loads_with_defaults(folder: Path) -> None:
    config = load_synth_config(write_config(folder, "http://127.0.0.1:1/v1"))
    assert config.generation.n == 2 and config.reply.mode == "text" and config.dedup == "punct"
    assert config.output.path("log") == folder / "out" / "synth.synth.jsonl"
    assert config.output.path("report") == folder / "out" / "synth.report.json"


def test_every_problem_is_reported_together_with_suggestions(folder: Path) -> None:
    path = write_config(folder, "http://x/v1", generation={"n": 0, "temperatur": 0.5},
                        checks={"regex": "(unclosed"}, output={"file": "out.json", "formatt": "alpaca"})
    text = problems(path)
    assert "has 3 problems" in text  # the regex is checked once the keys are right
    assert "generation.n: input should be greater than 0" in text
    assert "generation.temperatur: unknown key; did you mean temperature?" in text
    assert "output.formatt: unknown key; did you mean format?" in text


def test_compile_problems_are_reported_together(folder: Path) -> None:
    path = write_config(folder, "http://x/v1", checks={"regex": "(unclosed"},
                        prompt={"template": "{{ product "}, output={"file": "out.jsonl"})
    text = problems(path)
    assert "has 3 problems" in text
    assert "checks.regex: does not compile" in text
    assert "prompt.template: not a valid Jinja template" in text
    assert "output.file: name a .json file" in text


def test_an_api_key_written_into_the_yaml_is_refused(folder: Path) -> None:
    endpoint = {"base_url": "http://x/v1", "model": "m", "api_key": "sk-abcdefghijklmnopqrstuvwx"}
    text = problems(write_config(folder, "", endpoint=endpoint))
    assert "endpoint.api_key: an API key must not be written into the YAML" in text
    assert "api_key_env" in text and "sk-abcdef" not in text
    assert "has 1 problem" in text  # not also reported as an unknown key


def test_a_key_given_as_the_variable_name_is_refused(folder: Path) -> None:
    endpoint = {"base_url": "http://x/v1", "model": "m", "api_key_env": "sk-abcdefghijklmnopqrstuvwx"}
    text = problems(write_config(folder, "", endpoint=endpoint))
    assert "endpoint.api_key_env: this looks like an API key written into the YAML" in text
    endpoint["api_key_env"] = "my key"
    assert "takes the NAME of an environment variable" in problems(write_config(folder, "", endpoint=endpoint))


def test_seeds_need_exactly_one_source(folder: Path) -> None:
    text = problems(write_config(folder, "http://x/v1", seeds={"file": "a.json", "topics": ["x"]}))
    assert "seeds: value error, give either file (seed rows) or topics" in text


def test_json_replies_need_instruction_and_output_mapped(folder: Path) -> None:
    text = problems(write_config(folder, "http://x/v1", reply={"mode": "json", "fields": {"output": "a"}}))
    assert "reply.fields: json and pairs replies need instruction and output mapped" in text


def test_a_missing_config_file_names_it(folder: Path) -> None:
    assert "no such file" in problems(folder / "nope.yaml")
