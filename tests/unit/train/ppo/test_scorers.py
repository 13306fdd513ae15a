"""Reward sources: the LoRA reward adapter switched in and out of the policy, a separate reward model, the API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from tunelab.train.ppo.rollout import build_rollout
from tunelab.train.ppo.scorers import AdapterScorer, ApiScorer, ModelScorer


def lora_policy(model_dir: Path) -> Any:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from tunelab.model.value_head import ValueHeadModel

    torch.manual_seed(3)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(model_dir),
                           LoraConfig(r=4, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
                                      task_type="CAUSAL_LM"))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.3)
    return ValueHeadModel(model, dropout=0.0)


def rollout() -> Any:
    return build_rollout([[5, 6, 7], [8, 9]], [[10, 11], [12, 13, 14]], pad_id=0, device=torch.device("cpu"))


def test_the_reward_adapter_switch_leaves_the_policy_unchanged(tiny_model_dir: Path,
                                                              reward_adapter_dir: Path) -> None:
    policy = lora_policy(tiny_model_dir)
    policy.train()
    batch = rollout()
    trainable = {name for name, p in policy.named_parameters() if p.requires_grad}
    with torch.no_grad():
        before = policy.pretrained_model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
    scorer = AdapterScorer(policy, reward_adapter_dir)
    scores = scorer.score(batch)
    with torch.no_grad():
        after = policy.pretrained_model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
    assert torch.equal(before, after) and policy.training
    assert {name for name, p in policy.named_parameters() if p.requires_grad} == trainable
    assert policy.pretrained_model.active_adapter == "default"
    assert not any("reward" in name for name in policy.state_dict() if "v_head" in name)
    # the same scores as the reward model loaded on its own (adapter merged into a second copy)
    from tunelab.infer.score import load_reward_scorer

    alone = load_reward_scorer(str(tiny_model_dir), str(reward_adapter_dir), None)
    expected = alone.score_ids(batch.input_ids, batch.attention_mask)
    assert torch.allclose(scores, expected, atol=1e-5) and scores.shape == (2,)


def test_a_separate_reward_model_scores_the_policy_tokens(tiny_model_dir: Path, reward_adapter_dir: Path) -> None:
    from tunelab.infer.score import load_reward_scorer

    alone = load_reward_scorer(str(tiny_model_dir), str(reward_adapter_dir), None)
    batch = rollout()
    scores = ModelScorer(alone).score(batch)
    assert torch.equal(scores, alone.score_ids(batch.input_ids, batch.attention_mask))


class Recorder:
    def __init__(self) -> None:
        self.texts: list[str] = []

    def score(self, texts: list[str]) -> list[float]:
        self.texts.extend(texts)
        return [float(len(text)) for text in texts]


def test_the_api_scorer_sends_whole_texts_with_special_tokens(tiny_tokenizer: Any) -> None:
    prompt = tiny_tokenizer.apply_chat_template([{"role": "user", "content": "Who are you?"}],
                                                add_generation_prompt=True, tokenize=True, return_dict=False)
    answer = tiny_tokenizer("I am tunelab", add_special_tokens=False)["input_ids"] + [tiny_tokenizer.eos_token_id]
    batch = build_rollout([list(prompt)], [answer], pad_id=tiny_tokenizer.pad_token_id,
                          device=torch.device("cpu"))
    client = Recorder()
    scores = ApiScorer(client, tiny_tokenizer).score(batch)
    assert client.texts == ["<|im_start|>user\nWho are you?<|im_end|>\n<|im_start|>assistant\nI am tunelab<|im_end|>"]
    assert scores.tolist() == [float(len(client.texts[0]))]
