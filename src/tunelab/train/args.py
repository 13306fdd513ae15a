"""Our config -> transformers TrainingArguments: the one explicit mapping."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tunelab.config.schema import RunConfig
from tunelab.model.precision import Precision
from tunelab.runtime.names import split_names

if TYPE_CHECKING:  # imported where used: the CLI starts without loading transformers
    from transformers import TrainingArguments


def eval_settings(config: RunConfig, has_eval: bool) -> dict[str, str | int]:
    """Evaluation schedule; with eval data and eval_strategy 'no', tunelab evaluates once at the end."""
    ev = config.eval
    if not has_eval or ev.eval_strategy == "no":
        return {"eval_strategy": "no"}
    return {"eval_strategy": ev.eval_strategy, "eval_steps": ev.eval_steps or config.train.logging_steps}


def optimizer_name(optim: str, on_cpu: bool) -> str:
    """adamw_torch on the CPU runs torch's fused AdamW: the same update in one pass per tensor (measured on the
    134.5M float32 weights of SmolLM2, 2 threads: 0.08 s per step instead of 0.50-0.79 s)."""
    return "adamw_torch_fused" if on_cpu and optim == "adamw_torch" else optim


def best_model_settings(config: RunConfig) -> dict[str, str | bool]:
    """metric_for_best_model and its direction, used by load_best_model_at_end and early stopping."""
    ev = config.eval
    if not (ev.load_best_model_at_end or ev.early_stopping_steps):
        return {}
    metric = ev.metric_for_best_model if ev.metric_for_best_model.startswith("eval_") else \
        f"eval_{ev.metric_for_best_model}"
    greater = ev.greater_is_better
    if greater is None:
        greater = not metric.endswith(("_loss", "_perplexity"))
    return {"load_best_model_at_end": ev.load_best_model_at_end, "metric_for_best_model": metric,
            "greater_is_better": greater}


def launch_settings(config: RunConfig) -> dict[str, str | dict[str, object]]:
    """DeepSpeed, FSDP and the process-group backend, as transformers takes them."""
    launch = config.launch
    settings: dict[str, str | dict[str, object]] = {}
    if launch.deepspeed:
        settings["deepspeed"] = launch.deepspeed
    if launch.fsdp:
        settings["fsdp"] = launch.fsdp
        if launch.fsdp_config is not None:
            settings["fsdp_config"] = launch.fsdp_config
    if launch.ddp_backend:
        settings["ddp_backend"] = launch.ddp_backend
    return settings


def report_targets(report_to: str) -> list[str] | str:
    """'none' or a list of tracker names."""
    names = [name for name in split_names(report_to) if name != "none"]
    return names or "none"


def training_arguments(config: RunConfig, precision: Precision, has_eval: bool, gradient_checkpointing: bool,
                       padding_free: bool = False) -> TrainingArguments:
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
        optim=optimizer_name(train.optim, precision.use_cpu),
        adam_beta1=train.adam_beta1,
        adam_beta2=train.adam_beta2,
        adam_epsilon=train.adam_epsilon,
        neftune_noise_alpha=train.neftune_noise_alpha,
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
        save_only_model=train.save_only_model,
        # stateful callbacks (early stopping's patience, the trained-token count) continue where they were
        restore_callback_states_from_checkpoint=True,
        report_to=report_targets(train.report_to),
        ddp_timeout=train.ddp_timeout,
        # every trainable weight gets a gradient each step: skip DDP's search for unused ones (as LLaMA-Factory)
        ddp_find_unused_parameters=False,
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
        **best_model_settings(config),
        **launch_settings(config),
    )
