"""Perplexity of a model on a text dataset: exp of the mean negative log-likelihood per predicted token.

Each text is tokenised with the tokenizer's own special tokens (a BOS where the model uses one) and cut
into windows of cutoff_len tokens; every token but the first of a window is predicted. The figure is
token-weighted over the whole dataset (long texts weigh more), and each row's own perplexity is listed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tunelab.data.read import read_rows
from tunelab.data.registry import lookup
from tunelab.eval.errors import EvalError
from tunelab.eval.results import Row
from tunelab.model.load import ModelBundle

if TYPE_CHECKING:
    from transformers import PreTrainedModel


@dataclass
class PerplexityResult:
    """Summed NLL and token counts, with each row's perplexity."""

    nll: float = 0.0
    tokens: int = 0
    rows: list[Row] = field(default_factory=list)

    @property
    def perplexity(self) -> float:
        """exp(total NLL / predicted tokens)."""
        return math.exp(self.nll / self.tokens) if self.tokens else float("nan")


def dataset_texts(name: str, dataset_dir: str, max_samples: int | None) -> list[tuple[str, str]]:
    """(id, text) of a registered text dataset: its `prompt` column (`columns: {prompt: text}` as for pt)."""
    entry = lookup([name], dataset_dir)[0]
    column = entry.entry.columns.prompt or "text"
    rows = read_rows(entry.path, entry.name)[: max_samples or None]
    texts = []
    for index, row in enumerate(rows):
        value = row.get(column) if isinstance(row, dict) else None
        if not isinstance(value, str) or not value.strip():
            raise EvalError(f"dataset {name!r} ({entry.path}), row {index}: no text in column {column!r}; "
                            "register the text column as columns: {prompt: <column>}")
        texts.append((f"{name}:{index}", value))
    return texts


def windows(ids: list[int], size: int) -> list[list[int]]:
    """Consecutive windows of at most `size` tokens; a last window of one token predicts nothing and is dropped."""
    return [ids[i:i + size] for i in range(0, len(ids), size) if len(ids[i:i + size]) > 1]


def window_nll(model: PreTrainedModel, batch: list[list[int]], pad: int) -> list[float]:
    """Summed NLL of each window of a right-padded batch."""
    import torch

    longest = max(len(w) for w in batch)
    input_ids = torch.tensor([w + [pad] * (longest - len(w)) for w in batch])
    mask = torch.tensor([[1] * len(w) + [0] * (longest - len(w)) for w in batch])
    with torch.inference_mode():
        logits = model(input_ids=input_ids, attention_mask=mask).logits.float()
    sums = []
    for row, w in enumerate(batch):
        targets = input_ids[row, 1:len(w)]
        sums.append(torch.nn.functional.cross_entropy(logits[row, :len(w) - 1], targets, reduction="sum").item())
    return sums


def perplexity(bundle: ModelBundle, texts: list[tuple[str, str]], cutoff_len: int, batch_size: int,
               progress: Callable[[int, int], None] | None = None) -> PerplexityResult:
    """Token-weighted perplexity over texts, windows batched by length."""
    tokenizer = bundle.tokenizer
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    pieces = []
    for row, (row_id, text) in enumerate(texts):
        for window in windows(tokenizer(text)["input_ids"], cutoff_len):
            pieces.append((row, window))
    pieces.sort(key=lambda piece: len(piece[1]), reverse=True)
    per_row = [[0.0, 0] for _ in texts]
    bundle.model.eval()
    for start in range(0, len(pieces), batch_size):
        chunk = pieces[start:start + batch_size]
        for (row, window), nll in zip(chunk, window_nll(bundle.model, [w for _, w in chunk], pad)):
            per_row[row][0] += nll
            per_row[row][1] += len(window) - 1
        if progress is not None:
            progress(min(start + batch_size, len(pieces)), len(pieces))
    result = PerplexityResult()
    for (row_id, _), (nll, count) in zip(texts, per_row):
        result.nll += nll
        result.tokens += count
        result.rows.append({"id": row_id, "tokens": count,
                            "perplexity": math.exp(nll / count) if count else None})
    return result
