"""Launching `tunelab train` on several processes through torchrun, as LLaMA-Factory users expect.

config/launch_plan.py decides the launch (processes, nodes, address, port) from the config and the environment;
this module runs it: the launching process starts `python -m torch.distributed.run ... -m tunelab train CONFIG
overrides...`, and each worker then sees torchrun's LOCAL_RANK/WORLD_SIZE and trains directly.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence

from tunelab.config.launch_plan import Plan
from tunelab.runtime.logging import info, is_main_process

__all__ = ["describe", "is_main_process", "launch", "torchrun_command", "worker_environment"]


def torchrun_command(plan: Plan, config_path: str, overrides: Sequence[str], python: str = sys.executable) -> list[str]:
    """`python -m torch.distributed.run ... -m tunelab train CONFIG overrides...` (same interpreter and venv)."""
    return [python, "-m", "torch.distributed.run", "--nnodes", str(plan.nnodes), "--node_rank", str(plan.node_rank),
            "--nproc_per_node", str(plan.processes), "--master_addr", plan.master_addr,
            "--master_port", str(plan.master_port), "-m", "tunelab", "train", str(config_path), *overrides]


def origins(plan: Plan) -> str:
    """Where the launch values came from, as the user set them: 'nproc_per_node: 2, MASTER_PORT=29600'."""
    values = {"processes": plan.processes, "nnodes": plan.nnodes, "node_rank": plan.node_rank,
              "master_addr": plan.master_addr, "master_port": plan.master_port}
    parts = ["FORCE_TORCHRUN=1"] if plan.forced else []
    for name, value in values.items():
        source = plan.sources.get(name, "default")
        if source.isupper():
            parts.append(f"{source}={value}")
        elif source not in ("default", "free port"):
            parts.append(f"{source}: {value}")
    if plan.sources.get("master_port") == "free port":
        parts.append("a free port")
    return ", ".join(parts) or "defaults"


def describe(plan: Plan, threads: str | None = None) -> str:
    """The console line saying what is launched (threads: the OMP_NUM_THREADS each worker gets, if set)."""
    count = f"{plan.processes} training process{'es' if plan.processes != 1 else ''}"
    where = f" on node {plan.node_rank} of {plan.nnodes}" if plan.nnodes > 1 else ""
    each = f", {threads} CPU thread{'s' if threads != '1' else ''} each" if threads else ""
    return (f"launching {count}{where} with torchrun at {plan.master_addr}:{plan.master_port} "
            f"(world size {plan.world_size}{each}; from {origins(plan)})")


def worker_environment(environ: Mapping[str, str], processes: int, cpu_cores: int | None,
                       gpus: Callable[[], bool]) -> dict[str, str]:
    """The workers' environment: on a CPU each of the processes gets its share of the cores as OMP threads
    (torchrun would give each one thread); an OMP_NUM_THREADS the user set is kept. `gpus` is asked only when
    needed (it imports torch)."""
    env = dict(environ)
    if "OMP_NUM_THREADS" not in env and processes > 1 and not gpus():
        env["OMP_NUM_THREADS"] = str(max(1, (cpu_cores or 1) // processes))
    return env


def launch(plan: Plan, config_path: str, overrides: Sequence[str], environ: Mapping[str, str] | None = None) -> int:
    """Run the torchrun job in the foreground and return its exit code."""
    from tunelab.runtime import env as runtime_env

    env = worker_environment(runtime_env.variables() if environ is None else environ, plan.processes,
                             runtime_env.cpu_cores(), runtime_env.cuda_available)
    info(describe(plan, env.get("OMP_NUM_THREADS")))
    process = subprocess.Popen(torchrun_command(plan, config_path, overrides), env=env)
    try:
        return process.wait()
    except KeyboardInterrupt:  # the terminal sent Ctrl-C to torchrun and its workers too: let them stop
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        return 130
