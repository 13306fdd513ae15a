"""The API on the vLLM backend (a stand-in `vllm` module): the same routes and answers, the model id choosing the
LoRA, and `tunelab api` refusing infer_backend: vllm where vLLM or a GPU is missing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.unit.infer.backends import fake_vllm
from tunelab.config.schema import BackendSection
from tunelab.infer.backends.vllm import ModelSource, start_backend
from tunelab.interfaces.api.app import create_app
from tunelab.interfaces.api.models import several_adapters
from tunelab.interfaces.api.sampling import Limits
from tunelab.interfaces.api.state import Server
from tunelab.interfaces.cli import main

from .conftest import GREEDY, MODEL_ID, chat_body, sse_events


@pytest.fixture
def client(tiny_tokenizer: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The app over the engine driving vLLM (VllmStepper) whose stand-in answers every request with the tokens of 'ok then' and <eos>."""
    fake_vllm.install(monkeypatch)
    eos = tiny_tokenizer.eos_token_id
    monkeypatch.setattr(fake_vllm.LLMEngine, "script",
                        tiny_tokenizer("ok then", add_special_tokens=False)["input_ids"] + [eos])
    source = ModelSource("/m", "auto", {"sql": "/a/sql", "chat": "/a/chat"}, default_adapter="")
    backend = start_backend(source, BackendSection(infer_backend="vllm"), {})
    from tunelab.infer.backends.vllm_stepper import VllmStepper
    from tunelab.infer.engine import Engine

    engine = Engine(None, 0, 4, max_queue=8, request_timeout=60, batch=VllmStepper(backend))
    server = Server(tokenizer=tiny_tokenizer, engine=engine, settings=GREEDY,
                    model_id=MODEL_ID, limits=Limits(4096, 2048), stop_ids=frozenset({eos}),
                    routes=several_adapters(MODEL_ID, ["sql", "chat"]))
    with TestClient(create_app(server)) as test_client:
        yield test_client


def test_answers_and_loras(client: Any) -> None:
    added: list[Any] = []
    engine = fake_vllm.LLMEngine.last
    original = engine.add_request
    engine.add_request = lambda rid, prompt, params, lora_request=None: (
        added.append(lora_request), original(rid, prompt, params, lora_request=lora_request))
    reply = client.post("/v1/chat/completions", json=chat_body(model="sql")).json()
    assert reply["model"] == "sql" and reply["choices"][0]["message"]["content"] == "ok then"
    assert reply["choices"][0]["finish_reason"] == "stop"
    assert client.post("/v1/chat/completions", json=chat_body(max_tokens=1)).json()["choices"][0][
        "finish_reason"] == "length"
    with client.stream("POST", "/v1/chat/completions", json=chat_body(model="chat", stream=True)) as stream:
        events = sse_events(stream)
    assert "".join(e["choices"][0]["delta"].get("content", "") for e in events[:-1] if e["choices"]) == "ok then"
    stopped = client.post("/v1/completions", json={"model": "chat", "prompt": "Hi", "stop": [" then"]}).json()
    assert stopped["choices"][0]["text"] == "ok"  # our stop strings, on vLLM's tokens
    assert [a.lora_name if a else None for a in added] == ["sql", None, "chat", "chat"]


def test_api_refuses_vllm_without_it(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from tunelab.runtime import env

    monkeypatch.setattr(env, "cuda_available", lambda: False)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model_name_or_path: smollm2-135m-instruct\ninfer_backend: vllm\n")
    assert main(["api", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "vllm needs a CUDA GPU and none is visible" in err and "Traceback" not in err
