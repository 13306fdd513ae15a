"""`tunelab api --adapters` on the real SmolLM2: two saved LoRA adapters and the base model served at once; each
model id answers (greedy, its rows sharing batches with the other ids' rows) as that adapter alone answers."""

from __future__ import annotations

import threading
from pathlib import Path

import openai
import pytest

from .clirun import QUICKSTART
from .conftest import API_KEY, serving

BASE = "smollm2-135m-instruct"
QUESTIONS = ["What is the capital of France?", "Name a fruit."]
MAX_TOKENS = 10


def save_lora(model: object, folder: Path, seed: int) -> Path:
    """A random (non-zero) LoRA on SmolLM2, saved as a training run saves one: it changes the answers."""
    import torch
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    config = LoraConfig(r=4, lora_alpha=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    peft_model = get_peft_model(model, config)
    peft_model.save_pretrained(folder)
    peft_model.unload()  # the base weights stay as they were: the next adapter starts from the plain model
    return folder


def alone(folders: dict[str, Path]) -> dict[str, dict[str, str]]:
    """Each id's greedy answers from Hugging Face generate() on the base model with only that adapter."""
    import torch
    from peft import PeftModel

    from tunelab.data.render import generation_prompt
    from tunelab.infer.batch_generate import stop_token_ids
    from tunelab.model.load import load_model, load_tokenizer, resolve

    path = resolve(BASE).path
    tokenizer, model = load_tokenizer(path, "smollm2"), load_model(path, torch.float32).eval()
    stops = sorted(stop_token_ids(tokenizer, model))

    def answer(lm: object, question: str) -> str:
        ids = torch.tensor([generation_prompt(tokenizer, [{"role": "user", "content": question}])[1]])
        with torch.no_grad():
            out = lm.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=MAX_TOKENS,
                              do_sample=False, eos_token_id=stops, pad_token_id=stops[0])
        return tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip()

    expected = {BASE: {q: answer(model, q) for q in QUESTIONS}}
    for name, folder in folders.items():
        peft_model = PeftModel.from_pretrained(model, str(folder)).eval()
        expected[name] = {q: answer(peft_model, q) for q in QUESTIONS}
        model = peft_model.unload()
    return expected


def answers(base_url: str, model: str) -> dict[str, str]:
    """Each question's greedy answer from one model id, the questions asked concurrently."""
    client = openai.OpenAI(base_url=f"{base_url}/v1", api_key=API_KEY, max_retries=0, timeout=300)
    got: dict[str, str] = {}

    def ask(question: str) -> None:
        reply = client.chat.completions.create(model=model, messages=[{"role": "user", "content": question}],
                                               max_tokens=MAX_TOKENS, temperature=0)
        assert reply.model == model
        got[question] = reply.choices[0].message.content.strip()

    threads = [threading.Thread(target=ask, args=(q,)) for q in QUESTIONS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return got


@pytest.fixture(scope="module")
def adapters(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import torch

    from tunelab.model.load import load_model, resolve

    out = tmp_path_factory.mktemp("adapters")
    model = load_model(resolve(BASE).path, torch.float32)
    return {"sql": save_lora(model, out / "sql", 1), "chat": save_lora(model, out / "chat", 2)}


def test_each_id_answers_like_its_adapter_alone(adapters: dict[str, Path], tmp_path: Path) -> None:
    expected = alone(adapters)
    assert expected["sql"] != expected[BASE] and expected["chat"] != expected["sql"]  # the adapters matter
    spec = ",".join(f"{name}={folder}" for name, folder in adapters.items())
    args = [QUICKSTART, f"output_dir={tmp_path / 'none'}", "cutoff_len=512", "--adapters", spec]
    with serving(args, tmp_path / "server.log", 180) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key=API_KEY, max_retries=0)
        assert [m.id for m in client.models.list()] == [BASE, "sql", "chat"]
        together: dict[str, dict[str, str]] = {}
        threads = [threading.Thread(target=lambda m=m: together.__setitem__(m, answers(url, m))) for m in expected]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert together["sql"] == expected["sql"]  # the active adapter: what an engine that ignores the field gives
    assert together == expected
