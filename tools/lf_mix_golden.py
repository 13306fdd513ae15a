"""Record how LLaMA-Factory 0.9.5 mixes and splits datasets: tests/fixtures/mix_split_golden.json.

Run with the Python of a venv where LLaMA-Factory 0.9.5 is installed:

    /path/to/lf-venv/bin/python tools/lf_mix_golden.py

Each case builds small datasets whose rows are (dataset index, row index), runs LLaMA-Factory's own
`merge_dataset` (mix_strategy, interleave_probs, seed) and then its `split_dataset` (val_size), and records the
(dataset, row) order of the train and validation parts. tests/unit/data/test_mix.py checks tunelab's
data/mix.py against every case.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from datasets import Dataset
from llamafactory.data.data_utils import merge_dataset, split_dataset

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "mix_split_golden.json"

CASES = [
    {"sizes": [7, 5], "mix_strategy": "concat", "probs": None, "seed": 42, "val_size": 0.0},
    {"sizes": [7, 5], "mix_strategy": "interleave_under", "probs": None, "seed": 42, "val_size": 0.0},
    {"sizes": [7, 5], "mix_strategy": "interleave_over", "probs": None, "seed": 42, "val_size": 0.0},
    {"sizes": [30, 10, 20], "mix_strategy": "interleave_under", "probs": [0.5, 0.2, 0.3], "seed": 42, "val_size": 0.0},
    {"sizes": [30, 10, 20], "mix_strategy": "interleave_over", "probs": [0.5, 0.2, 0.3], "seed": 42, "val_size": 0.0},
    {"sizes": [30, 10, 20], "mix_strategy": "interleave_over", "probs": [0.5, 0.2, 0.3], "seed": 7, "val_size": 0.0},
    {"sizes": [100, 3], "mix_strategy": "interleave_under", "probs": [0.9, 0.1], "seed": 1234, "val_size": 0.0},
    {"sizes": [100, 3], "mix_strategy": "interleave_over", "probs": [0.9, 0.1], "seed": 1234, "val_size": 0.1},
    {"sizes": [25], "mix_strategy": "concat", "probs": None, "seed": 42, "val_size": 0.2},
    {"sizes": [25], "mix_strategy": "concat", "probs": None, "seed": 3, "val_size": 4},
    {"sizes": [12, 9], "mix_strategy": "concat", "probs": None, "seed": 42, "val_size": 0.25},
    {"sizes": [12, 9], "mix_strategy": "interleave_under", "probs": None, "seed": 42, "val_size": 3},
    {"sizes": [1001], "mix_strategy": "concat", "probs": None, "seed": 42, "val_size": 0.1},
]


def rows(part: Dataset) -> list[list[int]]:
    return [[row["d"], row["i"]] for row in part]


def run(case: dict) -> dict:
    datasets = [Dataset.from_dict({"d": [d] * n, "i": list(range(n))}) for d, n in enumerate(case["sizes"])]
    args = SimpleNamespace(mix_strategy=case["mix_strategy"], interleave_probs=case["probs"], streaming=False,
                           val_size=case["val_size"], buffer_size=16384)
    merged = merge_dataset(datasets, args, seed=case["seed"])
    train, evaluation = split_dataset(merged, None, args, seed=case["seed"])
    return {**case, "train": rows(train["train"]),
            "validation": rows(evaluation["validation"]) if "validation" in evaluation else []}


def main() -> None:
    OUT.write_text(json.dumps([run(case) for case in CASES]) + "\n", encoding="utf-8")
    print(f"wrote {len(CASES)} cases to {OUT}")


if __name__ == "__main__":
    main()
