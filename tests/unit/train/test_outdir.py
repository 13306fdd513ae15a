"""output_dir decisions: fresh start, resume of the same run, refusal of a different run, overwrite."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tunelab.config.load import build, dump_yaml
from tunelab.config.schema import ExportSection
from tunelab.train import checkpoints, outdir
from tunelab.train.outdir import RunError, Start, plan_start, prepare


def config(out: Path, **flat: Any) -> Any:
    return build({"model_name_or_path": "tiny", "dataset": "demo", "output_dir": str(out), **flat})


def checkpoint(out: Path, step: int, complete: bool = True, state: str | None = None) -> Path:
    folder = out / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    (folder / "adapter_model.safetensors").write_bytes(b"w")
    if complete:
        for name in ("optimizer.pt", "scheduler.pt"):
            (folder / name).write_bytes(b"x")
        (folder / "trainer_state.json").write_text(state or json.dumps({"global_step": step}))
    return folder


def earlier_run(out: Path, **flat: Any) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(dump_yaml(config(out, **flat)))
    (out / "run.jsonl").write_text("".join(json.dumps({"step": s, "loss": 1.0 / s}) + "\n" for s in range(1, 7)))


def test_a_new_folder_starts_fresh(tmp_path: Path) -> None:
    out = tmp_path / "saves" / "run"
    start = plan_start(config(out))
    assert start == Start()
    prepare(config(out), start, main=True)
    assert out.is_dir()


def test_a_folder_without_a_run_is_used_as_is(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    assert plan_start(config(tmp_path)) == Start()


def test_the_same_run_resumes_from_its_last_complete_checkpoint(tmp_path: Path) -> None:
    earlier_run(tmp_path)
    checkpoint(tmp_path, 2)
    checkpoint(tmp_path, 4)
    checkpoint(tmp_path, 6, complete=False)
    checkpoint(tmp_path, 8, state='{"global_st')  # killed while writing trainer_state.json
    start = plan_start(config(tmp_path, logging_steps=3))  # how a run is watched may change
    assert start.resume == tmp_path / "checkpoint-4" and "unfinished run of this config" in start.note
    done = prepare(config(tmp_path), start, main=True)
    assert done == ["removed checkpoint-6: no trainer_state.json (cut short while being written)",
                    "removed checkpoint-8: trainer_state.json is truncated (cut short while being written)",
                    "run.jsonl: kept the 4 records up to step 4"]
    assert sorted(p.name for p in tmp_path.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    assert [json.loads(line)["step"] for line in (tmp_path / "run.jsonl").read_text().splitlines()] == [1, 2, 3, 4]


def test_other_processes_decide_the_same_but_change_nothing(tmp_path: Path) -> None:
    earlier_run(tmp_path)
    checkpoint(tmp_path, 2)
    checkpoint(tmp_path, 4, complete=False)
    start = plan_start(config(tmp_path))
    assert prepare(config(tmp_path), start, main=False) == []
    assert (tmp_path / "checkpoint-4").exists()


def test_a_different_run_is_refused_naming_the_changes(tmp_path: Path) -> None:
    earlier_run(tmp_path, learning_rate=1e-4)
    checkpoint(tmp_path, 2)
    with pytest.raises(RunError) as excinfo:
        plan_start(config(tmp_path, learning_rate=2e-4, lora_rank=16))
    assert str(excinfo.value) == (
        f"output_dir: {tmp_path} holds a different run (learning_rate: 0.0001 -> 0.0002; lora_rank: 8 -> 16); set "
        "overwrite_output_dir: true to replace it (its files are deleted), or choose another output_dir")
    assert (tmp_path / "checkpoint-2").exists()


def test_a_run_without_its_config_is_refused(tmp_path: Path) -> None:
    (tmp_path / "adapter_model.safetensors").write_bytes(b"w")
    with pytest.raises(RunError, match="already holds a run \\(adapter_model.safetensors\\) whose settings are unknown"):
        plan_start(config(tmp_path))


def test_a_finished_run_is_not_trained_again_silently(tmp_path: Path) -> None:
    earlier_run(tmp_path)
    checkpoint(tmp_path, 2)
    (tmp_path / "train_results.json").write_text("{}")
    with pytest.raises(RunError, match="holds a finished run of this config"):
        plan_start(config(tmp_path))


def test_an_attempt_without_a_complete_checkpoint_starts_again(tmp_path: Path) -> None:
    earlier_run(tmp_path)
    checkpoint(tmp_path, 2, complete=False)
    start = plan_start(config(tmp_path))
    assert start.resume is None and start.clear and "starting again from step 0" in start.note
    prepare(config(tmp_path), start, main=True)
    assert list(tmp_path.iterdir()) == []


def test_overwrite_clears_the_old_run_and_keeps_other_files(tmp_path: Path) -> None:
    earlier_run(tmp_path, learning_rate=1e-4)
    for name in ("adapter_model.safetensors", "training_loss.png"):
        (tmp_path / name).write_text("old")
    checkpoint(tmp_path, 4)
    (tmp_path / "notes.txt").write_text("mine")
    start = plan_start(config(tmp_path, overwrite_output_dir=True, learning_rate=3e-4))
    prepare(config(tmp_path), start, main=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_resume_true_needs_a_complete_checkpoint(tmp_path: Path) -> None:
    earlier_run(tmp_path)
    checkpoint(tmp_path, 3, complete=False)
    with pytest.raises(RunError, match="resume_from_checkpoint: true, but .* holds no complete checkpoint"):
        plan_start(config(tmp_path, resume_from_checkpoint=True))
    checkpoint(tmp_path, 2)
    assert plan_start(config(tmp_path, resume_from_checkpoint="true")).resume == tmp_path / "checkpoint-2"


def test_resume_from_a_named_checkpoint(tmp_path: Path) -> None:
    source = checkpoint(tmp_path / "old", 5)
    out = tmp_path / "new"
    assert plan_start(config(out, resume_from_checkpoint=str(source))).resume == source
    (source / "optimizer.pt").unlink()
    with pytest.raises(RunError) as excinfo:
        plan_start(config(out, resume_from_checkpoint=str(source)))
    assert "no optimizer.pt (saved with save_only_model: weights only)" in str(excinfo.value)
    with pytest.raises(RunError, match="is not a checkpoint-N folder"):
        plan_start(config(out, resume_from_checkpoint=str(tmp_path)))


def test_a_checkpoint_state_for_another_step_is_incomplete(tmp_path: Path) -> None:
    folder = checkpoint(tmp_path, 4, state=json.dumps({"global_step": 3}))
    assert checkpoints.inspect(folder, 4).problem == "trainer_state.json is for step 3, not 4"


def test_an_output_dir_that_is_a_file_is_a_run_error(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("x")
    with pytest.raises(RunError, match="output_dir"):
        plan_start(config(path))


def test_ignored_keys_are_real_keys() -> None:
    from tunelab.config.schema import key_owners

    assert outdir.SAME_RUN_IGNORES <= set(key_owners())


def test_export_keys_do_not_change_a_run(tmp_path: Path) -> None:
    """A run saved before the export section existed (or with other export keys) is the same run."""
    config = build({"model_name_or_path": "tiny", "dataset": "demo", "output_dir": str(tmp_path)})
    saved = {k: v for k, v in config.flat().items() if k not in ExportSection.model_fields and k != "infer_dtype"}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(saved))
    changed = build({"model_name_or_path": "tiny", "dataset": "demo", "output_dir": str(tmp_path),
                     "export_dir": "exports/x", "export_format": "gguf", "infer_dtype": "bfloat16"})
    assert outdir.config_changes(tmp_path, changed) == []
