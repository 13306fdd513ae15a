"""`tunelab predict` on infer_backend: vllm (a stand-in `vllm` module, a machine that says it has vLLM and a GPU):
the same prompts as token ids, the run's adapter as the LoRA, the same predictions file; no Hugging Face model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tunelab.runtime import env

from . import fake_vllm


def test_predict_on_vllm(tmp_path: Path, tiny_model_dir: Path, tiny_tokenizer: Any, make_dataset: Any,
                         monkeypatch: pytest.MonkeyPatch) -> None:
    from peft import LoraConfig, get_peft_model

    from tests.conftest import make_llama
    from tunelab.interfaces.cli import main

    fake_vllm.install(monkeypatch)
    monkeypatch.setattr(env, "package_version", lambda name: "0.11.0" if name == "vllm" else None)
    monkeypatch.setattr(env, "cuda_available", lambda: True)
    monkeypatch.setattr("tunelab.infer.load.load_model", lambda *a, **k: pytest.fail("vllm runs load no HF model"))
    eos = tiny_tokenizer.convert_tokens_to_ids("<|im_end|>")
    monkeypatch.setattr(fake_vllm.LLMEngine, "script",
                        tiny_tokenizer("Paris", add_special_tokens=False)["input_ids"] + [eos])
    adapter = tmp_path / "adapter"
    get_peft_model(make_llama(len(tiny_tokenizer)), LoraConfig(r=4, target_modules=["q_proj"])).save_pretrained(
        adapter)
    make_dataset([{"instruction": "Capital of France?", "output": "Paris"}, {"instruction": "Hi", "output": "Hello"}])
    config = tmp_path / "predict.yaml"
    config.write_text(f"model_name_or_path: {tiny_model_dir}\nadapter_name_or_path: {adapter}\neval_dataset: demo\n"
                      f"dataset_dir: {tmp_path / 'data'}\noutput_dir: {tmp_path / 'out'}\ninfer_backend: vllm\n"
                      "vllm_maxlen: 1024\n", encoding="utf-8")
    added: list[Any] = []
    original = fake_vllm.LLMEngine.add_request
    monkeypatch.setattr(fake_vllm.LLMEngine, "add_request", lambda self, rid, prompt, params, lora_request=None: (
        added.append((prompt, params, lora_request)), original(self, rid, prompt, params, lora_request=lora_request)))
    assert main(["predict", str(config)]) == 0
    rows = [json.loads(line) for line in (tmp_path / "out" / "generated_predictions.jsonl").read_text().splitlines()]
    assert sorted(r["predict"] for r in rows) == ["Paris", "Paris"] and {r["label"] for r in rows} == {"Paris", "Hello"}
    engine = fake_vllm.LLMEngine.last
    assert engine.args["model"] == str(tiny_model_dir) and engine.args["max_model_len"] == 1024
    assert engine.args["enable_lora"] and engine.args["max_lora_rank"] == 32
    prompts = {tuple(p["prompt_token_ids"]) for p, _, _ in added}
    expected = {tuple(tiny_tokenizer.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True,
                                                         tokenize=True, return_dict=True)["input_ids"])
                for q in ("Capital of France?", "Hi")}
    assert prompts == expected  # our chat-template render, as token ids
    assert all(lora.lora_name == "default" and lora.lora_path == str(adapter) for _, _, lora in added)
    assert all(params.temperature == 0.0 and eos in params.stop_token_ids for _, params, _ in added)  # greedy


def test_vllm_serves_one_adapter_per_request(tmp_path: Path, tiny_model_dir: Path, tiny_tokenizer: Any,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from peft import LoraConfig, get_peft_model

    from tests.conftest import make_llama
    from tunelab.config.load import build
    from tunelab.infer.backends.vllm import VllmError
    from tunelab.infer.backends.vllm_load import load_vllm
    from tunelab.model.adapter_set import NamedAdapter

    fake_vllm.install(monkeypatch)
    folders = []
    for name, rank in (("a", 4), ("b", 64)):
        folder = tmp_path / name
        get_peft_model(make_llama(len(tiny_tokenizer)), LoraConfig(r=rank, target_modules=["q_proj"])).save_pretrained(
            folder)
        folders.append(folder)
    stacked = build({"model_name_or_path": str(tiny_model_dir), "adapter_name_or_path": f"{folders[0]},{folders[1]}",
                     "infer_backend": "vllm"}, purpose="infer")
    with pytest.raises(VllmError, match="vllm applies one adapter per request, not 2 stacked ones"):
        load_vllm(stacked)
    base = build({"model_name_or_path": str(tiny_model_dir), "infer_backend": "vllm"}, purpose="infer")
    with pytest.raises(VllmError, match="adapter b has rank 64 but vllm_max_lora_rank is 32"):
        load_vllm(base, [NamedAdapter("a", folders[0]), NamedAdapter("b", folders[1])])
    served = load_vllm(base, [NamedAdapter("a", folders[0])])
    assert served.backend.loras.pick("a").lora_path == str(folders[0]) and served.backend.loras.pick(None) is None
    assert fake_vllm.LLMEngine.last.args["max_loras"] == 1
