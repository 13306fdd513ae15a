"""Integration tests: the real CLI (`python -m tunelab`) on the real SmolLM2-135M-Instruct, a few steps."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from .clirun import QUICKSTART, REPO, tunelab

API_KEY = "test-key"


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


def free_port() -> int:
    """A loopback port nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serving(args: list[str], log_path: Path, startup_s: float) -> Iterator[str]:
    """`tunelab api ARGS --port P --api-key API_KEY` on a free loopback port until the block ends; yields the base
    URL (no /v1) once /health answers, the server's output going to log_path."""
    port = free_port()
    log = log_path.open("w")
    env = {**os.environ, "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-m", "tunelab", "api", *args, "--port", str(port), "--api-key",
                                API_KEY], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_s
        while True:
            assert process.poll() is None, log_path.read_text()[-3000:]
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"the server did not answer /health within {startup_s:g} s"
            time.sleep(0.5)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


@pytest.fixture(scope="session")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`tunelab api` on a free loopback port, serving the base SmolLM2 (empty output_dir) with the key API_KEY;
    shared by the API tests and the tests that use it as a judge or a generator. Yields the base URL (no /v1)."""
    out = tmp_path_factory.mktemp("api")
    with serving([QUICKSTART, f"output_dir={out / 'none'}", "cutoff_len=512", "--max-batch", "16"],
                 out / "server.log", 180) as base:
        yield base
