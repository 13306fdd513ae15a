"""speed.apply makes only the speed-ups that fit, and says so."""

from __future__ import annotations

from typing import Any

from tunelab.model.precision import Precision
from tunelab.train import speed

CPU_BF16 = Precision(True, False, True, "bfloat16", "bf16 on the CPU")
GPU_BF16 = Precision(True, False, False, "bfloat16", "bf16 on the GPU")


def lora(model: Any) -> Any:
    from peft import LoraConfig, get_peft_model

    return get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))


def test_cpu_lora_gets_fused_linears(make_tiny_llama: Any) -> None:
    model = lora(make_tiny_llama())
    notes = speed.apply(model, CPU_BF16)
    assert len(notes) == 1 and "4 layers" in notes[0]
    assert speed.apply(model, CPU_BF16) == []  # already applied


def test_nothing_to_do_without_lora_or_off_the_cpu(make_tiny_llama: Any) -> None:
    assert speed.apply(make_tiny_llama(), CPU_BF16) == []
    assert speed.apply(lora(make_tiny_llama()), GPU_BF16) == []


def test_the_allocator_is_tuned_for_cpu_training_only(monkeypatch: Any) -> None:
    from tunelab.runtime import allocator

    calls = []
    monkeypatch.setattr(allocator, "keep_freed_memory", lambda: calls.append(1) or True)
    assert speed.tune_process(GPU_BF16) == [] and calls == []
    assert "malloc" in speed.tune_process(CPU_BF16)[0]
    monkeypatch.setattr(allocator, "keep_freed_memory", lambda: False)  # no glibc: nothing said
    assert speed.tune_process(CPU_BF16) == []
