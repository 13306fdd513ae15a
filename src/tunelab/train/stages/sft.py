"""Supervised fine-tuning: causal-LM loss on the assistant tokens."""

from __future__ import annotations

from typing import Any

from tunelab.data.collate import PackedCollator, PadCollator
from tunelab.data.pipeline import DataBundle
from tunelab.model.attention import uses_packed_attention
from tunelab.model.load import ModelBundle
from tunelab.train.trainer import TunelabTrainer


def build_trainer(model_bundle: ModelBundle, data_bundle: DataBundle, args: Any, callbacks: list[Any]) -> Any:
    """A trainer over already-loaded objects; it never loads anything itself."""
    tokenizer = model_bundle.tokenizer
    collator = PackedCollator() if uses_packed_attention(model_bundle.model) else PadCollator(tokenizer.pad_token_id)
    return TunelabTrainer(model=model_bundle.model, args=args, train_dataset=data_bundle.train,
                          eval_dataset=data_bundle.eval, data_collator=collator, processing_class=tokenizer,
                          callbacks=callbacks)
