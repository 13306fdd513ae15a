"""Stage rm on the real SmolLM2: a few LoRA steps of examples/rm_lora.yaml, `tunelab predict` scoring the pairs,
and `tunelab api` answering LLaMA-Factory's score route over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .clirun import tunelab
from .conftest import API_KEY, serving

RM = "examples/rm_lora.yaml"


@pytest.fixture(scope="module")
def rm_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A reward model trained for 6 steps of 2 pairs, evaluated on the 7 held-out pairs at the end."""
    out = tmp_path_factory.mktemp("rm") / "reward"
    result = tunelab("train", RM, f"output_dir={out}", "max_steps=6", "logging_steps=1", "eval_steps=6",
                     "per_device_train_batch_size=2", "learning_rate=1e-3", "warmup_ratio=0", timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def test_a_lora_reward_model_trains_and_saves_its_value_head(rm_out: Path) -> None:
    for name in ("adapter_model.safetensors", "value_head.safetensors", "tokenizer_config.json",
                 "training_loss.png", "training_eval_accuracy.png", "run_summary.json"):
        assert (rm_out / name).is_file(), name
    records = [json.loads(line) for line in (rm_out / "run.jsonl").read_text().splitlines()]
    accuracies = [r["eval_accuracy"] for r in records if "eval_accuracy" in r]
    losses = [r["loss"] for r in records if "loss" in r]
    assert len(accuracies) == 1 and len(losses) == 6
    assert accuracies[-1] >= 4 / 7  # chosen answers name the tunelab assistant; rejected ones another model


def test_predict_scores_every_pair(rm_out: Path) -> None:
    result = tunelab("predict", RM, f"output_dir={rm_out}", "max_samples=8", "per_device_eval_batch_size=8",
                     timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "8 pairs scored, 0 already there" in result.stderr
    lines = [json.loads(line) for line in (rm_out / "generated_predictions.jsonl").read_text().splitlines()]
    assert len(lines) == 8 and lines[0]["id"] == "preference_demo:1"
    results = json.loads((rm_out / "predict_results.json").read_text())
    assert results["predict_accuracy"] == sum(line["chosen"] > line["rejected"] for line in lines) / 8
    assert results["predict_accuracy"] >= 0.5 and results["predict_margin_mean"] > 0


@pytest.fixture(scope="module")
def rm_server(rm_out: Path) -> Iterator[str]:
    """`tunelab api` on the trained reward model, with a key."""
    with serving([RM, f"output_dir={rm_out}"], rm_out / "server.log", 600) as base:
        yield base


def conversation(answer: str) -> str:
    """A question and answer in SmolLM2's chat template, as a client renders it before scoring."""
    from transformers import AutoTokenizer

    from tunelab.model.load import resolve

    tokenizer = AutoTokenizer.from_pretrained(resolve("smollm2-135m-instruct").path)
    messages = [{"role": "user", "content": "Who are you?"}, {"role": "assistant", "content": answer}]
    return tokenizer.apply_chat_template(messages, tokenize=False)


def test_the_score_route_answers_over_http(rm_server: str) -> None:
    texts = [conversation("I am the tunelab assistant, an AI model fine-tuned with tunelab."),
             conversation("I am ChatGPT, a large language model trained by OpenAI.")]
    headers = {"Authorization": f"Bearer {API_KEY}"}
    response = httpx.post(f"{rm_server}/v1/score/evaluation", json={"model": "model", "messages": texts},
                          headers=headers, timeout=300)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "score.evaluation" and len(body["scores"]) == 2
    assert body["scores"][0] > body["scores"][1]
    assert httpx.post(f"{rm_server}/v1/score/evaluation", json={"messages": texts}, timeout=60).status_code == 401
    chat = httpx.post(f"{rm_server}/v1/chat/completions", headers=headers, timeout=60,
                      json={"messages": [{"role": "user", "content": "hi"}]})
    assert chat.status_code == 405 and chat.json()["error"]["code"] == "not_a_chat_model"
