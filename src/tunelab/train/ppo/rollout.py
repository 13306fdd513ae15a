"""Rollouts: answers generated for a batch of prompts with the engine's decoding loop, laid out for PPO's forward
passes (query + response rows padded on the right, and each response token's position), and the forward passes
that read log-probabilities and values on the response tokens only.

Only response positions reach the output head (as train/loss.py does for labels): [rows, length, vocabulary]
logits are never stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from tunelab.infer.batch_generate import GenRequest, SamplingFields, generate
from tunelab.model.adapters import base_model
from tunelab.train.logps import token_logps, token_logps_with_grad

if TYPE_CHECKING:
    from peft import PeftModel
    from transformers import PreTrainedModel

    from tunelab.model.value_head import ValueHead


@dataclass(frozen=True)
class Rollout:
    """Query + response rows. `positions[b, j]` is the index of the hidden state that predicts response token j
    of row b (the last query token for j = 0); `targets` are the response tokens, `mask` 1 where they are real."""

    input_ids: torch.Tensor  # [rows, length], padded on the right
    attention_mask: torch.Tensor  # [rows, length]
    positions: torch.Tensor  # [rows, response length]
    targets: torch.Tensor  # [rows, response length]
    mask: torch.Tensor  # [rows, response length] float32

    def select(self, rows: torch.Tensor) -> Rollout:
        """The rollout of some rows (a PPO mini-batch)."""
        return Rollout(self.input_ids[rows], self.attention_mask[rows], self.positions[rows], self.targets[rows],
                       self.mask[rows])

    def response_tokens(self) -> int:
        """The number of real response tokens."""
        return int(self.mask.sum())


def prompt_rows(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> list[list[int]]:
    """The prompts of a left-padded PromptCollator batch, padding removed."""
    return [row[keep.bool()].tolist() for row, keep in zip(input_ids, attention_mask)]


def generate_responses(model: PreTrainedModel | PeftModel, queries: list[list[int]], max_new_tokens: int,
                       sampling: SamplingFields, stop_ids: frozenset[int], pad_id: int) -> list[list[int]]:
    """One answer per query with the engine's loop; an answer that ended on a stop token keeps it (the policy
    learns to stop, as with TRL), and an empty answer is the stop token alone."""
    requests = [GenRequest(input_ids=query, max_new_tokens=max_new_tokens, stop_token_ids=stop_ids, **sampling)
                for query in queries]
    results = generate(model, requests, pad_id)
    return [result.token_ids + ([result.stop_token_id] if result.stop_token_id is not None else [])
            for result in results]


def build_rollout(queries: list[list[int]], responses: list[list[int]], pad_id: int,
                  device: torch.device) -> Rollout:
    """The rows query + response, padded on the right, with each response token's predicting position."""
    rows = [q + r for q, r in zip(queries, responses)]
    width, answer = max(len(row) for row in rows), max(len(r) for r in responses)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    positions = torch.zeros((len(rows), answer), dtype=torch.long)
    targets = torch.zeros((len(rows), answer), dtype=torch.long)
    mask = torch.zeros((len(rows), answer), dtype=torch.float32)
    for b, (query, response) in enumerate(zip(queries, responses)):
        ids[b, :len(rows[b])] = torch.tensor(rows[b])
        attention[b, :len(rows[b])] = 1
        n = len(response)
        positions[b, :n] = torch.arange(len(query) - 1, len(query) - 1 + n)
        positions[b, n:] = len(query) - 1  # padding positions point at a real state; masked out
        targets[b, :n] = torch.tensor(response)
        mask[b, :n] = 1.0
    return Rollout(ids.to(device), attention.to(device), positions.to(device), targets.to(device), mask.to(device))


def response_hidden(model: PreTrainedModel | PeftModel, rollout: Rollout) -> torch.Tensor:
    """[rows, response length, hidden] the decoder's last hidden states at the response-predicting positions."""
    decoder = base_model(model).get_decoder()
    hidden = decoder(input_ids=rollout.input_ids, attention_mask=rollout.attention_mask,
                     use_cache=False).last_hidden_state
    index = rollout.positions.unsqueeze(-1).expand(-1, -1, hidden.shape[-1])
    return hidden.gather(1, index)


def scatter_tokens(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-token values of the masked positions ([n], row-major) laid back out as [rows, response length]."""
    out = torch.zeros(mask.shape, dtype=values.dtype, device=values.device)
    return out.masked_scatter(mask.bool(), values)


def response_logps(model: PreTrainedModel | PeftModel, rollout: Rollout, hidden: torch.Tensor | None = None,
                   with_grad: bool = False) -> torch.Tensor:
    """[rows, response length] log p of each response token (0 where masked), float32."""
    if hidden is None:
        hidden = response_hidden(model, rollout)
    keep = rollout.mask.bool()
    weight = base_model(model).get_output_embeddings().weight
    compute = token_logps_with_grad if with_grad else token_logps
    return scatter_tokens(compute(hidden[keep], weight, rollout.targets[keep]), rollout.mask)


def policy_outputs(model: PreTrainedModel | PeftModel, head: ValueHead, rollout: Rollout,
                   with_grad: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(log-probs, values) [rows, response length] of the policy and its value head, from one decoder pass."""
    hidden = response_hidden(model, rollout)
    logps = response_logps(model, rollout, hidden, with_grad)
    values = head(hidden) * rollout.mask
    return logps, values
