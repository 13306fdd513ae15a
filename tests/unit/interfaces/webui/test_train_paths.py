"""Paths from the form: relative ones stay inside the working folder, absolute ones are taken as typed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tunelab.config.errors import ConfigError
from tunelab.interfaces.webui.safe_paths import check_config_paths, checked_path
from tunelab.interfaces.webui.top_config import adapter_list, run_folder


def test_relative_paths_cannot_leave_the_working_folder(tmp_path: Path) -> None:
    assert checked_path("output_dir", "saves/a", tmp_path) == tmp_path.resolve() / "saves" / "a"
    with pytest.raises(ConfigError, match="output_dir: ../../etc leads outside the working folder"):
        checked_path("output_dir", "../../etc", tmp_path)
    with pytest.raises(ConfigError, match="output_dir: saves/../../x leads outside"):
        checked_path("output_dir", "saves/../../x", tmp_path)


def test_absolute_paths_are_taken_as_typed_and_must_exist_where_read(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    assert checked_path("output_dir", str(outside), tmp_path / "work") == outside
    with pytest.raises(ConfigError, match="dataset_dir: .* does not exist"):
        checked_path("dataset_dir", str(outside), tmp_path, must_exist=True)


def test_config_paths_are_checked_together(tmp_path: Path) -> None:
    flat = {"dataset_dir": "nope", "output_dir": "../out", "adapter_name_or_path": "a,../b",
            "model_name_or_path": "./no-model", "resume_from_checkpoint": "true"}
    with pytest.raises(ConfigError) as caught:
        check_config_paths(flat, tmp_path)
    keys = [problem.key for problem in caught.value.problems]
    assert keys == ["adapter_name_or_path", "adapter_name_or_path", "dataset_dir", "output_dir",
                    "model_name_or_path"]
    check_config_paths({"model_name_or_path": "smollm2-135m-instruct", "output_dir": "saves/x"}, tmp_path)
    check_config_paths({"model_name_or_path": "org/hub-model"}, tmp_path)  # a hub id, not a path


def test_the_top_bars_run_folder_and_adapters_follow_the_same_rule(tmp_path: Path) -> None:
    run = tmp_path / "saves" / "r1"
    run.mkdir(parents=True)
    (run / "adapter_config.json").write_text("{}", encoding="utf-8")
    assert run_folder("saves/r1", required=True, workdir=tmp_path) == run.resolve()
    assert run_folder(" ", required=False, workdir=tmp_path) is None
    with pytest.raises(ConfigError, match="output_dir: ../.. leads outside the working folder"):
        run_folder("../..", required=True, workdir=tmp_path)
    with pytest.raises(ConfigError, match="output_dir: saves/r1/adapter_config.json: no such folder"):
        run_folder("saves/r1/adapter_config.json", required=True, workdir=tmp_path)
    assert adapter_list(run, "saves/r1", tmp_path) == f"{run},{run.resolve()}"
    with pytest.raises(ConfigError, match="adapter_name_or_path: ../elsewhere leads outside"):
        adapter_list(run, "saves/r1, ../elsewhere", tmp_path)
    with pytest.raises(ConfigError, match="adapter_name_or_path: saves/none: no such folder"):
        adapter_list(None, "saves/none", tmp_path)
