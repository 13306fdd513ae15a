"""Running the real CLI (`python -m tunelab`) from integration tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = "examples/quickstart_lora_sft.yaml"


def tunelab(*args: str, cwd: Path = REPO, timeout: int = 600, stdin: str = "") -> subprocess.CompletedProcess:
    """Run the CLI as a user would; returns the finished process (stdout/stderr as text)."""
    env = {**os.environ, "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "tunelab", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, input=stdin)




def train_two_and_one(config: str, two: Path, one: Path) -> tuple[subprocess.CompletedProcess,
                                                                   subprocess.CompletedProcess]:
    """`tunelab train config` on 2 processes (batch 2 each) and on 1 (batch 4) at the same time, into two and one.
    One thread per training process: three of them share the cores (and the launcher need not probe for GPUs)."""
    from concurrent.futures import ThreadPoolExecutor

    import pytest

    with pytest.MonkeyPatch.context() as env, ThreadPoolExecutor(2) as pool:
        env.setenv("OMP_NUM_THREADS", "1")
        two_run = pool.submit(tunelab, "train", config, f"output_dir={two}", "nproc_per_node=2",
                              "per_device_train_batch_size=2", timeout=300)
        one_run = pool.submit(tunelab, "train", config, f"output_dir={one}", "per_device_train_batch_size=4",
                              timeout=300)
        return two_run.result(), one_run.result()
