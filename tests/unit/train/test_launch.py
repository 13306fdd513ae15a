"""Multi-process launch: the command line, the launch itself (with a fake torchrun), rank-0-only console lines, and
`tunelab train` choosing to launch (the plan itself: tests/unit/config/test_launch_plan.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tunelab.config.launch_plan import Plan, plan_launch
from tunelab.config.schema import LaunchSection
from tunelab.runtime import logging as console_log
from tunelab.train import launch as launcher
from tunelab.train.launch import describe, is_main_process, torchrun_command, worker_environment

LAUNCH_VARIABLES = ("NPROC_PER_NODE", "NNODES", "NODE_RANK", "MASTER_ADDR", "MASTER_PORT", "FORCE_TORCHRUN",
                    "LOCAL_RANK", "WORLD_SIZE", "RANK", "OMP_NUM_THREADS")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests' own environment must not decide anything (logging and the CLI read os.environ)."""
    for name in LAUNCH_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def plan(environ: dict[str, str] | None = None, **keys: Any) -> Plan | None:
    return plan_launch(LaunchSection(**keys), environ or {}, pick_port=lambda: 41234)


def test_main_process_is_rank_zero_or_a_single_process() -> None:
    assert is_main_process({}) and is_main_process({"RANK": "0"})
    assert not is_main_process({"RANK": "1"})


def test_torchrun_command_runs_tunelab_with_the_same_interpreter() -> None:
    found = plan(nproc_per_node=2)
    assert found is not None
    assert torchrun_command(found, "cfg.yaml", ["learning_rate=1e-4", "nproc_per_node=2"], python="/venv/python") == [
        "/venv/python", "-m", "torch.distributed.run", "--nnodes", "1", "--node_rank", "0", "--nproc_per_node", "2",
        "--master_addr", "127.0.0.1", "--master_port", "41234", "-m", "tunelab", "train", "cfg.yaml",
        "learning_rate=1e-4", "nproc_per_node=2"]
    assert torchrun_command(found, "cfg.yaml", [])[0] == sys.executable


def test_the_launch_line_says_what_and_from_where() -> None:
    local = plan(nproc_per_node=2)
    assert local is not None
    assert describe(local, "4") == ("launching 2 training processes with torchrun at 127.0.0.1:41234 (world size 2, "
                                    "4 CPU threads each; from nproc_per_node: 2, a free port)")
    nodes = plan({"NPROC_PER_NODE": "8", "NNODES": "2", "NODE_RANK": "1", "MASTER_ADDR": "10.0.0.1"})
    assert nodes is not None
    assert describe(nodes) == ("launching 8 training processes on node 1 of 2 with torchrun at 10.0.0.1:29500 "
                               "(world size 16; from NPROC_PER_NODE=8, NNODES=2, NODE_RANK=1, MASTER_ADDR=10.0.0.1)")
    forced = plan({"FORCE_TORCHRUN": "1"})
    assert forced is not None
    assert describe(forced).startswith("launching 1 training process with torchrun at 127.0.0.1:41234 (world size 1; "
                                       "from FORCE_TORCHRUN=1, a free port)")


def test_cpu_workers_share_the_cores_unless_the_user_chose() -> None:
    def cpu() -> bool:
        return False

    def unasked() -> bool:
        raise AssertionError("probed the GPUs without need")

    assert worker_environment({"A": "b"}, 2, 16, cpu) == {"A": "b", "OMP_NUM_THREADS": "8"}
    assert worker_environment({}, 4, 2, cpu)["OMP_NUM_THREADS"] == "1"
    assert "OMP_NUM_THREADS" not in worker_environment({}, 2, 16, lambda: True)  # torchrun's own default
    assert worker_environment({"OMP_NUM_THREADS": "3"}, 2, 16, unasked)["OMP_NUM_THREADS"] == "3"
    assert "OMP_NUM_THREADS" not in worker_environment({}, 1, 16, unasked)  # FORCE_TORCHRUN with one process


class FakeProcess:
    """Stands in for the torchrun process: records what it was started with, exits with a chosen code."""

    started: list[tuple[list[str], dict[str, str]]] = []

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        FakeProcess.started.append((command, env))

    def wait(self, timeout: float | None = None) -> int:
        return 3


def test_launch_prints_one_line_and_returns_torchruns_exit_code(monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    FakeProcess.started = []
    monkeypatch.setattr(subprocess, "Popen", FakeProcess)
    monkeypatch.setattr("tunelab.runtime.env.cuda_available", lambda: False)
    found = plan(nproc_per_node=2)
    assert found is not None
    assert launcher.launch(found, "cfg.yaml", ["max_steps=2"], environ={"PATH": "/bin"}) == 3
    [(command, env)] = FakeProcess.started
    assert command[-4:] == ["tunelab", "train", "cfg.yaml", "max_steps=2"]
    assert env["PATH"] == "/bin" and int(env["OMP_NUM_THREADS"]) >= 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "tunelab: launching 2 training processes with torchrun at 127.0.0.1:41234" in err


def test_status_lines_and_warnings_only_on_rank_zero(monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("RANK", "1")
    console_log.info("hidden")
    console_log.warn("hidden too")
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("RANK", "0")
    console_log.info("shown")
    console_log.warn("careful")
    assert capsys.readouterr().err == "tunelab: shown\ntunelab warning: careful\n"


def write_config(folder: Path) -> Path:
    path = folder / "run.yaml"
    path.write_text("model_name_or_path: tiny\ndataset: demo\noutput_dir: out\n", encoding="utf-8")
    return path


def test_tunelab_train_launches_torchrun_when_asked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from tunelab.interfaces.cli import main

    calls: list[tuple[Plan, str, list[str]]] = []
    monkeypatch.setattr(launcher, "launch", lambda plan, path, overrides: calls.append((plan, path, overrides)) or 7)
    monkeypatch.setattr("tunelab.train.run.train", lambda config: pytest.fail("trained instead of launching"))
    config = write_config(tmp_path)
    assert main(["train", str(config), "nproc_per_node=2", "learning_rate=1e-4"]) == 7
    [(found, path, overrides)] = calls
    assert found.processes == 2 and path == str(config) and overrides == ["nproc_per_node=2", "learning_rate=1e-4"]


def test_tunelab_train_trains_directly_in_a_worker_or_with_one_process(monkeypatch: pytest.MonkeyPatch,
                                                                         tmp_path: Path) -> None:
    from tunelab.interfaces.cli import main

    trained: list[Any] = []
    monkeypatch.setattr(launcher, "launch", lambda *args: pytest.fail("launched inside a worker"))
    monkeypatch.setattr("tunelab.train.run.train", lambda config: trained.append(config))
    config = write_config(tmp_path)
    assert main(["train", str(config)]) == 0
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["train", str(config), "nproc_per_node=2"]) == 0
    assert len(trained) == 2 and trained[1].launch.nproc_per_node == 2


def test_a_bad_environment_variable_stops_tunelab_train_with_exit_code_2(monkeypatch: pytest.MonkeyPatch,
                                                                         tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from tunelab.interfaces.cli import main

    monkeypatch.setenv("NPROC_PER_NODE", "auto")
    assert main(["train", str(write_config(tmp_path))]) == 2
    assert "NPROC_PER_NODE: the environment variable is 'auto', not a whole number" in capsys.readouterr().err
