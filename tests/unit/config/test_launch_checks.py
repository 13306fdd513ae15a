"""Launch checks: DeepSpeed, FSDP, the process-group backend and the torchrun settings, each problem with its fix.

GPUs and the deepspeed package are faked (torch.cuda.is_available and find_spec), so every message is tested on
this CPU machine."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import pytest

from tunelab.config.errors import ConfigError
from tunelab.config.load import build

REPO = Path(__file__).resolve().parents[3]
MINIMAL = {"model_name_or_path": "tiny", "dataset": "demo", "output_dir": "out"}
LAUNCH_VARIABLES = ("NPROC_PER_NODE", "NNODES", "NODE_RANK", "MASTER_ADDR", "MASTER_PORT", "FORCE_TORCHRUN",
                    "LOCAL_RANK", "WORLD_SIZE", "RANK")
checks_module = importlib.import_module("tunelab.config.launch_checks")


@pytest.fixture(autouse=True)
def machine(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A clean environment on a machine with GPUs and deepspeed installed; tests take either away."""
    import torch

    for name in LAUNCH_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(checks_module, "find_spec", lambda name: object() if name == "deepspeed" else None)
    return monkeypatch


def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def problems(**flat: Any) -> list[str]:
    """The launch problems of MINIMAL + flat, as 'key: message' lines ([] when the config builds)."""
    try:
        build({**MINIMAL, **flat}, "train")
    except ConfigError as exc:
        return [str(p) for p in exc.problems]
    return []


def ds_file(tmp_path: Path, data: Any, name: str = "ds.json") -> str:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("name", ["ds_z0_config.json", "ds_z2_config.json", "ds_z2_offload_config.json",
                                  "ds_z3_config.json", "ds_z3_offload_config.json"])
def test_the_shipped_deepspeed_configs_pass(name: str) -> None:
    path = REPO / "examples" / "deepspeed" / name
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["train_micro_batch_size_per_gpu"] == "auto" and data["gradient_accumulation_steps"] == "auto"
    assert data["zero_optimization"]["stage"] == int(name[4])
    assert ("offload" in name) == ("offload_optimizer" in data["zero_optimization"])
    assert problems(deepspeed=str(path), nproc_per_node=2) == []


def test_deepspeed_file_problems(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.json")
    assert problems(deepspeed=missing, nproc_per_node=2) == [
        f"deepspeed: {missing}: no such file (paths are relative to the folder tunelab runs in); give a DeepSpeed "
        "JSON config, e.g. examples/deepspeed/ds_z2_config.json"]
    broken = ds_file(tmp_path, '{"zero_optimization": {"stage": 2,}}')
    assert problems(deepspeed=broken, nproc_per_node=2) == [
        f"deepspeed: {broken} is not valid JSON (line 1, column 35: Expecting property name enclosed in double "
        "quotes); fix the file"]
    listed = ds_file(tmp_path, [1, 2])
    assert problems(deepspeed=listed, nproc_per_node=2) == [
        f"deepspeed: {listed} holds a JSON list, not an object of settings; give a DeepSpeed JSON config, e.g. "
        "examples/deepspeed/ds_z2_config.json"]


@pytest.mark.parametrize("stage", [4, -1, "auto", 2.0, True])
def test_zero_stage_must_be_0_to_3(tmp_path: Path, stage: object) -> None:
    path = ds_file(tmp_path, {"zero_optimization": {"stage": stage}})
    assert problems(deepspeed=path, nproc_per_node=2) == [
        f"deepspeed: {path}: zero_optimization.stage is {json.dumps(stage)}; use 0, 1, 2 or 3 (the ZeRO stage, see "
        "examples/deepspeed/)"]


def test_deepspeed_without_the_package(tmp_path: Path, machine: pytest.MonkeyPatch) -> None:
    machine.setattr(checks_module, "find_spec", lambda name: None)
    assert problems(deepspeed=ds_file(tmp_path, {}), nproc_per_node=2) == [
        "deepspeed: the deepspeed package is not installed; pip install deepspeed (on the GPU machine), or remove "
        "deepspeed"]


def test_deepspeed_on_a_cpu_says_to_use_plain_data_parallel(tmp_path: Path, machine: pytest.MonkeyPatch) -> None:
    no_gpu(machine)
    assert problems(deepspeed=ds_file(tmp_path, {}), nproc_per_node=2) == [
        "deepspeed: DeepSpeed trains on GPUs and torch sees no CUDA GPU here; on a CPU remove deepspeed and train "
        "data-parallel with nproc_per_node: N (gloo)"]
    assert problems(nproc_per_node=2) == []  # plain data parallel on a CPU: nothing to say
    assert problems(nproc_per_node=2, use_cpu=False) == []


def test_deepspeed_with_use_cpu(tmp_path: Path) -> None:
    assert problems(deepspeed=ds_file(tmp_path, {}), nproc_per_node=2, use_cpu=True) == [
        "deepspeed: DeepSpeed trains on GPUs, but use_cpu is true; remove one"]


def test_deepspeed_needs_a_multi_process_launch(tmp_path: Path, machine: pytest.MonkeyPatch) -> None:
    path = ds_file(tmp_path, {"zero_optimization": {"stage": 3}})
    assert problems(deepspeed=path) == [
        "deepspeed: DeepSpeed runs under a multi-process launch: set nproc_per_node: N (one per GPU), or "
        "FORCE_TORCHRUN=1 for a single GPU"]
    machine.setenv("FORCE_TORCHRUN", "1")
    assert problems(deepspeed=path) == []
    machine.delenv("FORCE_TORCHRUN")
    machine.setenv("NPROC_PER_NODE", "4")
    assert problems(deepspeed=path) == []
    machine.delenv("NPROC_PER_NODE")
    machine.setenv("LOCAL_RANK", "0")  # a torchrun worker
    machine.setenv("WORLD_SIZE", "1")
    assert problems(deepspeed=path) == []


def test_deepspeed_and_fsdp_together(tmp_path: Path) -> None:
    assert problems(deepspeed=ds_file(tmp_path, {}), fsdp="full_shard", nproc_per_node=2) == [
        "deepspeed: deepspeed and fsdp both shard the model across processes; keep one"]


def test_every_deepspeed_problem_at_once(tmp_path: Path, machine: pytest.MonkeyPatch) -> None:
    no_gpu(machine)
    machine.setattr(checks_module, "find_spec", lambda name: None)
    found = problems(deepspeed=str(tmp_path / "missing.json"), fsdp="full_shard")
    assert [line.split(":")[0] for line in found] == ["deepspeed"] * 5 + ["fsdp"] * 2


def test_fsdp_options_come_from_transformers() -> None:
    from transformers.trainer_utils import FSDPOption

    known = " ".join(option.value for option in FSDPOption)
    assert problems(fsdp=known, nproc_per_node=2) == []
    found = problems(fsdp="full_shard auto_wrapp zero3", nproc_per_node=2)
    assert len(found) == 1 and found[0].startswith("fsdp: unknown options 'auto_wrapp', 'zero3'; transformers ")
    assert found[0].endswith(f"knows {', '.join(known.split())} (e.g. fsdp: full_shard auto_wrap)")


def test_fsdp_needs_a_multi_process_launch() -> None:
    assert problems(fsdp="full_shard auto_wrap") == [
        "fsdp: FSDP shards the model across processes, but this run has one: set nproc_per_node: N (or "
        "FORCE_TORCHRUN=1 for a single process)"]
    assert problems(fsdp="full_shard auto_wrap", nnodes=2, master_addr="10.0.0.1") == []


def test_fsdp_on_a_cpu_would_silently_be_plain_ddp(machine: pytest.MonkeyPatch) -> None:
    assert problems(fsdp="full_shard", nproc_per_node=2, use_cpu=True) == [
        "fsdp: FSDP shards the model across GPUs, but use_cpu is true; remove one"]
    no_gpu(machine)
    assert problems(fsdp="full_shard", nproc_per_node=2) == [
        "fsdp: FSDP shards the model across GPUs and torch sees no CUDA GPU here (on a CPU, accelerate would ignore "
        "fsdp and train plain data-parallel); remove fsdp: nproc_per_node: N alone trains data-parallel (gloo)"]


def test_fsdp_config(tmp_path: Path) -> None:
    assert problems(fsdp_config={"version": 2}) == [
        "fsdp_config: only used with fsdp; set fsdp (e.g. fsdp: full_shard auto_wrap) or remove fsdp_config"]
    assert problems(fsdp="full_shard", fsdp_config={"version": 2}, nproc_per_node=2) == []
    good = ds_file(tmp_path, {"version": 2}, "fsdp.json")
    assert problems(fsdp="full_shard", fsdp_config=good, nproc_per_node=2) == []
    missing = str(tmp_path / "fsdp_missing.json")
    assert problems(fsdp="full_shard", fsdp_config=missing, nproc_per_node=2) == [
        f"fsdp_config: {missing}: no such file (paths are relative to the folder tunelab runs in); give a JSON file "
        "of transformers' fsdp_config options, or write them as a mapping in the YAML"]
    broken = ds_file(tmp_path, "version: 2", "fsdp.yaml")
    assert problems(fsdp="full_shard", fsdp_config=broken, nproc_per_node=2)[0].startswith(
        f"fsdp_config: {broken} is not valid JSON (line 1, column 1: Expecting value)")


def test_nccl_needs_cuda(machine: pytest.MonkeyPatch) -> None:
    assert problems(ddp_backend="nccl", nproc_per_node=2) == []
    no_gpu(machine)
    assert problems(ddp_backend="nccl", nproc_per_node=2) == [
        "ddp_backend: nccl needs CUDA GPUs and torch sees none here; use ddp_backend: gloo on a CPU (or leave it "
        "out: gloo is chosen there)"]
    assert problems(ddp_backend="gloo", nproc_per_node=2) == []


def test_node_rank_below_nnodes(machine: pytest.MonkeyPatch) -> None:
    assert problems(nnodes=2, node_rank=2, master_addr="10.0.0.1") == [
        "node_rank: 2 is not below nnodes (2, from nnodes); nodes are numbered 0 to 1: give each machine its own "
        "node_rank"]
    machine.setenv("NNODES", "2")
    machine.setenv("NODE_RANK", "3")
    machine.setenv("MASTER_ADDR", "10.0.0.1")
    assert problems() == [
        "NODE_RANK: 3 is not below nnodes (2, from NNODES); nodes are numbered 0 to 1: give each machine its own "
        "node_rank"]
    assert problems(node_rank=1) == []


def test_several_nodes_need_master_addr() -> None:
    assert problems(nnodes=2) == [
        "master_addr: nnodes is 2, so the other machines need the address of node 0: set master_addr (or "
        "MASTER_ADDR) to it on every node"]


def test_bad_launch_variables_are_config_problems(machine: pytest.MonkeyPatch) -> None:
    machine.setenv("NNODES", "0")
    assert problems() == [
        "NNODES: the environment variable is '0', not a whole number of at least 1; fix or unset it, or set nnodes in "
        "the config (a config key wins over the variable)"]
    assert problems(nnodes=1) == []  # the key wins; the variable is not read


def test_inside_a_worker_the_placement_is_not_checked_again(machine: pytest.MonkeyPatch) -> None:
    machine.setenv("LOCAL_RANK", "1")
    machine.setenv("WORLD_SIZE", "2")
    machine.setenv("NNODES", "not read")
    assert problems(nproc_per_node=2, fsdp="full_shard") == []


def test_launch_checks_only_for_training(tmp_path: Path) -> None:
    assert build({**MINIMAL, "deepspeed": str(tmp_path / "missing.json")}, "infer").launch.deepspeed
