"""Predictions files (tunelab's or LLaMA-Factory's generated_predictions.jsonl) read and matched to a dataset."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from tunelab.eval.errors import EvalError
from tunelab.eval.results import Answer

PredictionRow = dict[str, object]  # one line of a generated_predictions.jsonl


def read_predictions(path: str | Path) -> list[PredictionRow]:
    """Every line of a predictions file; each needs `predict` and `label` (an error names the line)."""
    path = Path(path)
    if not path.is_file():
        raise EvalError(f"{path}: no such file; give a generated_predictions.jsonl")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EvalError(f"{path} line {number}: not JSON ({exc.msg}); each line must be one JSON object "
                            "with predict and label") from None
        missing = [key for key in ("predict", "label") if not isinstance(row, dict) or key not in row]
        if missing:
            raise EvalError(f"{path} line {number}: no {' or '.join(missing)} field; a predictions file has "
                            "`predict` (the model's answer) and `label` (the reference) on every line")
        rows.append(row)
    if not rows:
        raise EvalError(f"{path}: empty; nothing to score")
    return rows


def file_answers(rows: Sequence[PredictionRow]) -> list[Answer]:
    """Answers straight from a file: ids from the file, else line numbers."""
    return [Answer(id=str(row.get("id", index)), prompt=str(row.get("prompt", "")), label=str(row["label"]),
                   predict=str(row["predict"])) for index, row in enumerate(rows)]


def same_text(a: str, b: str) -> bool:
    """Equal up to whitespace (LLaMA-Factory decodes labels from tokens, which may respace them)."""
    return a.split() == b.split()


def match_to_dataset(rows: Sequence[PredictionRow], expected: Sequence[Answer],
                     path: str | Path) -> list[Answer]:
    """The file's answers in dataset order; a file from another dataset (ids or labels differ) is an EvalError."""
    if all("id" in row for row in rows):
        return match_by_id(rows, expected, path)
    if len(rows) != len(expected):
        raise EvalError(f"{path}: {len(rows)} lines but the dataset has {len(expected)} rows; this predictions file "
                        "was made from other data (or with another max_samples)")
    for number, (row, want) in enumerate(zip(rows, expected), start=1):
        if not same_text(str(row["label"]), want.label):
            raise EvalError(f"{path} line {number}: label {str(row['label'])[:60]!r} differs from the dataset's "
                            f"reference {want.label[:60]!r} (row {want.id}); this predictions file is not from this dataset")
    return [Answer(id=w.id, prompt=str(r.get("prompt", w.prompt)), label=w.label, predict=str(r["predict"]))
            for r, w in zip(rows, expected)]


def match_by_id(rows: Sequence[PredictionRow], expected: Sequence[Answer],
                path: str | Path) -> list[Answer]:
    """Match tunelab predictions to dataset rows by id; unknown or missing ids are errors."""
    by_id = {str(row["id"]): row for row in rows}
    known = {want.id for want in expected}
    unknown = [i for i in by_id if i not in known]
    if unknown:
        raise EvalError(f"{path}: ids {', '.join(unknown[:5])}{' ...' if len(unknown) > 5 else ''} are not rows of "
                        "this task's dataset; this predictions file is from other data")
    missing = [w.id for w in expected if w.id not in by_id]
    if missing:
        raise EvalError(f"{path}: no answer for {len(missing)} of {len(expected)} rows (first: {missing[0]}); "
                        "finish it with `tunelab predict` or drop the task's predictions key to generate")
    return [Answer(id=w.id, prompt=str(by_id[w.id].get("prompt", w.prompt)), label=w.label,
                   predict=str(by_id[w.id]["predict"])) for w in expected]
