"""Checks of the launch section: torchrun settings, DeepSpeed, FSDP and the process-group backend.

A config is validated in the launching process and again in every torchrun worker, so the environment
variables LLaMA-Factory users set (NPROC_PER_NODE, NNODES, NODE_RANK, MASTER_ADDR, MASTER_PORT,
FORCE_TORCHRUN) are read here, at check time, through runtime/env.py. Every problem names the key (or the
variable, or the file) and the fix; all of them are reported together.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib.util import find_spec
from pathlib import Path

from tunelab.config.errors import Problem
from tunelab.config.launch_plan import in_distributed_worker, multi_process, plan_problems, read_settings
from tunelab.config.schema import LaunchSection, TrainSection
from tunelab.runtime import env

ZERO_STAGES = (0, 1, 2, 3)
DEEPSPEED_EXAMPLE = "examples/deepspeed/ds_z2_config.json"


def launch_checks(launch: LaunchSection, train: TrainSection | None = None) -> list[Problem]:
    """Every launch problem of the config in this environment; `train` is None when that section failed to
    validate (use_cpu then counts as false, so the launch problems are still reported with the field problems)."""
    environ: Mapping[str, str] = env.variables()
    problems: list[Problem] = []
    if not in_distributed_worker(environ):  # in a worker, torchrun has already placed this process
        settings, found = read_settings(launch, environ)
        problems += found + plan_problems(settings)
    multi = multi_process(launch, environ)
    use_cpu = train.use_cpu if train is not None else False
    problems += deepspeed_problems(launch, multi, use_cpu)
    problems += fsdp_problems(launch, multi, use_cpu)
    problems += backend_problems(launch)
    return problems


def cuda_available() -> bool:
    """True when torch sees a CUDA GPU (torch is imported only when a check needs to know)."""
    import torch

    return bool(torch.cuda.is_available())


def read_json(key: str, path: str, fix: str) -> tuple[dict[str, object] | None, list[Problem]]:
    """The JSON object in a file named by a config key, or the problem with it."""
    file = Path(path)
    if not file.is_file():
        return None, [Problem(key, f"{path}: no such file (paths are relative to the folder tunelab runs in); {fix}")]
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        return None, [Problem(key, f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
                                   "fix the file")]
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem(key, f"{path} cannot be read as UTF-8 text ({exc}); {fix}")]
    if not isinstance(data, dict):
        return None, [Problem(key, f"{path} holds a JSON {type(data).__name__}, not an object of settings; {fix}")]
    return data, []


def zero_stage_problems(path: str, data: Mapping[str, object]) -> list[Problem]:
    """zero_optimization.stage must be one of DeepSpeed's ZeRO stages 0-3 (absent means 0)."""
    zero = data.get("zero_optimization", {})
    if not isinstance(zero, dict):
        return [Problem("deepspeed", f"{path}: zero_optimization must be a JSON object, e.g. {{\"stage\": 2}}")]
    stage = zero.get("stage", 0)
    if type(stage) is int and stage in ZERO_STAGES:
        return []
    return [Problem("deepspeed", f"{path}: zero_optimization.stage is {json.dumps(stage)}; use 0, 1, 2 or 3 (the ZeRO "
                                 "stage, see examples/deepspeed/)")]


def deepspeed_problems(launch: LaunchSection, multi: bool, use_cpu: bool) -> list[Problem]:
    """DeepSpeed needs its JSON file, the package, CUDA GPUs and a multi-process launch, and excludes FSDP."""
    path = launch.deepspeed
    if not path:
        return []
    data, problems = read_json("deepspeed", path, f"give a DeepSpeed JSON config, e.g. {DEEPSPEED_EXAMPLE}")
    if data is not None:
        problems += zero_stage_problems(path, data)
    if find_spec("deepspeed") is None:
        problems.append(Problem("deepspeed", "the deepspeed package is not installed; pip install deepspeed (on the "
                                             "GPU machine), or remove deepspeed"))
    if not cuda_available():
        problems.append(Problem("deepspeed", "DeepSpeed trains on GPUs and torch sees no CUDA GPU here; on a CPU "
                                             "remove deepspeed and train data-parallel with nproc_per_node: N (gloo)"))
    elif use_cpu:
        problems.append(Problem("deepspeed", "DeepSpeed trains on GPUs, but use_cpu is true; remove one"))
    if not multi:
        problems.append(Problem("deepspeed", "DeepSpeed runs under a multi-process launch: set nproc_per_node: N (one "
                                             "per GPU), or FORCE_TORCHRUN=1 for a single GPU"))
    if launch.fsdp:
        problems.append(Problem("deepspeed", "deepspeed and fsdp both shard the model across processes; keep one"))
    return problems


def fsdp_options() -> tuple[str, ...] | None:
    """The FSDP option words the installed transformers knows (None where it has no FSDPOption)."""
    try:
        from transformers.trainer_utils import FSDPOption
    except ImportError:
        return None
    return tuple(option.value for option in FSDPOption)


def transformers_version() -> str:
    """The installed transformers version, for messages."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("transformers")
    except PackageNotFoundError:
        return "?"


def fsdp_problems(launch: LaunchSection, multi: bool, use_cpu: bool) -> list[Problem]:
    """fsdp must be words transformers knows, on GPUs, under a multi-process launch; fsdp_config needs fsdp and
    valid JSON."""
    words = (launch.fsdp or "").split()
    if not words:
        if launch.fsdp_config is not None:
            return [Problem("fsdp_config", "only used with fsdp; set fsdp (e.g. fsdp: full_shard auto_wrap) or remove "
                                           "fsdp_config")]
        return []
    problems = []
    options = fsdp_options()
    unknown = [word for word in words if options is not None and word not in options]
    if unknown:
        problems.append(Problem("fsdp", f"unknown option{'s' if len(unknown) > 1 else ''} "
                                        f"{', '.join(map(repr, unknown))}; transformers {transformers_version()} knows "
                                        f"{', '.join(options or ())} (e.g. fsdp: full_shard auto_wrap)"))
    # accelerate applies FSDP on GPUs (and other accelerators) only: on a CPU it trains plain DDP, sharding nothing
    if not cuda_available():
        problems.append(Problem("fsdp", "FSDP shards the model across GPUs and torch sees no CUDA GPU here (on a CPU, "
                                        "accelerate would ignore fsdp and train plain data-parallel); remove fsdp: "
                                        "nproc_per_node: N alone trains data-parallel (gloo)"))
    elif use_cpu:
        problems.append(Problem("fsdp", "FSDP shards the model across GPUs, but use_cpu is true; remove one"))
    if not multi:
        problems.append(Problem("fsdp", "FSDP shards the model across processes, but this run has one: set "
                                        "nproc_per_node: N (or FORCE_TORCHRUN=1 for a single process)"))
    if isinstance(launch.fsdp_config, str):
        problems += read_json("fsdp_config", launch.fsdp_config, "give a JSON file of transformers' fsdp_config "
                                                                 "options, or write them as a mapping in the YAML")[1]
    return problems


def backend_problems(launch: LaunchSection) -> list[Problem]:
    """nccl only works with CUDA GPUs."""
    if launch.ddp_backend == "nccl" and not cuda_available():
        return [Problem("ddp_backend", "nccl needs CUDA GPUs and torch sees none here; use ddp_backend: gloo on a CPU "
                                       "(or leave it out: gloo is chosen there)")]
    return []
