"""Evaluation of a causal LM on labelled tokens: the loss and the token accuracy (argmax = label) from one
forward pass, chunk by chunk, without full-vocabulary logits for unlabelled positions."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from tunelab.data.encode.cutoff import IGNORE_INDEX
from tunelab.train.loss import labelled_hidden, supports_selective_loss

if TYPE_CHECKING:
    from peft import PeftModel
    from transformers import PreTrainedModel

CHUNK_TOKENS = 512


def selective_counts(model: PreTrainedModel | PeftModel,
                     inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(sum of token cross-entropies, correct argmax predictions, labelled tokens) through the output head only
    where there are labels."""
    hidden, labels, weight = labelled_hidden(model, inputs)
    loss = torch.zeros((), device=hidden.device)
    correct = torch.zeros((), dtype=torch.long, device=hidden.device)
    for start in range(0, hidden.shape[0], CHUNK_TOKENS):
        logits = (hidden[start:start + CHUNK_TOKENS] @ weight.to(hidden.dtype).T).float()
        target = labels[start:start + CHUNK_TOKENS]
        loss += F.cross_entropy(logits, target, reduction="sum")
        correct += (logits.argmax(-1) == target).sum()
    return loss, correct, torch.tensor(labels.shape[0], device=hidden.device)


def logits_counts(model: PreTrainedModel | PeftModel,
                  inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The same counts from the model's full logits (models whose head the selective path cannot take)."""
    model_inputs = {key: value for key, value in inputs.items() if key != "labels"}
    logits = model(**model_inputs, use_cache=False).logits[:, :-1].float()
    labels = inputs["labels"][:, 1:]
    keep = labels != IGNORE_INDEX
    loss = F.cross_entropy(logits[keep], labels[keep], reduction="sum")
    return loss, (logits.argmax(-1)[keep] == labels[keep]).sum(), keep.sum()


def eval_counts(model: PreTrainedModel | PeftModel,
                inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss sum, correct, labelled tokens) for one evaluation batch."""
    return (selective_counts if supports_selective_loss(model) else logits_counts)(model, inputs)
