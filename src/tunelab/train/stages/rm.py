"""Reward modelling (stage rm): a value head on the (LoRA, freeze or full) causal LM, trained on preference pairs
with LLaMA-Factory 0.9.5's pairwise loss -log sigmoid(score_chosen - score_rejected), averaged over the pairs.

A sequence's score is the head's value at its last real token. Where the attention takes padding-free rows (as sft
uses them), a batch's sequences are one row of separate segments, else padded on the right. The head is always
trained, in float32. Evaluation reports eval_loss and eval_accuracy, the share of pairs whose chosen answer scores
strictly higher. The output folder and every checkpoint hold what LLaMA-Factory's fix_valuehead_checkpoint leaves:
the adapter (LoRA) or the model (freeze, full), value_head.safetensors and the tokenizer; a resumed run loads the
head back with the weights.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from tunelab.data.bundle import DataBundle
from tunelab.data.collate import PackedCollator, PairCollator
from tunelab.data.encode.cutoff import IGNORE_INDEX
from tunelab.model.adapters import base_model
from tunelab.model.attention import uses_packed_attention
from tunelab.model.load import ModelBundle
from tunelab.model.value_head import ValueHeadModel, last_token_values, read_value_head, save_value_head
from tunelab.train.outdir import RunError
from tunelab.train.trainer import Batch, TrainerOptions, TunelabTrainer

if TYPE_CHECKING:
    from peft import PeftModel
    from transformers import PreTrainedModel, PreTrainedTokenizerBase, TrainerCallback, TrainingArguments


@dataclass
class PackedPairCollator:
    """Pairs as one padding-free row (PackedCollator): the chosen sequences, then the rejected ones, each its own
    attention segment, so no padding is computed."""

    def __call__(self, examples: list[dict[str, list[int]]]) -> Batch:
        rows = [{"input_ids": e[f"{side}_input_ids"], "labels": e[f"{side}_labels"]}
                for side in ("chosen", "rejected") for e in examples]
        return PackedCollator(neat=True)(rows)


def pair_scores(model: torch.nn.Module, inputs: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """(chosen, rejected) scores of a PairCollator batch (chosen rows first, then the rejected ones, padded on the
    right) or of a PackedPairCollator row (the same sequences as segments): each sequence's last-token value."""
    if "cu_seq_lens_q" in inputs:
        features = {key: value for key, value in inputs.items() if key != "labels"}
        values = model(**features)
        scores = values[0, inputs["cu_seq_lens_q"][1:].long() - 1]
    else:
        values = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
        scores = last_token_values(values, inputs["attention_mask"])
    half = scores.shape[0] // 2
    return scores[:half], scores[half:]


def pairwise_loss(chosen: torch.Tensor, rejected: torch.Tensor) -> torch.Tensor:
    """Mean of -log sigmoid(chosen - rejected) over the pairs, in float32 (LLaMA-Factory's PairwiseTrainer)."""
    return -F.logsigmoid(chosen.float() - rejected.float()).mean()


def save_reward_model(model: ValueHeadModel, folder: Path, tokenizer: PreTrainedTokenizerBase | None) -> None:
    """The adapter or model, value_head.safetensors and the tokenizer in folder, as LLaMA-Factory saves them."""
    folder.mkdir(parents=True, exist_ok=True)
    model.pretrained_model.save_pretrained(str(folder))
    save_value_head(model, folder)
    if tokenizer is not None:
        tokenizer.save_pretrained(str(folder))


def saved_model_state(folder: Path) -> dict[str, torch.Tensor]:
    """The whole model's weights a freeze/full checkpoint saved (one safetensors file or its shards)."""
    from safetensors.torch import load_file

    index = folder / "model.safetensors.index.json"
    if index.is_file():
        files = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
    elif (folder / "model.safetensors").is_file():
        files = ["model.safetensors"]
    else:
        raise RunError(f"{folder}: no model.safetensors to resume the reward model from; resume from a checkpoint "
                       "a stage: rm run saved")
    state: dict[str, torch.Tensor] = {}
    for name in files:
        state.update(load_file(str(folder / name)))
    return state


def load_weights(pretrained: PreTrainedModel | PeftModel, folder: Path) -> None:
    """The adapter (LoRA) or the whole model's weights saved in folder, loaded in place."""
    if hasattr(pretrained, "peft_config"):
        from peft import set_peft_model_state_dict
        from peft.utils import load_peft_weights

        set_peft_model_state_dict(pretrained, load_peft_weights(str(folder), device="cpu"))
        return
    missing, unexpected = pretrained.load_state_dict(saved_model_state(folder), strict=False)
    tied = set(getattr(pretrained, "all_tied_weights_keys", None) or {}) | {"lm_head.weight"}
    if unexpected or set(missing) - tied:
        raise RunError(f"{folder}: its weights do not fit this model (missing {sorted(set(missing) - tied)[:3]}, "
                       f"unexpected {unexpected[:3]}); resume from a checkpoint of this run")


class RewardTrainer(TunelabTrainer):
    """TunelabTrainer with the pairwise loss, pair accuracy at evaluation and value-head saving and loading."""

    def compute_loss(self, model: torch.nn.Module, inputs: Batch, return_outputs: bool = False,
                     num_items_in_batch: torch.Tensor | int | None = None
                     ) -> torch.Tensor | tuple[torch.Tensor, Batch]:
        """The pairwise loss of the batch's pairs; trained tokens are both answers' tokens, as the data report counts."""
        if model.training:
            self.pending_tokens += int((inputs["labels"] != IGNORE_INDEX).sum())
        chosen, rejected = pair_scores(model, inputs)
        loss = pairwise_loss(chosen, rejected)
        return (loss, {"chosen": chosen, "rejected": rejected}) if return_outputs else loss

    def prediction_step(self, model: torch.nn.Module, inputs: Batch, prediction_loss_only: bool,
                        ignore_keys: list[str] | None = None
                        ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        """The batch's loss; its pair counts (chosen scored higher, pairs) go to eval_accuracy."""
        inputs = self.prepare_inputs(inputs)
        with torch.no_grad(), self.accelerator.autocast():
            chosen, rejected = pair_scores(model, inputs)
        self.eval_totals.append(torch.stack([(chosen > rejected).sum(), torch.tensor(chosen.shape[0],
                                                                                     device=chosen.device)]).long())
        return pairwise_loss(chosen, rejected).detach(), None, None

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        """The adapter or model, value_head.safetensors and the tokenizer (final folder and checkpoints alike)."""
        with self.weights_for_io():
            if self.args.should_save:
                save_reward_model(self.accelerator.unwrap_model(self.model), Path(output_dir or self.args.output_dir),
                                  self.processing_class)

    def load_own_weights(self, folder: str) -> bool:
        """A checkpoint's adapter or model and its value head, loaded into the training model."""
        model = self.accelerator.unwrap_model(self.model)
        load_weights(model.pretrained_model, Path(folder))
        model.load_head_state(read_value_head(Path(folder)), Path(folder))
        return True


def freeze_unused_output_head(model: PreTrainedModel | PeftModel) -> None:
    """The LM head is never run for scores: an untied one is frozen (no optimizer state, no unused DDP gradient)."""
    base = base_model(model)
    head, embeddings = base.get_output_embeddings(), base.get_input_embeddings()
    if head is not None and (embeddings is None or head.weight is not embeddings.weight):
        head.requires_grad_(False)


def build_trainer(model_bundle: ModelBundle, data_bundle: DataBundle, args: TrainingArguments,
                  callbacks: list[TrainerCallback], options: TrainerOptions | None = None) -> TunelabTrainer:
    """A RewardTrainer over a value-head model wrapped around the bundle's (already prepared) model (deepspeed and
    fsdp are refused with the config: config/pref_checks.py)."""
    pretrained = model_bundle.model
    freeze_unused_output_head(pretrained)
    if args.gradient_checkpointing:  # the Trainer would ask the value-head wrapper, which has no such switch
        base_model(pretrained).gradient_checkpointing_enable(
            gradient_checkpointing_kwargs=args.gradient_checkpointing_kwargs or {"use_reentrant": False})
        args.gradient_checkpointing = args.activation_checkpointing = False
    model = ValueHeadModel(pretrained)  # float32 head, dropout 0.1 as TRL's (LLaMA-Factory's) value head
    # master weights would cast the float32 head to bf16 too; accuracy is the rm metric at every evaluation
    options = replace(options or TrainerOptions(), master_weights=False, perplexity=False, compute_accuracy=True)
    packed = uses_packed_attention(pretrained)  # the attention takes padding-free rows: no padding computed
    collator = PackedPairCollator() if packed else PairCollator(model_bundle.tokenizer.pad_token_id)
    trainer = RewardTrainer(model=model, args=args, train_dataset=data_bundle.train, eval_dataset=data_bundle.eval,
                            data_collator=collator,
                            processing_class=model_bundle.tokenizer, callbacks=callbacks, options=options)
    trainer.declare_mean_loss()  # a mean over the pairs: the Trainer divides it by the accumulation steps
    return trainer
