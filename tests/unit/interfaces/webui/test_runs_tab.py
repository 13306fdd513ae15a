"""The Runs tab's index and comparison, on run folders written as `tunelab train` writes them."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tunelab.interfaces.webui.tabs.runs import compare, index_table
from tunelab.interfaces.webui.train_actions import progress


def fake_run(folder: Path, lr: float, losses: list[float], finished: bool = True) -> None:
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump({"stage": "sft", "finetuning_type": "lora",
                                                        "dataset": "identity", "learning_rate": lr}))
    lines = [json.dumps({"step": i + 1, "max_steps": len(losses), "loss": loss, "elapsed_s": i + 1.0})
             for i, loss in enumerate(losses)]
    (folder / "run.jsonl").write_text("\n".join(lines) + "\n")
    if finished:
        (folder / "run_summary.json").write_text(json.dumps({"steps": len(losses), "final_train_loss": losses[-1],
                                                             "wall_time_s": 12.0}))


def test_index_and_compare(tmp_path: Path) -> None:
    fake_run(tmp_path / "a", 1e-3, [2.0, 1.5, 1.0])
    fake_run(tmp_path / "b" / "c", 1e-4, [2.0, 1.9], finished=False)
    frame, labels = index_table(tmp_path)
    assert sorted(labels) == ["a", "b/c"]
    row = frame.set_index("run").loc["a"]
    assert row["method"] == "sft lora" and row["train_loss"] == 1.0 and row["status"] == "finished"
    rows, curves = compare(tmp_path, ["a", "b/c"])
    assert list(rows["run"]) == ["a", "b/c"] and list(rows["learning_rate"]) == [1e-3, 1e-4]
    assert len(curves) == 5 and set(curves["run"]) == {"a", "b/c"}


def test_progress_of_a_run_not_started_from_the_ui(tmp_path: Path) -> None:
    fake_run(tmp_path / "a", 1e-3, [2.0, 1.5, 1.0])
    shown = progress(tmp_path / "a", None)
    assert (shown.state, shown.step, shown.max_steps) == ("finished", 3, 3)
    assert shown.train == [(1, 2.0), (2, 1.5), (3, 1.0)]
    assert progress(tmp_path / "none", None).state == "idle"
