"""The shopping-concepts story's ranking, retrieval and multi-answer tasks scored with `tunelab eval score`:
answers listing option letters (with or without the option text) score by their letters, not 0."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tunelab.interfaces.cli import main

RANK_PROMPT = ("查询：跑步装备。按相关性从高到低给下列商品排序，只输出字母。\n"
               "A. 跑鞋\nB. 瑜伽垫\nC. 运动袜\nD. 保温杯\n")
RETRIEVE_PROMPT = ("查询：露营。从下列商品中选出最相关的 3 个。\n"
                   "A. 帐篷\nB. 睡袋\nC. 口红\nD. 头灯\nE. 领带\nF. 防潮垫\n")


def write(path: Path, rows: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def scores(tmp_path: Path, rows: list[dict[str, str]], *args: str) -> dict[str, object]:
    out = tmp_path / "scores.json"
    assert main(["eval", "score", str(write(tmp_path / "generated_predictions.jsonl", rows)), *args,
                 "--json", str(out)]) == 0
    return json.loads(out.read_text(encoding="utf-8"))


def test_ranking_answers_written_as_option_lines(tmp_path: Path) -> None:
    rows = [{"prompt": RANK_PROMPT, "label": "A > C > B > D", "predict": "A. 跑鞋\nC. 运动袜\nB. 瑜伽垫\nD. 保温杯"},
            {"prompt": RANK_PROMPT, "label": "A, C, B, D", "predict": "排序：\n1. A\n2. C\n3. D\n4. B"},
            {"prompt": RANK_PROMPT, "label": "A > C > B > D", "predict": "跑鞋、运动袜、瑜伽垫、保温杯"},
            {"prompt": RANK_PROMPT, "label": "ACBD", "predict": "我不确定"}]
    summary = scores(tmp_path, rows, "--type", "ranking", "--extractor", "letter_list", "--metrics", "ndcg@4,mrr")
    metrics = summary["metrics"]
    # rows 0 and 2 are in the ideal order, row 1 swaps the last two, row 3 lists nothing (0, and unextracted)
    swapped = (4 + 3 / 1.5849625 + 1 / 2 + 2 / 2.3219281) / (4 + 3 / 1.5849625 + 2 / 2 + 1 / 2.3219281)
    assert metrics["ndcg@4"] == pytest.approx((1 + swapped + 1 + 0) / 4, abs=1e-4)
    assert metrics["mrr"] == pytest.approx(0.75)
    assert summary["unextracted_ids"] == ["3"]


def test_retrieval_hits_at_3_counts_the_relevant_letters(tmp_path: Path) -> None:
    rows = [{"prompt": RETRIEVE_PROMPT, "label": "A, B, F", "predict": "A. 帐篷\nB. 睡袋\nF. 防潮垫"},
            {"prompt": RETRIEVE_PROMPT, "label": "A, B, F", "predict": "我会选 D、A 和 C"},
            {"prompt": RETRIEVE_PROMPT, "label": "A, B, F", "predict": "1. 头灯\n2. 领带\n3. 口红"}]
    summary = scores(tmp_path, rows, "--type", "retrieval", "--extractor", "letter_list", "--metrics", "hits@3,hit@3")
    assert summary["metrics"] == {"hits@3": pytest.approx(4 / 3, abs=1e-4), "hit@3": pytest.approx(2 / 3, abs=1e-4)}


def test_choice_with_several_answers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [{"prompt": RETRIEVE_PROMPT, "label": "A, B, F", "predict": "答案：A, B, F"},
            {"prompt": RETRIEVE_PROMPT, "label": "ABF", "predict": "A. 帐篷\nB. 睡袋\nF. 防潮垫"},
            {"prompt": RETRIEVE_PROMPT, "label": "A、B、F", "predict": "The answer is F, B and A"},
            {"prompt": RETRIEVE_PROMPT, "label": "A, B, F", "predict": "A, B"}]
    spec = '{"name": "choice", "letters": "ABCDEF", "multiple": true}'
    summary = scores(tmp_path, rows, "--type", "choice", "--extractor", spec)
    assert summary["metrics"] == {"accuracy": 75.0}
    assert "accuracy: 75.0000" in capsys.readouterr().out


def test_letter_references_with_the_default_extractor_get_a_hint(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    rows = [{"prompt": RANK_PROMPT, "label": "A\nC\nB\nD", "predict": "A. 跑鞋\nC. 运动袜\nB. 瑜伽垫\nD. 保温杯"}]
    summary = scores(tmp_path, rows, "--type", "ranking", "--metrics", "ndcg@4")
    assert summary["metrics"]["ndcg@4"] == 0.0
    assert "set extractor: letter_list" in summary["hint"] and "set extractor: letter_list" in capsys.readouterr().out
    letters = scores(tmp_path, rows, "--type", "ranking", "--metrics", "ndcg@4", "--extractor", "letter_list")
    assert letters["metrics"]["ndcg@4"] == 1.0 and "hint" not in letters
