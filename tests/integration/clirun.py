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


