"""Scoring with a trained reward model (stage rm): a value head over a causal LM, loaded from an rm output folder.

A sequence's score is the value head's output at its last real token, as LLaMA-Factory 0.9.5 scores sequences
(trainer, predict and its `/v1/score/evaluation` route alike). Here the last real token is the last position
whose attention mask is 1 and positions are counted over real tokens only, so a row scores the same with left
padding, right padding or none.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tunelab.model import adapters as adapter_io
from tunelab.model.load import ModelError, load_model, load_tokenizer, resolve
from tunelab.model.value_head import ValueHeadError, ValueHeadModel, has_value_head, read_value_head
from tunelab.runtime.names import split_names

if TYPE_CHECKING:  # imported where used: the CLI starts without loading torch or transformers
    import torch
    from transformers import PreTrainedTokenizerBase

DTYPES = ("float32", "bfloat16", "float16")

__all__ = ["DTYPES", "RewardScorer", "ValueHeadError", "head_folder", "load_reward_scorer", "pad_right",
           "score_values"]


def score_values(values: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """[batch] the value at each row's last position whose mask is 1 (any padding side), in float32."""
    import torch

    positions = torch.arange(attention_mask.shape[-1], device=attention_mask.device)
    last = (attention_mask.long() * (positions + 1)).argmax(dim=-1, keepdim=True)
    return values.gather(-1, last).squeeze(-1).float()


def pad_right(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask) of token rows padded on the right to the longest."""
    import torch

    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for index, row in enumerate(rows):
        ids[index, :len(row)] = torch.tensor(row, dtype=torch.long)
        mask[index, :len(row)] = 1
    return ids, mask


class RewardScorer:
    """A loaded reward model: `model` (a ValueHeadModel in eval mode) and `tokenizer` (with its chat template)."""

    def __init__(self, model: ValueHeadModel, tokenizer: PreTrainedTokenizerBase) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer

    @property
    def device(self) -> torch.device:
        """Where the model's weights are (inputs are moved there)."""
        return self.model.v_head.summary.weight.device

    def max_length(self) -> int:
        """The longest input scored without truncation: the model's max_position_embeddings (1024 unknown)."""
        config = getattr(adapter_io.base_model(self.model.pretrained_model), "config", None)
        return int(getattr(config, "max_position_embeddings", None) or 1024)

    def score_ids(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """[batch] float32 scores of token rows (padded on either side), without gradients, on the model's device."""
        import torch

        ids, mask = input_ids.to(self.device), attention_mask.to(self.device)
        positions = (mask.long().cumsum(-1) - 1).clamp(min=0)  # left padding does not shift the positions
        with torch.no_grad():
            values = self.model(input_ids=ids, attention_mask=mask, position_ids=positions)
        return score_values(values, mask)

    def score_texts(self, texts: list[str], max_length: int | None = None, batch_size: int = 8) -> list[float]:
        """Scores of already-templated texts (no special tokens added), each cut to max_length tokens (default:
        the model's max_position_embeddings) as LLaMA-Factory's score route cuts them."""
        limit = max_length or self.max_length()
        rows = [ids[:limit] for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"]]
        empty = [index for index, row in enumerate(rows) if not row]
        if empty:
            raise ValueError(f"text {empty[0]} has no tokens; a reward model scores non-empty texts only")
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        scores: list[float] = []
        for start in range(0, len(rows), batch_size):
            ids, mask = pad_right(rows[start:start + batch_size], pad_id)
            scores.extend(float(score) for score in self.score_ids(ids, mask))
        return scores

    def score_pairs(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(chosen, rejected) [pairs] scores of a PairCollator batch (chosen rows first, then rejected)."""
        scores = self.score_ids(batch["input_ids"], batch["attention_mask"])
        half = scores.shape[0] // 2
        return scores[:half], scores[half:]


def head_folder(model_path: Path, adapter_paths: str | None) -> Path:
    """Where the value head must be: the last adapter folder, else the model folder."""
    return Path(split_names(adapter_paths)[-1]) if adapter_paths else model_path


def not_a_reward_model(folder: Path, adapter_paths: str | None) -> ValueHeadError:
    """The error for a folder without a value head, saying what to give instead."""
    where = "the last folder of reward_model_adapters/adapter_name_or_path" if adapter_paths else "the model folder"
    return ValueHeadError(f"{folder} is not a reward model: {where} has no value_head.safetensors; give the "
                          "output_dir of a stage: rm run (a LoRA rm run: the base model plus its output_dir as "
                          "adapters; a full or freeze rm run: its output_dir as the model)")


def load_reward_scorer(model_name_or_path: str, adapters: str | None, template: str | None,
                       trust_remote_code: bool = False, dtype: str = "float32",
                       cache_dir: str | None = None) -> RewardScorer:
    """A reward model ready to score: the base model (with the rm run's LoRA adapters merged in when given) and the
    value head of the last adapter folder, or of the model folder itself for a full/freeze rm run. The folder is
    checked for a value head before any weights load."""
    import torch

    if dtype not in DTYPES:
        raise ModelError(f"reward model dtype {dtype!r}: use one of {', '.join(DTYPES)}")
    source = resolve(model_name_or_path, cache_dir)
    folder = head_folder(source.path, adapters)
    if adapters:
        adapter_io.adapter_folders(adapters)  # each must hold adapter_config.json
    if not has_value_head(folder):
        raise not_a_reward_model(folder, adapters)
    state = read_value_head(folder)
    # the rm run saved its tokenizer (and the chat template it trained with) next to its adapter and head
    tokenizer_dir = folder if (folder / "tokenizer_config.json").is_file() else source.path
    tokenizer = load_tokenizer(tokenizer_dir, template, trust_remote_code)
    model = load_model(source.path, getattr(torch, dtype), trust_remote_code)
    if adapters:
        model = adapter_io.load_adapters(model, adapters).merge_and_unload()
    head_model = ValueHeadModel(model, dropout=0.0)
    head_model.load_head_state(state, folder)
    return RewardScorer(head_model, tokenizer)
