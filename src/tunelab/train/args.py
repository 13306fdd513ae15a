"""Our config -> transformers TrainingArguments: the one explicit mapping."""

from __future__ import annotations

from typing import Any

from tunelab.config.schema import RunConfig
from tunelab.train.precision import Precision


def eval_settings(config: RunConfig, has_eval: bool) -> dict[str, Any]:
    """Evaluation schedule; with eval data and eval_strategy 'no', tunelab evaluates once at the end."""
    ev = config.eval
    if not has_eval or ev.eval_strategy == "no":
        return {"eval_strategy": "no"}
    return {"eval_strategy": ev.eval_strategy, "eval_steps": ev.eval_steps or config.train.logging_steps}


def report_targets(report_to: str) -> list[str] | str:
    """'none' or a list of tracker names."""
    names = [name.strip() for name in report_to.split(",") if name.strip() and name.strip() != "none"]
    return names or "none"


def training_arguments(config: RunConfig, precision: Precision, has_eval: bool, gradient_checkpointing: bool,
                       padding_free: bool = False) -> Any:
    """TrainingArguments for the HF Trainer (padding_free: batches carry no padding, so every token counts)."""
    from transformers import TrainingArguments

    train = config.train
    return TrainingArguments(
        output_dir=train.output_dir,
        per_device_train_batch_size=train.per_device_train_batch_size,
        per_device_eval_batch_size=config.eval.per_device_eval_batch_size,
        gradient_accumulation_steps=train.gradient_accumulation_steps,
        learning_rate=train.learning_rate,
        num_train_epochs=train.num_train_epochs,
        max_steps=train.max_steps,
        lr_scheduler_type=train.lr_scheduler_type,
        warmup_steps=train.warmup_steps if train.warmup_steps > 0 else train.warmup_ratio,
        weight_decay=train.weight_decay,
        max_grad_norm=train.max_grad_norm,
        optim=train.optim,
        seed=train.seed,
        data_seed=train.seed,
        bf16=precision.bf16,
        fp16=precision.fp16,
        use_cpu=precision.use_cpu,
        gradient_checkpointing=gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False} if gradient_checkpointing else None,
        logging_steps=train.logging_steps,
        save_strategy=train.save_strategy,
        save_steps=train.save_steps,
        save_total_limit=train.save_total_limit,
        report_to=report_targets(train.report_to),
        ddp_timeout=train.ddp_timeout,
        dataloader_num_workers=train.dataloader_num_workers,
        train_sampling_strategy="sequential" if config.data.disable_shuffling else "random",
        # without an attention mask transformers counts tokens != pad id, and pad is often eos: count all
        include_num_input_tokens_seen="all" if padding_free else "non_padding",
        remove_unused_columns=False,
        disable_tqdm=True,
        # streaming: each process reads its own share (data/streaming.py); accelerate's default for iterable
        # data would fetch on one process and cut every tensor of the batch, cu_seq_lens included
        accelerator_config={"dispatch_batches": False} if config.data.streaming else None,
        **eval_settings(config, has_eval),
    )
