"""Stage grpo's reward checks: every problem of reward_funcs is found before anything loads, keyed by entry."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tunelab.config.errors import ConfigError
from tunelab.config.load import build, load_config
from tunelab.config.reward_checks import EXTRACTOR_PARAMETERS, LENGTH_RULE_NAMES, anchor_user_paths
from tunelab.text.extract import PARAMETERS
from tunelab.text.length import RULE_NAMES

GRPO = {"model_name_or_path": "tiny", "dataset": "demo", "output_dir": "out", "stage": "grpo"}


def problems(**flat: object) -> list[str]:
    try:
        build({**GRPO, **flat})
    except ConfigError as exc:
        return [str(p) for p in exc.problems]
    return []


def test_the_copied_names_equal_the_text_layers_tables() -> None:
    assert LENGTH_RULE_NAMES == RULE_NAMES
    assert EXTRACTOR_PARAMETERS == {name: frozenset(params) for name, params in PARAMETERS.items()}


def test_grpo_needs_rewards_and_other_stages_take_none() -> None:
    assert [p.split(":")[0] for p in problems()] == ["reward_funcs"]
    assert "stage grpo needs at least one reward" in problems()[0]
    found = problems(stage="sft", reward_funcs="accuracy")
    assert len(found) == 1 and found[0].startswith("reward_funcs: only stage grpo")
    assert problems(reward_funcs="accuracy,format") == [
        "reward_funcs[1].pattern: must be a non-empty regular expression"]


def test_fields_of_other_rewards_are_refused() -> None:
    found = problems(reward_funcs=[{"name": "accuracy", "pattern": "x", "rule": "words"},
                                   {"name": "format", "pattern": "x", "extractor": "number"},
                                   {"name": "length", "flags": "i", "target": 5}])
    assert found == ["reward_funcs[0].pattern: only for the format reward; remove it from 'accuracy'",
                     "reward_funcs[0].rule: only for the length reward; remove it from 'accuracy'",
                     "reward_funcs[1].extractor: only for the accuracy reward; remove it from 'format'",
                     "reward_funcs[2].flags: only for the format reward; remove it from 'length'"]


def test_patterns_flags_rules_and_extractors_are_checked() -> None:
    found = problems(reward_funcs=[{"name": "format", "pattern": "(yes"}, {"name": "format", "pattern": "y",
                                                                         "flags": "ix"},
                                   {"name": "length", "rule": "lines"}, {"name": "accuracy", "extractor": "digits"},
                                   {"name": "accuracy", "extractor": {"name": "number", "pattern": "x"}},
                                   {"name": "accuracy", "extractor": {"name": "regex", "pattern": "[a"}}])
    keys = [p.split(":")[0] for p in found]
    assert keys == ["reward_funcs[0].pattern", "reward_funcs[1].flags", "reward_funcs[2].rule",
                    "reward_funcs[3].extractor", "reward_funcs[4].extractor", "reward_funcs[5].extractor.pattern"]
    assert "does not compile" in found[0] and "unknown length rule 'lines'" in found[2]
    assert "unknown extractor 'digits'" in found[3] and "has no parameter pattern" in found[4]


def test_well_formed_rewards_pass() -> None:
    assert problems(reward_funcs=[{"name": "accuracy", "extractor": {"name": "regex", "pattern": "(yes|no)"}},
                                  {"name": "format", "pattern": "(yes|no)", "flags": "i", "weight": 0.5},
                                  {"name": "length", "target": 20, "rule": "tokens", "tolerance": 3}]) == []


def test_greedy_decoding_cannot_make_a_group() -> None:
    assert problems(reward_funcs="accuracy", do_sample=False)[0].startswith("do_sample: stage grpo samples")


def test_a_user_function_is_checked_without_running_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "good.py").write_text("raise SystemExit('never run at config time')\n"
                                      "def score(completions, prompts, references):\n    return []\n")
    (tmp_path / "broken.py").write_text("def score(:\n")
    assert problems(reward_funcs="good.py:score") == []
    found = problems(reward_funcs=["good.py:other", "broken.py:score", "absent.py:score", "nofile"])
    assert [p.split(":")[0] for p in found] == [f"reward_funcs[{i}].name" for i in range(4)]
    assert "defines no 'other'" in found[0] and "line 1" in found[1] and "absent.py not found" in found[2]
    assert "neither a built-in reward" in found[3]


def test_relative_paths_are_found_next_to_the_config_file_first(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    folder, elsewhere = tmp_path / "configs", tmp_path / "cwd"
    folder.mkdir()
    elsewhere.mkdir()
    (folder / "rw.py").write_text("def f(c, p, r):\n    return [0.0] * len(c)\n")
    (elsewhere / "other.py").write_text("def g(c, p, r):\n    return [0.0] * len(c)\n")
    (folder / "run.yaml").write_text(yaml.safe_dump({**GRPO, "reward_funcs": [
        "rw.py:f", "other.py:g", {"name": "format", "pattern": "x"}]}))
    monkeypatch.chdir(elsewhere)
    names = [r.name for r in load_config(folder / "run.yaml").pref.rewards()]
    assert names == [f"{(folder / 'rw.py').resolve()}:f", f"{(elsewhere / 'other.py').resolve()}:g", "format"]


def test_entries_without_user_functions_are_left_as_written(tmp_path: Path) -> None:
    assert anchor_user_paths("accuracy,format", tmp_path) == "accuracy,format"
    assert anchor_user_paths(None, tmp_path) is None
