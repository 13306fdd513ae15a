"""Out of memory: recognised, and answered with the settings that reduce memory for this run."""

from __future__ import annotations

import pytest
import torch

from tunelab.config.load import build
from tunelab.train.memory import is_out_of_memory, out_of_memory_help


@pytest.mark.parametrize(("exc", "expected"), [
    (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), True),
    (RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory: you tried"), True),
    (MemoryError(), True),
    (RuntimeError("shape mismatch"), False),
    (ValueError("out of memory"), False),
])
def test_out_of_memory_is_recognised(exc: BaseException, expected: bool) -> None:
    assert is_out_of_memory(exc) is expected


def test_the_help_names_this_runs_values() -> None:
    config = build({"model_name_or_path": "tiny", "dataset": "demo", "output_dir": "out", "finetuning_type": "full",
                    "per_device_train_batch_size": 8, "cutoff_len": 4096, "per_device_eval_batch_size": 4})
    text = out_of_memory_help(config, torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
                              checkpointing=False)
    assert text.splitlines() == [
        "out of memory while training (CUDA out of memory. Tried to allocate 2.00 GiB). Settings that reduce memory:",
        "  - per_device_train_batch_size: 8 -> 4, with gradient_accumulation_steps: 1 -> 2 (same effective batch)",
        "  - cutoff_len: 4096 -> 2048 (see the data report for how many examples are longer)",
        "  - gradient_checkpointing: true (recomputes activations: about 30% slower, much less memory)",
        "  - finetuning_type: lora instead of full (no optimizer state for the frozen weights)",
        "  - bf16: true where the hardware supports it (half the activation memory)",
        "  - per_device_eval_batch_size: 4 -> 1 (if it failed while evaluating)"]


def test_a_run_out_of_memory_stops_with_the_help(tmp_path, tiny_model_dir, make_dataset, data_dir,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from transformers import Trainer

    from tunelab.train.run import RunError, train

    make_dataset([{"instruction": "Hi?", "output": "Hello."}] * 4, name="qa", file_name="qa.json")

    def fail(*args: object, **kwargs: object) -> None:
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 9000000000 bytes")

    monkeypatch.setattr(Trainer, "train", fail)
    config = build({"model_name_or_path": str(tiny_model_dir), "dataset_dir": str(data_dir), "dataset": "qa",
                    "output_dir": str(tmp_path / "out"), "max_steps": 1})
    with pytest.raises(RunError, match="out of memory while training .*Settings that reduce memory:"):
        train(config)
