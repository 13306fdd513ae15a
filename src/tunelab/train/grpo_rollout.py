"""GRPO's sampling: num_generations answers per prompt through the engine's decoding loop, and the batch the loss
is computed on (prompt + answer, the answer's tokens labelled).

Each answer has its own seed, made from the run's seed, the step, the micro-batch, the prompt and the answer's
number, so a resumed run samples exactly what the uninterrupted run would have.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from tunelab.config.schema import InferSection
from tunelab.data.encode.cutoff import IGNORE_INDEX
from tunelab.data.tokenizer import Tokenizer
from tunelab.infer.batch_generate import GenRequest, GenResult, generate
from tunelab.infer.protocols import CausalLM

SEED_MODULUS = 2**62


@dataclass(frozen=True)
class Rollout:
    """The sampled answers of one micro-batch and the batch to score them on."""

    batch: dict[str, torch.Tensor]  # input_ids, attention_mask, labels: prompt + answer, right-padded
    completions: list[str]
    prompts: list[str]  # one per answer (each prompt repeated num_generations times)
    references: list[str | None]  # likewise
    lengths: list[int]  # tokens of each answer (its stop token included)


def answer_seed(seed: int, step: int, micro: int, index: int) -> int:
    """The seed of one sampled answer: index counts answers within the micro-batch."""
    return (((seed * 1_000_003 + step) * 1_009 + micro) * 100_003 + index) % SEED_MODULUS


def prompt_ids(batch: dict[str, torch.Tensor]) -> list[list[int]]:
    """The left-padded prompts of a PromptCollator batch without their padding."""
    return [row[mask.bool()].tolist() for row, mask in zip(batch["input_ids"], batch["attention_mask"])]


def reference_texts(labels: torch.Tensor, tokenizer: Tokenizer) -> list[str | None]:
    """Each row's reference answer as text (None when the row has none): the labelled ids decoded, special tokens
    (the end of turn) left out."""
    texts = []
    for row in labels:
        text = tokenizer.decode(row[row != IGNORE_INDEX].tolist(), skip_special_tokens=True).strip()
        texts.append(text or None)
    return texts


def requests(prompts: list[list[int]], group: int, settings: InferSection, stops: frozenset[int],
             seeds: Sequence[int]) -> list[GenRequest]:
    """group sampled requests per prompt, in prompt order, each with its own seed."""
    return [GenRequest(prompt, settings.max_new_tokens, do_sample=True, temperature=settings.temperature,
                       top_p=settings.top_p, top_k=settings.top_k, repetition_penalty=settings.repetition_penalty,
                       stop_token_ids=stops, seed=seeds[i * group + g])
            for i, prompt in enumerate(prompts) for g in range(group)]


def answer_tokens(result: GenResult, stop_id: int) -> list[int]:
    """An answer's tokens as trained: the stop token is learned too when the answer stopped by itself."""
    return result.token_ids + ([stop_id] if result.finish_reason == "stop" else [])


def completion_batch(prompts: list[list[int]], answers: list[list[int]], group: int, pad_id: int,
                     device: torch.device) -> dict[str, torch.Tensor]:
    """prompt + answer rows, right-padded (positions count from each row's first token, as when sampling), only
    the answers labelled."""
    rows = [prompts[i // group] + answer for i, answer in enumerate(answers)]
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (row, answer) in enumerate(zip(rows, answers)):
        ids[i, :len(row)] = torch.tensor(row)
        mask[i, :len(row)] = 1
        if answer:
            labels[i, len(row) - len(answer):len(row)] = torch.tensor(answer)
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device), "labels": labels.to(device)}


def roll_out(model: CausalLM, tokenizer: Tokenizer, batch: dict[str, torch.Tensor], group: int,
             settings: InferSection, stops: frozenset[int], seeds: Sequence[int]) -> Rollout:
    """Sample group answers per prompt of a PromptCollator batch and build the batch the loss reads."""
    prompts = prompt_ids(batch)
    results = generate(model, requests(prompts, group, settings, stops, seeds), tokenizer.pad_token_id)
    stop_id = tokenizer.eos_token_id if tokenizer.eos_token_id in stops or not stops else min(stops)
    answers = [answer_tokens(result, stop_id) for result in results]
    device = batch["input_ids"].device
    texts = [tokenizer.decode(result.token_ids, skip_special_tokens=True) for result in results]
    prompt_texts = [tokenizer.decode(p, skip_special_tokens=True) for p in prompts]
    references = reference_texts(batch["labels"], tokenizer)
    return Rollout(batch=completion_batch(prompts, answers, group, tokenizer.pad_token_id, device),
                   completions=texts, prompts=[prompt_texts[i // group] for i in range(len(answers))],
                   references=[references[i // group] for i in range(len(answers))],
                   lengths=[len(answer) for answer in answers])
