"""Integration tests: the real CLI (`python -m tunelab`) on the real SmolLM2-135M-Instruct, a few steps."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from .clirun import QUICKSTART, tunelab


def pytest_collection_modifyitems(items: list) -> None:
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    """One short quickstart training run shared by the tests that inspect its output."""
    out = tmp_path_factory.mktemp("run") / "sft"
    result = tunelab("train", QUICKSTART, f"output_dir={out}", "max_steps=8", "logging_steps=1", "eval_steps=4",
                     "learning_rate=1e-3", "per_device_train_batch_size=4", "gradient_accumulation_steps=1")
    assert result.returncode == 0, result.stderr[-3000:]
    return out, result
