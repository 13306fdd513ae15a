"""Checks of the keys that decoding reads: infer_dtype, and the launch keys of `tunelab predict`."""

from __future__ import annotations

from tunelab.config.errors import Problem
from tunelab.config.launch_plan import in_distributed_worker, plan_problems, read_settings
from tunelab.config.schema import InferSection, LaunchSection
from tunelab.runtime import env


def infer_dtype_check(infer: InferSection) -> list[Problem]:
    """float16 decoding is refused without a GPU: CPUs have no fast float16 kernels (torch is imported only for
    float16)."""
    if infer.infer_dtype != "float16" or env.cuda_available():
        return []
    return [Problem("infer_dtype", "float16: there is no GPU here, and CPUs have no fast float16 matrix kernels (it "
                                   "runs slower than float32); use bfloat16 (fast on CPUs with AVX512-BF16 or AMX), "
                                   "float32, or auto")]


def predict_launch_check(launch: LaunchSection) -> list[Problem]:
    """Prediction on several processes runs on one machine: its shards are merged into one file there."""
    environ = env.variables()
    if in_distributed_worker(environ):  # torchrun has already placed this process
        return []
    settings, problems = read_settings(launch, environ)
    problems += plan_problems(settings)
    nnodes = settings["nnodes"]
    if nnodes.value is not None and nnodes.value > 1:
        problems.append(Problem(nnodes.source if nnodes.source != "default" else "nnodes",
                                f"{nnodes.value}: `tunelab predict` runs its processes on one machine (their "
                                "answers are merged into one file there); use nproc_per_node, and nnodes: 1"))
    for key in ("deepspeed", "fsdp"):
        if getattr(launch, key):
            problems.append(Problem(key, "prediction does not shard the model: each process holds a whole copy "
                                         f"and answers its share of the rows; remove {key}"))
    return problems
