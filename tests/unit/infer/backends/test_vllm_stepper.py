"""VllmStepper (a stand-in `vllm`): rows join between steps, tokens reach on_token under the engine's row keys,
finished, cancelled and cleared rows leave vLLM."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tunelab.config.schema import BackendSection
from tunelab.infer.backends.vllm import ModelSource, start_backend
from tunelab.infer.backends.vllm_stepper import VllmStepper
from tunelab.infer.batch_generate import GenRequest, GenResult

from . import fake_vllm


@dataclass
class Row:
    index: int
    request: GenRequest


@pytest.fixture
def stepper(monkeypatch: pytest.MonkeyPatch) -> VllmStepper:
    fake_vllm.install(monkeypatch)
    monkeypatch.setattr(fake_vllm.LLMEngine, "script", [7, 8, 9])
    source = ModelSource("/m", "auto", {"sql": "/a/sql"}, default_adapter="")
    return VllmStepper(start_backend(source, BackendSection(infer_backend="vllm"), {"sql": 8}))


def test_rows_join_between_steps(stepper: VllmStepper) -> None:
    seen: list[tuple[int, int]] = []

    def on_token(key: int, token: int) -> bool:
        seen.append((key, token))
        return True

    stepper.admit([Row(41, GenRequest([1], 2, adapter="sql"))])
    assert stepper.step(on_token) == [] and len(stepper) == 1
    stepper.admit([Row(42, GenRequest([2], 5, stop_token_ids=frozenset({9})))])  # joins the running row
    assert stepper.step(on_token) == [(41, GenResult([7, 8], "length"))]
    assert stepper.step(on_token) == []
    assert stepper.step(on_token) == [(42, GenResult([7, 8], "stop", 9))]
    assert len(stepper) == 0 and stepper.rows == []
    assert seen == [(41, 7), (41, 8), (42, 7), (42, 8)]
    assert fake_vllm.LLMEngine.last.aborted == []


def test_cancel_and_clear(stepper: VllmStepper) -> None:
    stepper.admit([Row(1, GenRequest([1], 5)), Row(2, GenRequest([2], 5))])
    assert stepper.accepts(GenRequest([3], 1))
    assert stepper.step(lambda key, token: key != 1) == [(1, GenResult([7], "cancelled"))]
    assert fake_vllm.LLMEngine.last.aborted == ["tunelab-0"]
    stepper.clear()
    assert len(stepper) == 0 and fake_vllm.LLMEngine.last.aborted == ["tunelab-0", "tunelab-1"]
