"""tunelab encodes preference pairs (rm, dpo), KTO examples with their KL partners (kto) and prompts (ppo, grpo)
exactly as LLaMA-Factory 0.9.5 does, column by column and row by row.

The golden file tests/fixtures/pref_golden/golden.json comes from LLaMA-Factory's real pipeline
(tools/lf_pref_golden.py, run in a venv with LLaMA-Factory): each case names LLaMA-Factory's stage, a template (None:
the tokenizer's own Jinja template), a tokenizer folder of tests/fixtures/templates/tokenizers, a dataset of
tests/fixtures/pref_golden/data and the data options.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from tunelab.config.schema import DataSection
from tunelab.data.kinds import kind_of
from tunelab.data.pipeline import build_data
from tunelab.model.load import load_tokenizer

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
GOLDEN = json.loads((FIXTURES / "pref_golden" / "golden.json").read_text(encoding="utf-8"))
CASES = GOLDEN["cases"]
# LLaMA-Factory reads dpo data as rm (its DPO workflow calls get_dataset with stage "rm"), grpo's prompts as ppo's
OUR_STAGES = {"rm": ("rm", "dpo"), "kto": ("kto",), "ppo": ("ppo", "grpo")}
STAGED = [(case, stage) for case in CASES for stage in OUR_STAGES[case["stage"]]]


@pytest.fixture(autouse=True)
def golden_date(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pin llama3's 'Today Date' tool-prompt line to the date the golden file was recorded with."""
    import tunelab.text.tool_text as tool_text

    pinned = date.fromisoformat(GOLDEN["date"])

    class PinnedDate(date):
        @classmethod
        def today(cls) -> date:  # noqa: D102
            return pinned

    monkeypatch.setattr(tool_text, "date", PinnedDate, raising=False)


def _tokenizer(case: dict[str, Any]) -> Any:
    """The case's fixture tokenizer, loaded the way training loads it."""
    return load_tokenizer(FIXTURES / "templates" / "tokenizers" / case["tokenizer"], template=case["template"])


def _section(case: dict[str, Any]) -> DataSection:
    """The data section LLaMA-Factory's DataArguments were built from."""
    return DataSection(dataset=case["dataset"], dataset_dir=str(FIXTURES / "pref_golden" / "data"),
                       template=case["template"], **case["options"])


def _explain(tokenizer: Any, column: str, row: int, ours: list[int], theirs: list[int]) -> str:
    """Where a column of a row parts from LLaMA-Factory's, with the tokens around that place."""
    at = next((i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b), min(len(ours), len(theirs)))
    lo, hi = max(at - 6, 0), at + 6

    def window(ids: list[int]) -> str:
        return f"{ids[lo:hi]} {[tokenizer.convert_ids_to_tokens(i) if i >= 0 else '-100' for i in ids[lo:hi]]}"

    return (f"row {row} {column} differ at position {at} (lengths: tunelab {len(ours)}, LLaMA-Factory "
            f"{len(theirs)})\n  tunelab:       {window(ours)}\n  LLaMA-Factory: {window(theirs)}")


@pytest.mark.parametrize(("case", "stage"), STAGED, ids=[f"{stage}:{case['id']}" for case, stage in STAGED])
def test_columns_match_llamafactory(case: dict[str, Any], stage: str) -> None:
    tokenizer = _tokenizer(case)
    train = build_data(_section(case), tokenizer, seed=42, stage=stage).train
    expected = case["result"]["rows"]
    assert train.column_names == list(kind_of(stage).columns) == list(expected[0])
    assert len(train) == len(expected), f"{len(train)} rows, LLaMA-Factory has {len(expected)}"
    for index, golden in enumerate(expected):
        row = train[index]
        for column, theirs in golden.items():
            ours = row[column] if isinstance(theirs, bool) else list(row[column])
            assert ours == theirs, _explain(tokenizer, column, index, ours, theirs) if isinstance(
                theirs, list) else f"row {index} {column}: tunelab {ours}, LLaMA-Factory {theirs}"


def test_the_cases_cover_what_the_issue_asks() -> None:
    """Every stage on smollm2, qwen, llama3 and the model's own Jinja template; both formats of pairs; KTO over
    several preprocessing batches; pairs and prompts cut by the cutoff rule; prompts with and without answers."""
    assert {(c["stage"], c["template"]) for c in CASES} >= {
        (stage, template) for stage in OUR_STAGES for template in ("smollm2", "qwen", "llama3", None)}
    datasets = {c["dataset"] for c in CASES}
    assert {"alpaca_pairs", "sharegpt_pairs", "sharegpt_tool_pairs", "kto_alpaca", "kto_sharegpt", "prompts"} <= \
        datasets
    assert {c["template"] for c in CASES} >= {"glm4", "qwen3"}  # one EOS per answer (efficient_eos); thoughts
    assert any(c["stage"] == "kto" and c["options"]["preprocessing_batch_size"] < len(c["result"]["rows"])
               for c in CASES)
    cut = [c for c in CASES if any(len(r[next(iter(r))]) == c["options"]["cutoff_len"] for r in c["result"]["rows"])]
    assert {c["stage"] for c in cut} >= {"rm", "kto"}
    prompts = next(c for c in CASES if c["stage"] == "ppo" and c["dataset"] == "prompts")
    empty_answer = prompts["result"]["rows"][1]["labels"]  # row 2 has no reference answer: its labels are the end
    assert 0 < len(empty_answer) < len(prompts["result"]["rows"][0]["labels"])
