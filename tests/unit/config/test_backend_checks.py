"""infer_backend: vllm is a config error where vLLM or a CUDA GPU is missing; vllm_* keys need it chosen."""

from __future__ import annotations

import pytest

from tunelab.config.backend_checks import backend_check
from tunelab.config.errors import ConfigError
from tunelab.config.load import build
from tunelab.config.schema import BackendSection
from tunelab.runtime import env


@pytest.fixture
def machine(monkeypatch: pytest.MonkeyPatch):
    """machine(vllm=..., gpu=...): what runtime/env reports."""
    def set_to(vllm: bool, gpu: bool) -> None:
        monkeypatch.setattr(env, "package_version", lambda name: "0.11.0" if vllm and name == "vllm" else None)
        monkeypatch.setattr(env, "cuda_available", lambda: gpu)
    return set_to


def test_vllm_needs_the_package_and_a_gpu(machine) -> None:
    vllm = BackendSection(infer_backend="vllm")
    machine(vllm=True, gpu=True)
    assert backend_check(vllm) == []
    machine(vllm=False, gpu=False)
    messages = [str(p) for p in backend_check(vllm)]
    assert messages[0].startswith("infer_backend: vllm is not installed here; install it with pip install "
                                  "'tunelab[vllm]'")
    assert "needs a CUDA GPU and none is visible" in messages[1] and "infer_backend: huggingface" in messages[1]


def test_vllm_keys_without_vllm(machine) -> None:
    machine(vllm=False, gpu=False)
    assert backend_check(BackendSection()) == []
    problems = backend_check(BackendSection(vllm_maxlen=1024, vllm_gpu_util=0.5))
    assert [p.key for p in problems] == ["vllm_gpu_util", "vllm_maxlen"]
    assert "only infer_backend: vllm reads it" in problems[0].message


def test_predict_and_eval_check_it(machine) -> None:
    machine(vllm=False, gpu=True)
    keys = {"model_name_or_path": "tiny", "infer_backend": "vllm", "eval_dataset": "identity",
            "output_dir": "out", "dataset_dir": "examples/data"}
    with pytest.raises(ConfigError, match="vllm is not installed here"):
        build(keys, purpose="predict")
    assert build({"model_name_or_path": "tiny", "infer_backend": "vllm"}, purpose="infer").backend.infer_backend == \
        "vllm"  # chat and data tools load the config too; `tunelab api` checks the backend itself
