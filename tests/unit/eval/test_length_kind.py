"""The length task: its config checks, its scoring (empty answers counted and listed), bands, decoding, figures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tunelab.config.errors import ConfigError
from tunelab.config.load import build
from tunelab.eval.kinds import KINDS
from tunelab.eval.kinds.length import LengthTask, band_labels, length_decoding, plot_length
from tunelab.eval.results import Answer, LabelError, TaskScore
from tunelab.eval.score import score_task
from tunelab.text.length import RULE_NAMES, UNITS


def task(**fields: Any) -> LengthTask:
    config = build({"model_name_or_path": "m", "output_dir": "o",
                    "eval_tasks": [{"name": "len", "type": "length", "dataset": "d", **fields}]}, purpose="eval")
    found = config.eval.tasks()[0]
    assert isinstance(found, LengthTask)
    return found


@pytest.mark.parametrize(("fields", "message"), [
    ({}, "set target_field .* or target_regex"),
    ({"target_field": "n", "target_regex": r"(\d+)"}, "give one source of the target length, not both"),
    ({"target_regex": r"(\d+)(字)"}, "target_regex has 2 groups; it needs exactly one"),
    ({"target_regex": r"(\d+"}, "does not compile"),
    ({"target_field": "n", "length_rule": "tokens"}, "length_rule tokens counts a tokenizer's tokens: set tokenizer"),
    ({"target_field": "n", "bands": [100, 50]}, "must be ascending"),
    ({"target_field": "n", "temperature": 0.7}, "temperature apply when sampling; set do_sample: true"),
    ({"target_field": "n", "label_extractor": "number"}, "remove label_extractor"),
    ({"target_field": "n", "metrics": ["bleu-4"]}, "'bleu-4' does not fit a length task"),
    ({"target_field": "n", "length_rule": "letters"}, "length_rule"),
])
def test_config_checks_name_the_fix(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        task(**fields)


def test_other_kinds_do_not_take_length_keys() -> None:
    with pytest.raises(ConfigError, match="target_field"):
        build({"model_name_or_path": "m", "output_dir": "o", "eval_tasks": [
            {"name": "g", "type": "generation", "dataset": "d", "target_field": "n"}]}, purpose="eval")


def test_scores_rows_and_lists_empty_answers() -> None:
    answers = [Answer("d:1", "写10字", "10", "春节快乐，万事如意！"),  # 10 characters: exact
               Answer("d:2", "写20字", "20", "新年 好\n"),  # 3 without the space and the line break: -17
               Answer("d:3", "写60字", "60", "   "),  # empty: length 0, deviation -60, listed
               Answer("d:4", "写200字", "200", "好" * 230)]  # +30
    score = score_task(task(target_field="n", tolerance=[5, 30]), answers)
    assert [row["deviation"] for row in score.rows] == [0, -17, -60, 30]
    assert [row["actual"] for row in score.rows] == [10, 3, 0, 230]
    assert score.metrics == pytest.approx({"mae": 26.75, "mre": (0 + 85 + 100 + 15) / 4, "within@5": 25.0,
                                           "within@30": 75.0, "bias": -11.75})
    assert list(score.metrics) == ["mae", "mre", "within@5", "within@30", "bias"]
    assert score.unextracted == ["d:3"] and score.details["empty_answers"] == ["d:3"] and score.scored == 4
    bands = {row["band"]: row for row in score.details["bands"]}  # type: ignore[union-attr]
    assert list(bands) == ["1-50", "51-100", "101-200"]
    assert bands["1-50"]["rows"] == 2 and bands["1-50"]["mae"] == 8.5 and bands["101-200"]["bias"] == 30
    assert score.details["length_rule"] == "chars_no_space (characters without spaces and line breaks)"


def test_rules_words_and_chars_and_a_within_metric_asked_by_name() -> None:
    answers = [Answer("d:1", "", "4", "one two three four five"), Answer("d:2", "", "3", "新年好")]
    words = score_task(task(target_field="n", length_rule="words", metrics=["mae", "within@0"]), answers)
    assert words.metrics == {"mae": 0.5, "within@0": 50.0}
    chars = score_task(task(target_field="n", length_rule="chars", metrics=["bias"]), answers)
    assert chars.metrics == {"bias": (19 + 0) / 2}


def test_target_from_the_prompt_and_unreadable_targets() -> None:
    regex_task = task(target_regex=r"(\d+)\s*字")
    score = score_task(regex_task, [Answer("d:1", "请写一段１５ 字的祝福", "", "新年好")])  # full-width digits
    assert score.rows[0]["target"] == 15 and score.rows[0]["deviation"] == -12
    with pytest.raises(LabelError, match=r"row d:2: .*target_regex"):
        score_task(regex_task, [Answer("d:1", "写5字", "", "x"), Answer("d:2", "写一段祝福", "", "x")])
    with pytest.raises(LabelError, match=r"row d:1: the reference answer '0' .*target_field 'n'"):
        score_task(task(target_field="n"), [Answer("d:1", "", "0", "x")])


def test_greedy_unless_the_task_samples() -> None:
    assert length_decoding(task(target_field="n")) == {"do_sample": False}
    assert length_decoding(task(target_field="n", do_sample=True, temperature=0.3)) == {"do_sample": True,
                                                                                       "temperature": 0.3}
    assert KINDS["length"].needs_reference is False


def test_band_labels() -> None:
    assert band_labels([50, 100]) == ["1-50", "51-100", "101+"]


def test_every_rule_has_its_unit() -> None:
    assert set(RULE_NAMES) == set(UNITS)


def test_plot_writes_both_figures_with_a_series_per_model(tmp_path: Path) -> None:
    spec = task(target_field="n")
    answers = [Answer(f"d:{n}", "", str(n), "好" * (n + 3)) for n in (10, 20, 60, 120)]
    scores: dict[str, TaskScore] = {"base": score_task(spec, answers),
                                    "tuned": score_task(spec, [Answer(a.id, "", a.label, "") for a in answers])}
    paths = plot_length(spec, scores, tmp_path)
    assert [p.name for p in paths] == ["len_length.png", "len_length_bands.png"]
    assert all(p.stat().st_size > 10_000 for p in paths)


def test_tokens_rule_counts_the_named_tokenizers_tokens(tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokens = AutoTokenizer.from_pretrained(tiny_model_dir).encode("hello world", add_special_tokens=False)
    spec = task(target_field="n", length_rule="tokens", tokenizer=str(tiny_model_dir), metrics=["bias"])
    score = score_task(spec, [Answer("d:1", "", "1", "hello world")])
    assert score.rows[0]["actual"] == len(tokens) and score.metrics == {"bias": len(tokens) - 1}
    assert score.details["length_rule"] == "tokens (tokens)"


def test_the_example_config_validates_and_its_sets_have_targets() -> None:
    from tunelab.config.load import load_config
    from tunelab.eval.run import expected_answers

    root = Path(__file__).resolve().parents[3]
    config = load_config(str(root / "examples" / "length_control.yaml"), [f"dataset_dir={root / 'examples' / 'data'}"],
                         purpose="eval")
    zh, en = config.eval.tasks()
    assert [a.label for a in expected_answers(config, zh)] == ["10", "20", "30", "40", "50"]
    answers = expected_answers(config, en)
    assert score_task(en, [Answer(a.id, a.prompt, a.label, "word " * 10) for a in answers]).metrics["mae"] == 20
