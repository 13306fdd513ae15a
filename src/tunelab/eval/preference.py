"""Preference evaluation: does the model rank the chosen answer of each held-out pair above the rejected one?

A policy ranks by sequence log-probability: the sum of log p over the answer's tokens (the prompt is masked, as in
training). The sum is the log-probability of generating exactly that answer, the quantity DPO's implicit reward is
built on, so the share it orders correctly is what preference training moves. A sum favours the shorter answer
(every token adds a negative term), so the length-normalised share (mean log p per answer token) is reported too:
where the two disagree, length decides the raw share.

A model with adapters is also scored as DPO defines its implicit reward, against the same weights with the adapter
disabled (the reference of a LoRA DPO run): r = beta * (log p_policy - log p_reference) per answer; reward accuracy
is the share with r_chosen > r_rejected, reward margin the mean r_chosen - r_rejected (TRL's rewards/accuracies
and rewards/margins). A tie is not a preference: it counts as wrong.

A reward model (a stage rm output folder: its value head next to the adapter or model) is scored by its own
scores instead, at each sequence's last token (infer/score.py's RewardScorer): accuracy is the share where
score(chosen) > score(rejected), margin the mean score difference.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, ContextManager

from tunelab.config.schema import DataSection
from tunelab.data.collate import PairCollator
from tunelab.data.dataset import sample_encoder
from tunelab.data.encode.cutoff import IGNORE_INDEX
from tunelab.data.encode import pair
from tunelab.data.examples import Pair
from tunelab.data.store import encode_records
from tunelab.data.tokenizer import Tokenizer
from tunelab.eval.results import Row, mean

if TYPE_CHECKING:
    from pathlib import Path

    import torch
    from peft import PeftModel
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from tunelab.infer.score import RewardScorer


@dataclass(frozen=True)
class PairLogps:
    """Summed answer log-probabilities of one pair and the answer token counts."""

    chosen: float
    rejected: float
    chosen_tokens: int
    rejected_tokens: int

    @property
    def margin(self) -> float:
        """log p(chosen) - log p(rejected)."""
        return self.chosen - self.rejected

    @property
    def normalised_margin(self) -> float:
        """Mean log p per token of chosen minus that of rejected."""
        return self.chosen / self.chosen_tokens - self.rejected / self.rejected_tokens


@dataclass(frozen=True)
class EncodedPairs:
    """The pairs' ids and labels as the dpo stage encodes them (prompt masked, shared cutoff), and how many were
    truncated to cutoff_len."""

    ids: list[str]
    rows: list[dict[str, list[int]]]
    truncated: int


def encode_pairs(records: list[Pair], tokenizer: Tokenizer, data: DataSection) -> EncodedPairs:
    """Encode the pairs with the run's template and cutoff_len, as training encodes them."""
    chunks = encode_records(pair.encode_chunk, records, sample_encoder(tokenizer, data), data, "eval")
    rows = [dict(zip(pair.COLUMNS, values)) for chunk in chunks
            for values in zip(*(chunk.rows(column) for column in pair.COLUMNS))]
    truncated = sum(counts["truncated"] for chunk in chunks for counts in chunk.counts.values())
    return EncodedPairs([f"{r.dataset}:{r.row}" for r in records], rows, truncated)


def batches(rows: list[dict[str, list[int]]], size: int, pad_id: int) -> Iterator[dict[str, torch.Tensor]]:
    """PairCollator batches of `size` pairs: the chosen rows first, then the rejected ones."""
    collator = PairCollator(pad_id, multiple_of=1)
    for start in range(0, len(rows), size):
        yield collator(rows[start:start + size])


def model_device(model: PreTrainedModel | PeftModel) -> torch.device:
    """Where the model's weights are."""
    return next(model.parameters()).device


def pair_logps(model: PreTrainedModel | PeftModel, rows: list[dict[str, list[int]]], batch_size: int, pad_id: int,
               progress: Callable[[int, int], None] | None = None) -> list[PairLogps]:
    """Summed chosen and rejected answer log-probabilities of every pair, batch_size pairs at a time."""
    from tunelab.train.logps import sequence_logps

    device, out = model_device(model), []
    model.eval()
    for batch in batches(rows, batch_size, pad_id):
        sums, counts = sequence_logps(model, {key: value.to(device) for key, value in batch.items()})
        n = sums.shape[0] // 2
        out += [PairLogps(float(sums[i]), float(sums[n + i]), int(counts[i]), int(counts[n + i])) for i in range(n)]
        if progress is not None:
            progress(len(out), len(rows))
    return out


def reward_scorer(model: PreTrainedModel | PeftModel, tokenizer: PreTrainedTokenizerBase,
                  folder: Path) -> RewardScorer:
    """The loaded model with the value head of a stage rm output folder on top (the model is not loaded twice)."""
    from tunelab.infer.score import RewardScorer
    from tunelab.model.value_head import ValueHeadModel, read_value_head

    head_model = ValueHeadModel(model, dropout=0.0)
    head_model.load_head_state(read_value_head(folder), folder)
    return RewardScorer(head_model.to(model_device(model)), tokenizer)


def pair_scores(scorer: RewardScorer, rows: list[dict[str, list[int]]], batch_size: int, pad_id: int,
                progress: Callable[[int, int], None] | None = None) -> list[PairLogps]:
    """A reward model's scores of every pair's chosen and rejected sequence (in PairLogps' fields; token counts
    are the answers' labelled tokens)."""
    out: list[PairLogps] = []
    for batch in batches(rows, batch_size, pad_id):
        chosen, rejected = scorer.score_pairs(batch)
        counts = (batch["labels"][:, 1:] != IGNORE_INDEX).sum(dim=1)
        n = chosen.shape[0]
        out += [PairLogps(float(chosen[i]), float(rejected[i]), int(counts[i]), int(counts[n + i]))
                for i in range(n)]
        if progress is not None:
            progress(len(out), len(rows))
    return out


def has_adapters(model: PreTrainedModel | PeftModel) -> bool:
    """Whether the model carries PEFT adapters that can be switched off (a LoRA run's reference)."""
    return hasattr(model, "disable_adapter") and hasattr(model, "peft_config")


def adapters_disabled(model: PreTrainedModel | PeftModel) -> ContextManager[None]:
    """The model with its adapters switched off (the base weights): a LoRA DPO run's reference model."""
    return model.disable_adapter() if has_adapters(model) else nullcontext()


def preference_rows(ids: list[str], policy: list[PairLogps], reference: list[PairLogps] | None, beta: float,
                    measure: str = "logp") -> tuple[list[Row], list[str]]:
    """One result row per pair, and the ids of pairs with an answer cut to no tokens (they count as wrong).
    measure: logp (a policy's log-probabilities, with the length-normalised comparison) or score (a reward
    model's scores)."""
    rows: list[Row] = []
    empty: list[str] = []
    for index, (row_id, p) in enumerate(zip(ids, policy)):
        usable = p.chosen_tokens > 0 and p.rejected_tokens > 0
        if not usable:
            empty.append(row_id)
        row: Row = {"id": row_id, f"{measure}_chosen": p.chosen, f"{measure}_rejected": p.rejected,
                    "tokens_chosen": p.chosen_tokens, "tokens_rejected": p.rejected_tokens,
                    "margin": p.margin, "correct": usable and p.margin > 0}
        if measure == "logp":
            row["correct_normalised"] = usable and p.normalised_margin > 0
        if reference is not None:
            ref = reference[index]
            chosen_reward, rejected_reward = beta * (p.chosen - ref.chosen), beta * (p.rejected - ref.rejected)
            row.update(ref_logp_chosen=ref.chosen, ref_logp_rejected=ref.rejected, reward_chosen=chosen_reward,
                       reward_rejected=rejected_reward, reward_margin=chosen_reward - rejected_reward,
                       reward_correct=usable and chosen_reward > rejected_reward)
        rows.append(row)
    return rows, empty


def preference_metrics(rows: list[Row]) -> dict[str, float]:
    """accuracy (percent) and margin (mean nats, or score units for a reward model); accuracy_normalised
    (percent) for log-probabilities; reward_accuracy and reward_margin where the rows carry rewards. Every pair
    counts, an unusable one as wrong."""
    def share(key: str) -> float:
        return 100.0 * mean([float(bool(row[key])) for row in rows])

    metrics = {"accuracy": share("correct"), "margin": mean([float(row["margin"]) for row in rows])}
    if rows and "correct_normalised" in rows[0]:
        metrics["accuracy_normalised"] = share("correct_normalised")
    if rows and "reward_margin" in rows[0]:
        metrics.update(reward_accuracy=share("reward_correct"),
                       reward_margin=mean([float(row["reward_margin"]) for row in rows]))
    return metrics
