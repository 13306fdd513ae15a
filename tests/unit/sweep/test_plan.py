"""The sweep section and flags: validated into a plan, every problem named by its key; the training config is the
rest of the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from tunelab.config.errors import ConfigError
from tunelab.sweep.plan import load_plan

BASE = "model_name_or_path: tiny\ndataset: demo\noutput_dir: {out}\nval_size: 0.1\n"


def write(tmp_path: Path, sweep: str, extra: str = "") -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(BASE.format(out=tmp_path / "sw") + extra + sweep, encoding="utf-8")
    return path


def problems(path: Path | None, flags: dict[str, object] | None = None, overrides: list[str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_plan(path, overrides or [], flags or {})
    return [str(p) for p in caught.value.problems]


def test_a_grid_section(tmp_path: Path) -> None:
    plan = load_plan(write(tmp_path, "sweep:\n  grid:\n    learning_rate: [1e-4, 3e-4]\n    finetuning_type: "
                                     "lora,full\n"), [], {})
    assert plan.varied == ["learning_rate", "finetuning_type"] and plan.sampler == "grid"
    assert plan.combinations() == [{"learning_rate": 1e-4, "finetuning_type": "lora"},
                                   {"learning_rate": 1e-4, "finetuning_type": "full"},
                                   {"learning_rate": 3e-4, "finetuning_type": "lora"},
                                   {"learning_rate": 3e-4, "finetuning_type": "full"}]
    assert plan.metric == "eval_loss" and plan.direction == "minimize" and plan.pruner == "none"
    assert plan.folder == tmp_path / "sw" and plan.storage_url() == f"sqlite:///{tmp_path / 'sw' / 'sweep.db'}"
    assert "sweep" not in plan.base and plan.base["dataset"] == "demo"
    flat = plan.trial_flat({"learning_rate": 1e-4, "finetuning_type": "full"}, plan.folder / "lr1e-4_full")
    assert flat["output_dir"] == str(plan.folder / "lr1e-4_full") and flat["overwrite_output_dir"] is False
    assert flat["finetuning_type"] == "full"


def test_flags_add_to_the_section(tmp_path: Path) -> None:
    path = write(tmp_path, "sweep:\n  grid:\n    learning_rate: [1e-4]\n  metric: eval_loss\n")
    plan = load_plan(path, ["num_train_epochs=2"], {"grid": {"lora_rank": "4,8", "learning_rate": "1e-3,2e-3"},
                                                    "parallel": 2})
    assert plan.grid == {"learning_rate": [1e-3, 2e-3], "lora_rank": [4, 8]} and plan.parallel == 2
    assert plan.base["num_train_epochs"] == 2


def test_a_search(tmp_path: Path) -> None:
    plan = load_plan(write(tmp_path, ""), [], {"search": "optuna", "trials": 20, "params": {
        "learning_rate": "log:1e-5:1e-3", "lora_rank": "int:4:64"}})
    assert plan.sampler == "tpe" and plan.trials == 20 and plan.pruner == "median"
    assert plan.params["learning_rate"].kind == "log"


def test_every_problem_is_named_by_its_key(tmp_path: Path) -> None:
    path = write(tmp_path, "sweep:\n  grid:\n    learning_rat: [1e-4, 3e-4]\n    output_dir: [a, b]\n"
                           "  params:\n    lora_rank: int:4\n  sampler: anneal\n  metrik: x\n")
    found = problems(path)
    assert "sweep.sampler: input should be 'grid', 'random' or 'tpe' (got 'anneal')" in found
    assert any(p.startswith("sweep.metrik: extra inputs are not permitted") for p in found)
    path = write(tmp_path, "sweep:\n  grid:\n    learning_rat: [1e-4, 3e-4]\n    output_dir: [a, b]\n"
                           "  params:\n    lora_rank: int:4\n")
    found = problems(path)
    assert "sweep.grid.learning_rat: not a config key; did you mean learning_rate?" in found
    assert "sweep.grid.output_dir: set by the sweep for every trial; it cannot vary" in found
    assert any(p.startswith("sweep.params.lora_rank: 'int:4': int ranges need LOW:HIGH") for p in found)
    assert any(p.startswith("sweep.params: ranges are searched: add search: optuna") for p in found)


def test_combinations_that_make_no_sense(tmp_path: Path) -> None:
    assert problems(write(tmp_path, "sweep: {}\n"))[0].startswith("sweep: nothing varies")
    found = problems(write(tmp_path, ""), {"search": "optuna", "sampler": "grid", "params": {
        "learning_rate": "log:1e-5:1e-3"}})
    assert found == ["sweep.params.learning_rate: log ranges cannot be a grid; use sampler tpe or random, or list "
                     "values under grid"]
    found = problems(write(tmp_path, ""), {"grid": {"lora_rank": "4,8"}, "trials": 3})
    assert found[0].startswith("sweep.trials: a grid runs every combination")
    found = problems(write(tmp_path, "", "eval_tasks:\n  - {name: length, type: length, dataset: d}\n"),
                     {"grid": {"lora_rank": "4,8"}, "metric": "judge:judge-mean"})
    assert found == ["sweep.metric: judge:judge-mean: no eval task named 'judge'; the config's eval_tasks are length"]
    found = problems(write(tmp_path, ""), {"grid": {"lora_rank": "4,8"}, "metric": "accuracy"})
    assert found[0].startswith("sweep.metric: 'accuracy': use eval_loss")
    found = problems(write(tmp_path, ""), {"grid": {"lora_rank": "4,8"}, "pruner": "median", "metric": "x:y"})
    assert "sweep.pruner: pruning reads the eval loss logged during training; it needs metric: eval_loss" in found


def test_the_objective_direction_follows_the_metric(tmp_path: Path) -> None:
    extra = ("eval_tasks:\n  - {name: length, type: length, dataset: d, target_field: n}\n"
             "  - {name: answers, type: generation, dataset: d}\n")
    plan = load_plan(write(tmp_path, "", extra), [], {"grid": {"lora_rank": "4,8"}, "metric": "length:mae"})
    assert plan.direction == "minimize" and plan.task_metric == ("length", "mae")
    plan = load_plan(write(tmp_path, "", extra), [], {"grid": {"lora_rank": "4,8"}, "metric": "answers:rouge-l"})
    assert plan.direction == "maximize"


def test_an_eval_loss_needs_an_eval_set_and_the_sweep_a_folder(tmp_path: Path) -> None:
    path = tmp_path / "bare.yaml"
    path.write_text("model_name_or_path: tiny\ndataset: demo\nsweep: {grid: {lora_rank: [4, 8]}}\n")
    assert problems(path)[0].startswith("output_dir: the sweep folder: set it")
    found = problems(path, overrides=[f"output_dir={tmp_path}"])
    assert found == ["sweep.metric: eval_loss needs an eval set: set val_size or eval_dataset in the config, or use "
                     "TASK:METRIC of eval_tasks"]


def test_a_bad_combination_becomes_a_failed_trial_but_a_bad_base_stops(tmp_path: Path) -> None:
    plan = load_plan(write(tmp_path, ""), [], {"grid": {"lora_rank": "4,0"}})  # rank 0 is invalid: that trial fails
    assert len(plan.combinations()) == 2
    found = problems(write(tmp_path, "", "learning_rat: 1\n"), {"grid": {"lora_rank": "4,8"}})
    assert found == ["learning_rat: unknown key; did you mean learning_rate?"]


def test_the_trials_eval_config_and_objective_are_checked_before_anything_runs(tmp_path: Path) -> None:
    tasks = "eval_tasks:\n  - {name: length, type: length, dataset: d, target_field: n, metrics: [maae]}\n"
    found = problems(write(tmp_path, "", tasks), {"grid": {"lora_rank": "4,8"}, "metric": "length:mae"})
    assert found[0].startswith("eval_tasks[0] (length).metrics: 'maae' does not fit a length task")
    tasks = "eval_tasks:\n  - {name: length, type: length, dataset: d, target_field: n, tolerance: [5]}\n"
    found = problems(write(tmp_path, "", tasks), {"grid": {"lora_rank": "4,8"}, "metric": "length:accuracy"})
    assert found == ["sweep.metric: length:accuracy: a length task gives mae, mre, bias, within (within@k for each "
                     "tolerance), within@K"]
    plan = load_plan(write(tmp_path, "", tasks), [], {"grid": {"lora_rank": "4,8"}, "metric": "length:within@5",
                                                      "direction": "maximize"})
    assert plan.direction == "maximize"


def test_training_a_sweep_file_says_to_run_it_with_tunelab_sweep(tmp_path: Path) -> None:
    from tunelab.config.load import load_config

    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, "sweep: {grid: {lora_rank: [4, 8]}}\n"))
    assert [str(p) for p in caught.value.problems] == [
        "sweep: the sweep section is read by `tunelab sweep`; run tunelab sweep with this file, or remove the section "
        "to train once"]


def test_a_storage_url_without_its_driver_says_what_to_install(tmp_path: Path, monkeypatch, capsys) -> None:
    import sys

    from tunelab.interfaces.cli import main

    monkeypatch.setitem(sys.modules, "psycopg", None)  # absent even where installed: `import psycopg` fails
    monkeypatch.setitem(sys.modules, "psycopg2", None)
    grid = {"grid": {"learning_rate": "1e-4,3e-4"}}
    assert problems(write(tmp_path, ""), {**grid, "storage": "postgresql+psycopg://me:secret@db/sweeps"}) == [
        "sweep.storage: postgresql+psycopg://me:***@db/sweeps: its database driver is not installed (no module "
        "psycopg); pip install 'tunelab[postgres]'"]
    assert problems(write(tmp_path, ""), {**grid, "storage": "postgresql+psycopg2://db/sweeps"})[0].endswith(
        "install psycopg2, or pip install 'tunelab[postgres]' and write the URL as postgresql+psycopg://...")
    assert problems(write(tmp_path, ""), {**grid, "storage": "postgres://db/sweeps"}) == [
        "sweep.storage: postgres://: not a database SQLAlchemy knows; write sqlite:///PATH/sweep.db or "
        "postgresql://USER@HOST/DB"]
    assert problems(write(tmp_path, ""), {**grid, "storage": "sweeps.db"})[0].startswith(
        "sweep.storage: not a database URL; write sqlite:///PATH/sweep.db")
    assert load_plan(write(tmp_path, ""), [], {**grid, "storage": f"sqlite:///{tmp_path / 'x.db'}"}).storage
    assert main(["sweep", str(write(tmp_path, "")), "--grid", "learning_rate=1e-4,3e-4", "--storage",
                 "postgresql://db/sweeps"]) == 2
    err = capsys.readouterr().err
    assert "sweep.storage: postgresql://db/sweeps: its database driver is not installed" in err
    assert "pip install 'tunelab[postgres]'" in err and "Traceback" not in err
