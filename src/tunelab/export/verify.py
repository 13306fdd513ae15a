"""The proof at export time: the exported model against base + adapters on a few prompts (greedy answers through
tunelab's decoding loop, and the largest logit difference over prompt and answer). The reference is measured
before the merge; each exported output (the merged folder, later a GGUF file) is one entry of the report."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, TypedDict

from tunelab.data.render import generation_prompt
from tunelab.infer.batch_generate import GenRequest, generate

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

VERIFY_PROMPTS = (
    "Who are you?",
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "Explain in one sentence what a neural network is.",
    "List three colours.",
)
VERIFY_NEW_TOKENS = 32


class VerifyEntry(TypedDict):
    """One exported output checked against base + adapters."""

    output: str  # what was checked: "merged model", later "gguf q8_0", ...
    path: str
    dtype: str
    prompts: int
    greedy_equal: int
    max_abs_logit_diff: float
    prompts_equal: bool  # the output's tokenizer renders the prompts to the same ids
    differing: list[dict[str, str]]  # prompt, reference answer, exported answer


@dataclass
class Probe:
    """Base + adapters on the verify prompts: their greedy answers, and the logits over prompt + answer."""

    prompts: list[str]
    system: str | None
    sequences: list[list[int]]
    answers: list[list[int]]
    logits: list[torch.Tensor]


def prompt_ids(tokenizer: PreTrainedTokenizerBase, prompts: list[str], system: str | None) -> list[list[int]]:
    """Each prompt as a one-turn conversation through the chat template, ending with the generation prompt."""
    head = [{"role": "system", "content": system}] if system else []
    return [generation_prompt(tokenizer, head + [{"role": "user", "content": p}])[1] for p in prompts]


def greedy(model: PreTrainedModel, ids: list[list[int]], stop_ids: frozenset[int], pad_id: int) -> list[list[int]]:
    """Greedy answers (stop token left out) through tunelab's decoding loop."""
    requests = [GenRequest(input_ids=row, max_new_tokens=VERIFY_NEW_TOKENS, stop_token_ids=stop_ids) for row in ids]
    return [result.token_ids for result in generate(model, requests, pad_id)]


def sequence_logits(model: PreTrainedModel, sequences: list[list[int]]) -> list[torch.Tensor]:
    """float32 logits of each sequence, one forward each (no padding to differ between models)."""
    import torch

    device = next(model.parameters()).device
    with torch.no_grad():
        return [model(input_ids=torch.tensor([row], device=device)).logits[0].float().cpu() for row in sequences]


def reference_probe(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, system: str | None,
                    stop_ids: frozenset[int], prompts: tuple[str, ...] = VERIFY_PROMPTS) -> Probe:
    """Measure base + adapters (before the merge changes the weights)."""
    ids = prompt_ids(tokenizer, list(prompts), system)
    answers = greedy(model, ids, stop_ids, pad_id(tokenizer))
    sequences = [row + answer for row, answer in zip(ids, answers)]
    return Probe(list(prompts), system, sequences, answers, sequence_logits(model, sequences))


def pad_id(tokenizer: PreTrainedTokenizerBase) -> int:
    """The pad id the decoding loop fills finished rows with."""
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return pad if pad is not None else 0


def compare(reference: Probe, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, output: str, path: str,
            stop_ids: frozenset[int]) -> VerifyEntry:
    """The exported model and its tokenizer against the reference: prompts rendered to the same ids, greedy answers
    equal, and the largest logit difference."""
    ids = [seq[: len(seq) - len(answer)] for seq, answer in zip(reference.sequences, reference.answers)]
    same_prompts = prompt_ids(tokenizer, reference.prompts, reference.system) == ids
    answers = greedy(model, ids, stop_ids, pad_id(tokenizer))
    logits = sequence_logits(model, reference.sequences)
    diff = max(float((a - b).abs().max()) for a, b in zip(reference.logits, logits))
    differing = [{"prompt": prompt, "reference": tokenizer.decode(ref), "exported": tokenizer.decode(got)}
                 for prompt, ref, got in zip(reference.prompts, reference.answers, answers) if ref != got]
    return VerifyEntry(output=output, path=path, dtype=str(next(model.parameters()).dtype).removeprefix("torch."),
                       prompts=len(ids), greedy_equal=len(ids) - len(differing), max_abs_logit_diff=diff,
                       prompts_equal=same_prompts, differing=differing)
