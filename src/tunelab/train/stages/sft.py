"""Supervised fine-tuning (and pre-training, which trains the same way on packed text): causal-LM loss on the
labelled tokens."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tunelab.data.collate import BlockMaskCollator, PackedCollator, PadCollator
from tunelab.data.bundle import DataBundle
from tunelab.model.attention import uses_packed_attention
from tunelab.model.load import ModelBundle
from tunelab.train.trainer import TrainerOptions, TunelabTrainer

if TYPE_CHECKING:
    from transformers import TrainerCallback, TrainingArguments


def data_collator(model_bundle: ModelBundle, packing: str) -> PackedCollator | PadCollator | BlockMaskCollator:
    """Batches for the model: padding-free rows where the attention supports it, else padded (packed rows with a
    block-diagonal mask); packed rows keep their examples apart only with neat packing."""
    pad_id = model_bundle.tokenizer.pad_token_id
    if uses_packed_attention(model_bundle.model):
        return PackedCollator(neat=packing != "plain")
    if packing == "none":
        return PadCollator(pad_id)
    return BlockMaskCollator(pad_id, neat=packing == "neat", dtype=model_bundle.model.dtype)


def build_trainer(model_bundle: ModelBundle, data_bundle: DataBundle, args: TrainingArguments,
                  callbacks: list[TrainerCallback], options: TrainerOptions | None = None) -> TunelabTrainer:
    """A trainer over already-loaded objects; it never loads anything itself."""
    tokenizer = model_bundle.tokenizer
    collator = data_collator(model_bundle, data_bundle.packing)
    return TunelabTrainer(model=model_bundle.model, args=args, train_dataset=data_bundle.train,
                          eval_dataset=data_bundle.eval, data_collator=collator, processing_class=tokenizer,
                          callbacks=callbacks, options=options)
