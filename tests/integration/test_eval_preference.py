"""The preference eval kind on the real SmolLM2: a short DPO LoRA run on identity pairs raises the share of
held-out pairs where the model prefers the chosen answer, base vs tuned in one `tunelab eval --compare`."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import write_dataset

from .clirun import REPO, tunelab

RANKING = {"ranking": True, "columns": {"prompt": "instruction", "query": "input", "chosen": "chosen",
                                        "rejected": "rejected"}}
HELD_OUT = 8


def split_pairs(data: Path) -> None:
    """preference_demo cut in two: the last HELD_OUT pairs are never trained on; they take its name, so the example
    eval config (task dataset preference_demo) scores them."""
    rows = json.loads((REPO / "examples" / "data" / "preference_demo.json").read_text(encoding="utf-8"))
    write_dataset(data, rows[:-HELD_OUT], name="pairs_train", file_name="train.json", entry=RANKING)
    write_dataset(data, rows[-HELD_OUT:], name="preference_demo", file_name="heldout.json", entry=RANKING)


def test_dpo_raises_the_held_out_preference_share(tmp_path: Path) -> None:
    data, run, out = tmp_path / "data", tmp_path / "dpo", tmp_path / "eval"
    split_pairs(data)
    trained = tunelab("train", "examples/dpo_lora.yaml", f"dataset_dir={data}", "dataset=pairs_train",
                      f"output_dir={run}", "max_steps=8", "per_device_train_batch_size=4",
                      "gradient_accumulation_steps=1", "learning_rate=1e-3", "warmup_ratio=0", "val_size=0",
                      "eval_strategy=no", "cutoff_len=256")
    assert trained.returncode == 0, trained.stderr[-3000:]
    result = tunelab("eval", "examples/eval_preference.yaml", "--compare", f"adapter_name_or_path={run}",
                     f"dataset_dir={data}", f"output_dir={out}", "cutoff_len=256")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "eval_results.json").read_text(encoding="utf-8"))["results"]
    base, tuned = summary["base"]["prefs"], summary["fine-tuned"]["prefs"]
    assert base["scored"] == tuned["scored"] == HELD_OUT
    # base SmolLM2 does not call itself the tunelab assistant; eight DPO steps teach it to. The summed share stays
    # below the per-token one: the chosen answers are the longer ones (measured: base 0 / 25%, tuned 37.5 / 100%)
    b, t = base["metrics"], tuned["metrics"]
    assert t["accuracy"] > b["accuracy"] and t["margin"] > b["margin"] + 20, (b, t)
    assert b["accuracy_normalised"] <= 50 < 75 <= t["accuracy_normalised"], (b, t)
    assert t["reward_accuracy"] > 50 and t["reward_margin"] > 0 and "reward_accuracy" not in b
    assert (out / "prefs_margins.png").stat().st_size > 10_000
    table = (out / "eval_results.md").read_text(encoding="utf-8")
    assert "| base |" in table and "| fine-tuned |" in table
