"""tunelab tokenizes SFT data exactly as LLaMA-Factory 0.9.5 does, for all 25 named templates and model-own templates.

The golden files in tests/fixtures/templates/golden/ come from LLaMA-Factory's real pipeline
(tools/lf_template_golden.py, run in a venv with LLaMA-Factory); each case names a template (None: the tokenizer's
own Jinja template), a tokenizer folder, a dataset of tests/fixtures/templates/data/ and the data options.
"""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from tunelab.config.schema import DataSection
from tunelab.data.errors import DataError
from tunelab.data.pipeline import build_data
from tunelab.model.load import load_tokenizer

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "templates"
GOLDEN_FILES = sorted((FIXTURES / "golden").glob("*.json"))
TEMPLATE_NAMES = {
    "default", "empty", "fewshot", "alpaca", "vicuna", "zephyr", "chatml", "qwen", "qwen3", "qwen3_nothink", "llama2",
    "llama3", "mistral", "gemma", "gemma3", "glm4", "chatglm3", "yi", "deepseek", "deepseek3", "smollm", "smollm2",
    "phi", "phi4", "intern2",
}
JINJA_TOKENIZERS = {"jinja_smollm2", "jinja_qwen3"}


def _load_cases() -> list[dict[str, Any]]:
    """Every recorded case, with the golden file's date."""
    cases = []
    for path in GOLDEN_FILES:
        payload = json.loads(path.read_text(encoding="utf-8"))
        cases += [{**item, "date": payload["date"]} for item in payload["cases"]]
    return cases


CASES = _load_cases()
TOKENIZED = [c for c in CASES if "error" not in c["result"] and not c["result"]["dropped_rows"]
             and not c.get("tunelab_strict_rows")]
REJECTED = [c for c in CASES if "error" in c["result"]]
# Rows LLaMA-Factory drops silently, or trains on although tunelab's strict mode rejects them (empty answers).
DROPPED = [{**c, "bad_rows": c["result"]["dropped_rows"], "kept": c["result"]["rows"]}
           for c in CASES if "error" not in c["result"] and c["result"]["dropped_rows"]]
DROPPED += [{**c, "bad_rows": c["tunelab_strict_rows"],
             "kept": [r for i, r in enumerate(c["result"]["rows"]) if i not in c["tunelab_strict_rows"]]}
            for c in CASES if c.get("tunelab_strict_rows")]
# One per (template, tokenizer): the special tokens after LLaMA-Factory's fixes do not depend on the data.
SPECIAL = list({(c["template"], c["tokenizer"]): c for c in TOKENIZED}.values())


def _ids(cases: list[dict[str, Any]]) -> list[str]:
    return [c["id"] for c in cases]


@pytest.fixture(autouse=True)
def golden_date(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pin llama3's 'Today Date' tool-prompt line to the date the golden files were recorded with."""
    import tunelab.text.tool_text as tool_text

    pinned = date.fromisoformat(CASES[0]["date"])

    class PinnedDate(date):
        @classmethod
        def today(cls) -> date:  # noqa: D102
            return pinned

    monkeypatch.setattr(tool_text, "date", PinnedDate, raising=False)


def _tokenizer(case: dict[str, Any]) -> Any:
    """The case's fixture tokenizer, loaded the way training loads it."""
    return load_tokenizer(FIXTURES / "tokenizers" / case["tokenizer"], template=case["template"])


def _section(case: dict[str, Any], **extra: Any) -> DataSection:
    """The data section LLaMA-Factory's DataArguments were built from."""
    return DataSection(dataset=case["dataset"], dataset_dir=str(FIXTURES / "data"), template=case["template"],
                       **case["options"], **extra)


def _first_difference(ours: list[int], theirs: list[int]) -> int:
    """Index of the first differing token (the shorter length when one is a prefix of the other)."""
    for index, (a, b) in enumerate(zip(ours, theirs)):
        if a != b:
            return index
    return min(len(ours), len(theirs))


def _explain(tokenizer: Any, what: str, row: int, ours: list[int], theirs: list[int]) -> str:
    """A readable mismatch: where the sequences part, and the tokens around that place."""
    at = _first_difference(ours, theirs)
    lo, hi = max(at - 6, 0), at + 6

    def window(ids: list[int]) -> str:
        tokens = [tokenizer.convert_ids_to_tokens(i) if i >= 0 else "-100" for i in ids[lo:hi]]
        return f"{ids[lo:hi]} {tokens}"

    return (f"row {row} {what} differ at position {at} (lengths: tunelab {len(ours)}, LLaMA-Factory {len(theirs)})\n"
            f"  tunelab:       {window(ours)}\n  LLaMA-Factory: {window(theirs)}")


def _assert_rows(tokenizer: Any, train: Any, expected: list[dict[str, list[int]]]) -> None:
    """Same number of rows, and each row's input_ids and labels equal LLaMA-Factory's."""
    assert len(train) == len(expected), f"{len(train)} rows, LLaMA-Factory has {len(expected)}"
    for row, (ids, labels, golden) in enumerate(zip(train["input_ids"], train["labels"], expected)):
        ids, labels = list(ids), list(labels)
        assert ids == golden["input_ids"], _explain(tokenizer, "input_ids", row, ids, golden["input_ids"])
        assert labels == golden["labels"], _explain(tokenizer, "labels", row, labels, golden["labels"])


@pytest.mark.parametrize("case", TOKENIZED, ids=_ids(TOKENIZED))
def test_tokens_match_llamafactory(case: dict[str, Any]) -> None:
    tokenizer = _tokenizer(case)
    bundle = build_data(_section(case), tokenizer, seed=42)
    _assert_rows(tokenizer, bundle.train, case["result"]["rows"])


@pytest.mark.parametrize("case", SPECIAL, ids=[f"{c['template']}-{c['tokenizer']}" for c in SPECIAL])
def test_special_tokens_match_llamafactory(case: dict[str, Any]) -> None:
    """eos (replaced by the first stop word where the template says so), pad (eos when missing), vocabulary size."""
    tokenizer = _tokenizer(case)
    result = case["result"]
    ours = {"eos": (tokenizer.eos_token, tokenizer.eos_token_id), "pad": (tokenizer.pad_token, tokenizer.pad_token_id),
            "vocab": len(tokenizer)}
    theirs = {"eos": (result["eos_token"], result["eos_token_id"]), "pad": (result["pad_token"],
              result["pad_token_id"]), "vocab": result["vocab_size"]}
    assert ours == theirs


@pytest.mark.parametrize("case", REJECTED, ids=_ids(REJECTED))
def test_rejects_what_llamafactory_rejects(case: dict[str, Any]) -> None:
    with pytest.raises(Exception) as info:  # noqa: PT011 - any error type, as long as it names the problem
        build_data(_section(case), _tokenizer(case), seed=42)
    assert re.search(case["result"]["error_match"], str(info.value), re.IGNORECASE), (
        f"tunelab's error {str(info.value)!r} does not name {case['result']['error_match']!r} "
        f"(LLaMA-Factory: {case['result']['error']})")


@pytest.mark.parametrize("case", DROPPED, ids=_ids(DROPPED))
def test_rows_llamafactory_drops_are_errors(case: dict[str, Any]) -> None:
    """LLaMA-Factory silently drops malformed rows; tunelab (strict) names the first one (0- or 1-based)."""
    with pytest.raises(DataError) as info:
        build_data(_section(case), _tokenizer(case), seed=42)
    first = case["bad_rows"][0]  # 0-based in file order
    assert info.value.row in (first, first + 1), str(info.value)


@pytest.mark.parametrize("case", DROPPED, ids=_ids(DROPPED))
def test_skipping_bad_rows_keeps_what_llamafactory_keeps(case: dict[str, Any]) -> None:
    tokenizer = _tokenizer(case)
    bundle = build_data(_section(case, on_bad_row="skip"), tokenizer, seed=42)
    _assert_rows(tokenizer, bundle.train, case["kept"])


def test_golden_cases_cover_every_template() -> None:
    """All 25 named templates, both model-own Jinja templates, each with tokenized rows and the core options."""
    assert {c["template"] for c in CASES} - {None} == TEMPLATE_NAMES
    assert {c["tokenizer"] for c in CASES if c["template"] is None} == JINJA_TOKENIZERS
    for name in TEMPLATE_NAMES:
        datasets = {c["dataset"] for c in TOKENIZED if c["template"] == name}
        assert {"alpaca_mix", "sharegpt_chat"} <= datasets, name
    options = [c["options"] for c in TOKENIZED]
    assert any(o["cutoff_len"] < 100 for o in options)
    assert any(o["train_on_prompt"] for o in options) and any(o["mask_history"] for o in options)
    assert any(o["default_system"] for o in options) and any(o["tool_format"] for o in options)
    assert {o["enable_thinking"] for o in options} == {True, False, None}
    assert REJECTED and DROPPED
