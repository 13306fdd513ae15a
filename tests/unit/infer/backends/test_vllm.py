"""The vLLM backend around a stand-in `vllm` module: our requests as SamplingParams, adapters as LoRARequests,
the engine arguments from our keys, and the results and streaming that predict and the API read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tunelab.config.load import build
from tunelab.config.schema import BackendSection
from tunelab.infer.backends.vllm import (Loras, ModelSource, VllmBackend, VllmError, check_ranks, engine_args,
                                         sampling_params, start_backend)
from tunelab.infer.batch_generate import GenRequest, GenResult

from . import fake_vllm


@pytest.fixture
def vllm(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(fake_vllm.LLMEngine, "script", [7, 8, 9])
    return fake_vllm.install(monkeypatch)


SOURCE = ModelSource(path="/models/base", dtype="auto", adapters={"sql": "/a/sql", "chat": "/a/chat"},
                     default_adapter="")


def test_sampling_params(vllm: Any) -> None:
    greedy = sampling_params(vllm, GenRequest([1, 2], 5, top_k=40, seed=3, stop_token_ids=frozenset({9, 2})))
    assert (greedy.temperature, greedy.top_p, greedy.top_k, greedy.seed) == (0.0, 1.0, -1, None)
    assert (greedy.max_tokens, greedy.n, greedy.stop_token_ids, greedy.detokenize) == (5, 1, [2, 9], False)
    sampled = sampling_params(vllm, GenRequest([1], 4, do_sample=True, temperature=0.7, top_p=0.9, top_k=40,
                                               repetition_penalty=1.1, seed=3))
    assert (sampled.temperature, sampled.top_p, sampled.top_k, sampled.repetition_penalty, sampled.seed) == (
        0.7, 0.9, 40, 1.1, 3)
    assert sampling_params(vllm, GenRequest([1], 4, do_sample=True, top_k=0)).top_k == -1  # 0: no limit


def test_engine_args_follow_our_keys_and_vllm_config_wins() -> None:
    backend = BackendSection(infer_backend="vllm", vllm_maxlen=2048, vllm_gpu_util=0.5, vllm_enforce_eager=True,
                             vllm_config={"max_num_seqs": 16, "enforce_eager": False})
    args = engine_args(SOURCE, backend, 16)
    assert args["model"] == "/models/base" and args["max_model_len"] == 2048 and args["gpu_memory_utilization"] == 0.5
    assert args["enable_lora"] is True and args["max_loras"] == 2 and args["max_lora_rank"] == 16
    assert args["max_num_seqs"] == 16 and args["enforce_eager"] is False
    assert engine_args(ModelSource("/m", "bfloat16"), BackendSection(), 32)["enable_lora"] is False


def test_lora_rank_must_fit() -> None:
    backend = BackendSection(infer_backend="vllm", vllm_max_lora_rank=8)
    assert check_ranks({"sql": 8}, backend) == 8
    with pytest.raises(VllmError, match="adapter chat has rank 16 but vllm_max_lora_rank is 8; set "
                                        "vllm_max_lora_rank: 16"):
        check_ranks({"sql": 8, "chat": 16}, backend)


def test_adapter_field_picks_the_lora(vllm: Any) -> None:
    loras = Loras(fake_vllm.LoRARequest, SOURCE)
    assert loras.pick("sql") == fake_vllm.LoRARequest("sql", 1, "/a/sql")
    assert loras.pick("chat").lora_int_id == 2
    assert loras.pick("") is None and loras.pick(None) is None  # default "": the base model
    run = Loras(fake_vllm.LoRARequest, ModelSource("/m", "auto", {"default": "/out"}, default_adapter="default"))
    assert run.pick(None).lora_name == "default" and run.pick("") is None
    with pytest.raises(VllmError, match="no adapter named 'nope' is loaded; loaded: sql, chat"):
        loras.pick("nope")


def backend_of(vllm: Any) -> VllmBackend:
    return start_backend(SOURCE, BackendSection(infer_backend="vllm"), {"sql": 8, "chat": 4})


def test_generate_maps_requests_and_results(vllm: Any) -> None:
    backend = backend_of(vllm)
    engine = fake_vllm.LLMEngine.last
    assert engine.args["enable_lora"] and engine.args["max_lora_rank"] == 32
    requests = [GenRequest([1, 2, 3], 2, adapter="sql"), GenRequest([4], 5, stop_token_ids=frozenset({9}), adapter=""),
                GenRequest([5, 6], 5)]
    streamed: list[tuple[int, int]] = []
    results = backend.generate(requests, on_token=lambda row, token: streamed.append((row, token)) or True)
    assert results[0] == GenResult([7, 8], "length")
    assert results[1] == GenResult([7, 8], "stop", 9)  # the stop token is reported, not returned
    assert results[2] == GenResult([7, 8, 9, 7, 8], "length")  # no stop tokens asked: 9 is an ordinary token
    assert sorted(t for r, t in streamed if r == 1) == [7, 8]  # stop tokens are not streamed
    assert len(engine.aborted) == 0


def test_generate_sends_token_ids_and_loras(vllm: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = backend_of(vllm)
    engine = fake_vllm.LLMEngine.last
    seen: list[Any] = []
    monkeypatch.setattr(engine, "add_request", lambda rid, prompt, params, lora_request=None: (
        seen.append((prompt, lora_request)), fake_vllm.LLMEngine.add_request(engine, rid, prompt, params,
                                                                            lora_request=lora_request)))
    backend.generate([GenRequest([1, 2, 3], 1, adapter="chat"), GenRequest([4], 1, adapter="")])
    assert seen[0] == ({"prompt_token_ids": [1, 2, 3]}, fake_vllm.LoRARequest("chat", 2, "/a/chat"))
    assert seen[1] == ({"prompt_token_ids": [4]}, None)


def test_on_token_false_aborts_the_row(vllm: Any) -> None:
    backend = backend_of(vllm)
    results = backend.generate([GenRequest([1], 5), GenRequest([2], 3)], on_token=lambda row, token: row != 0)
    # the token that on_token refused is kept, as batch_generate keeps it
    assert results[0] == GenResult([7], "cancelled") and results[1] == GenResult([7, 8, 9], "length")
    assert fake_vllm.LLMEngine.last.aborted == ["tunelab-0"]


def test_without_vllm_installed_the_error_says_how(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm raises ImportError
    with pytest.raises(VllmError, match=r"pip install 'tunelab\[vllm\]'"):
        start_backend(SOURCE, BackendSection(infer_backend="vllm"), {})


def test_config_round_trip(tmp_path: Path) -> None:
    config = build({"model_name_or_path": "tiny", "infer_backend": "vllm", "vllm_config": '{"max_num_seqs": 8}'},
                   purpose="infer")
    assert config.backend.vllm_config == {"max_num_seqs": 8}
