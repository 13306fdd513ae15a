"""Where PPO's rewards come from (reward_model_type): a LoRA reward adapter on the policy's own base model (lora),
a separate reward model (full), or an HTTP score route (api). Each scores a rollout's query + response rows at the
last real token, as LLaMA-Factory 0.9.5 does, and returns [rows] float32 scores on the rollout's device."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import torch

from tunelab.model.adapters import base_model
from tunelab.model.value_head import KEYS, ValueHead, ValueHeadError, ValueHeadModel, last_token_values, read_value_head
from tunelab.train.ppo.rollout import Rollout

if TYPE_CHECKING:
    from peft import PeftModel
    from transformers import PreTrainedTokenizerBase

    from tunelab.infer.score import RewardScorer
    from tunelab.remote.score import ScoreClient

REWARD_ADAPTER = "reward"


class Scorer(Protocol):
    """Scores of a rollout's rows."""

    def score(self, rollout: Rollout) -> torch.Tensor:
        """[rows] float32 scores, without gradients."""
        ...


@contextmanager
def active_adapter(model: PeftModel, name: str) -> Iterator[None]:
    """Run with one adapter of a PeftModel active, then the previous one again; PEFT's set_adapter changes which
    weights require gradients, so those flags are put back as they were (the optimizer holds the policy's)."""
    trainable = {key for key, param in model.named_parameters() if param.requires_grad}
    previous = model.active_adapter
    model.set_adapter(name)
    try:
        yield
    finally:
        model.set_adapter(previous)
        for key, param in model.named_parameters():
            param.requires_grad_(key in trainable)


def reward_head(folder: Path, hidden_size: int) -> ValueHead:
    """The reward model's value head from its folder, frozen; keys and shape checked against the policy."""
    state = read_value_head(folder)
    missing = [key for key in KEYS if key not in state]
    if missing:
        raise ValueHeadError(f"{folder}: value head without {', '.join(missing)}; it was not written by a "
                             "reward-model run (stage: rm)")
    if tuple(state[KEYS[0]].shape) != (1, hidden_size):
        raise ValueHeadError(f"{folder}: value head of shape {tuple(state[KEYS[0]].shape)} does not fit the "
                             f"policy (hidden size {hidden_size}); the reward model was trained on another base model")
    head = ValueHead(hidden_size, dropout=0.0)
    head.load_state_dict({key.removeprefix("v_head."): state[key] for key in KEYS})
    return head.requires_grad_(False)


class AdapterScorer:
    """reward_model_type lora: the reward adapter (loaded next to the policy's as a second named adapter) and its
    value head, on the policy's own base weights: no second copy of the model."""

    def __init__(self, policy: ValueHeadModel, folder: Path) -> None:
        model = policy.pretrained_model
        model.load_adapter(str(folder), adapter_name=REWARD_ADAPTER, is_trainable=False)
        self.model = model
        self.head = reward_head(folder, base_model(model).config.hidden_size).to(policy.v_head.summary.weight.device)

    @torch.no_grad()
    def score(self, rollout: Rollout) -> torch.Tensor:
        """Scores with the reward adapter active; the policy's adapter is active again afterwards."""
        was_training = self.model.training
        self.model.eval()
        try:
            with active_adapter(self.model, REWARD_ADAPTER):
                hidden = base_model(self.model).get_decoder()(
                    input_ids=rollout.input_ids, attention_mask=rollout.attention_mask,
                    use_cache=False).last_hidden_state
        finally:
            self.model.train(was_training)
        self.head.to(hidden.device)  # the Trainer moves the policy after this scorer was built
        return last_token_values(self.head(hidden), rollout.attention_mask).float()


class ModelScorer:
    """reward_model_type full: a separate reward model, given the policy's token ids (same tokenizer)."""

    def __init__(self, scorer: RewardScorer) -> None:
        self.scorer = scorer

    def score(self, rollout: Rollout) -> torch.Tensor:
        """The reward model's scores, on the rollout's device."""
        self.scorer.model.to(rollout.input_ids.device)  # no-op once there
        return self.scorer.score_ids(rollout.input_ids, rollout.attention_mask).to(rollout.input_ids.device)


class ApiScorer:
    """reward_model_type api: the rows decoded to text (special tokens kept, as LLaMA-Factory sends them) and
    scored by an HTTP score route."""

    def __init__(self, client: ScoreClient, tokenizer: PreTrainedTokenizerBase) -> None:
        self.client = client
        self.tokenizer = tokenizer

    def score(self, rollout: Rollout) -> torch.Tensor:
        """The server's scores, in row order."""
        texts = [self.tokenizer.decode(row[keep.bool()].tolist(), skip_special_tokens=False)
                 for row, keep in zip(rollout.input_ids, rollout.attention_mask)]
        return torch.tensor(self.client.score(texts), dtype=torch.float32, device=rollout.input_ids.device)
