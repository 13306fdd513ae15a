"""Running out of memory: recognise it and tell the user which settings reduce memory."""

from __future__ import annotations

from tunelab.config.schema import RunConfig

MARKERS = ("out of memory", "can't allocate memory", "cannot allocate memory", "failed to allocate")


def is_out_of_memory(exc: BaseException) -> bool:
    """CUDA/MPS out-of-memory errors and the CPU allocator's failures."""
    import torch

    if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
        return True
    return isinstance(exc, RuntimeError) and any(marker in str(exc).lower() for marker in MARKERS)


def out_of_memory_help(config: RunConfig, exc: BaseException, checkpointing: bool) -> str:
    """The message: what ran out, then the knobs in the order they usually help, with this run's values."""
    train, data = config.train, config.data
    first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
    knobs = []
    if train.per_device_train_batch_size > 1:
        half = train.per_device_train_batch_size // 2
        knobs.append(f"per_device_train_batch_size: {train.per_device_train_batch_size} -> {half}, with "
                     f"gradient_accumulation_steps: {train.gradient_accumulation_steps} -> "
                     f"{train.gradient_accumulation_steps * 2} (same effective batch)")
    knobs.append(f"cutoff_len: {data.cutoff_len} -> {max(data.cutoff_len // 2, 1)} (see the data report for how "
                 "many examples are longer)")
    if not checkpointing:
        knobs.append("gradient_checkpointing: true (recomputes activations: about 30% slower, much less memory)")
    if config.method.finetuning_type != "lora":
        knobs.append(f"finetuning_type: lora instead of {config.method.finetuning_type} (no optimizer state for "
                     "the frozen weights)")
    elif config.lora.lora_rank > 8:
        knobs.append(f"lora_rank: {config.lora.lora_rank} -> 8")
    if not (train.bf16 or train.fp16 or config.method.pure_bf16):
        knobs.append("bf16: true where the hardware supports it (half the activation memory)")
    if config.eval.per_device_eval_batch_size > 1:
        knobs.append(f"per_device_eval_batch_size: {config.eval.per_device_eval_batch_size} -> 1 (if it failed "
                     "while evaluating)")
    return ("out of memory while training (" + first + "). Settings that reduce memory:\n"
            + "\n".join(f"  - {knob}" for knob in knobs))
