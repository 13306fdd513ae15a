"""speed.apply makes only the speed-ups that fit, and says so."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tunelab.model import transformers_private as private
from tunelab.model.precision import Precision
from tunelab.train import speed

CPU_BF16 = Precision(True, False, True, "bfloat16", "bf16 on the CPU")
GPU_BF16 = Precision(True, False, False, "bfloat16", "bf16 on the GPU")


@pytest.fixture(autouse=True)
def transformers_rotary() -> Iterator[None]:
    """Each test starts and ends with transformers' own rotary functions (the fused one is process-wide)."""
    for name in private.ROTARY_MODULES:
        private.restore_rotary(private.rotary_module(name))
    yield
    for name in private.ROTARY_MODULES:
        private.restore_rotary(private.rotary_module(name))


def lora(model: Any) -> Any:
    from peft import LoraConfig, get_peft_model

    return get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))


def test_cpu_lora_gets_fused_linears_norms_and_rotary(make_tiny_llama: Any) -> None:
    model = lora(make_tiny_llama())
    notes = speed.apply(model, CPU_BF16)
    assert len(notes) == 4 and "4 layers" in notes[0]
    assert "SwiGLU" in notes[1] and "2 MLPs" in notes[1]
    assert "RMSNorm" in notes[2] and "5 modules" in notes[2]  # 2 layers x 2 + the final norm
    assert notes[3] == "fused rotary embeddings (modeling_llama)"
    assert speed.apply(model, CPU_BF16) == []  # already applied


def test_full_fine_tuning_gets_the_kernels_and_the_gpu_nothing(make_tiny_llama: Any) -> None:
    assert len(speed.apply(make_tiny_llama(), CPU_BF16)) == 3  # no LoRA layers to fuse
    private.restore_rotary(private.rotary_module(private.ROTARY_MODULES[0]))
    assert speed.apply(lora(make_tiny_llama()), GPU_BF16) == []


def test_stages_with_a_reference_get_no_kernels(make_tiny_llama: Any) -> None:
    from tunelab.model import kernels

    module = private.rotary_module(private.ROTARY_MODULES[0])
    assert len(speed.apply(make_tiny_llama(), CPU_BF16, "sft")) == 3
    assert private.original_rotary(module) is not getattr(module, "apply_rotary_pos_emb")  # fused, process-wide
    model = lora(make_tiny_llama())
    notes = speed.apply(model, CPU_BF16, "dpo")
    assert len(notes) == 2 and "LoRA" in notes[0]  # the LoRA GEMM and SwiGLU (bit-identical): no fused norms,
    assert "SwiGLU" in notes[1]  # rotary put back
    assert private.original_rotary(module) is getattr(module, "apply_rotary_pos_emb")
    assert not any("forward" in vars(m) for m in model.modules() if private.is_rms_norm(m))
    kernels.unfuse_rotary(model)


def test_recipes_are_kept_only_where_no_checkpointing_recomputes_the_layers(make_tiny_llama: Any) -> None:
    from tunelab.model import kernels

    model = make_tiny_llama()
    speed.apply(model, CPU_BF16)
    layers = [m for m in model.modules() if type(m).__name__ == "LlamaDecoderLayer"]
    for mode in ("cheap", "full"):  # their saved-tensor hooks would be shadowed by the recipes'
        assert speed.keep_less(model, mode) == []
    assert not any(getattr(m, kernels.KEEPS_RECIPES, False) for m in layers)
    notes = speed.keep_less(model, "none")
    assert len(notes) == 1 and "2 layers" in notes[0]
    assert all(getattr(m, kernels.KEEPS_RECIPES) for m in layers)
    assert speed.keep_less(make_tiny_llama(), "none") == []  # no fused MLPs (GPU, or speed.apply not run)
    kernels.unfuse_rotary(model)


def test_the_allocator_is_tuned_for_cpu_training_only(monkeypatch: Any) -> None:
    from tunelab.runtime import allocator, malloc_preload, onednn
    from tunelab.runtime.malloc_preload import MARK

    calls = []
    monkeypatch.delenv(MARK, raising=False)
    monkeypatch.setattr(malloc_preload, "missing_hint", lambda *args: None)  # tcmalloc installed or not: below
    monkeypatch.setattr(allocator, "keep_freed_memory", lambda: calls.append(1) or True)
    monkeypatch.setattr(onednn, "bound_caches", lambda: [])
    assert speed.tune_process(GPU_BF16) == [] and calls == []
    assert "malloc keeps freed memory" in speed.tune_process(CPU_BF16)[0] and calls == [1]
    monkeypatch.setenv(MARK, "tcmalloc")  # started again with tcmalloc: glibc's settings are not applied
    notes = speed.tune_process(CPU_BF16)
    assert len(notes) == 1 and "malloc: tcmalloc" in notes[0] and calls == [1]
    monkeypatch.delenv(MARK)
    monkeypatch.setattr(allocator, "keep_freed_memory", lambda: False)  # no glibc: nothing said
    assert speed.tune_process(CPU_BF16) == []


def test_a_cpu_run_on_glibc_for_want_of_tcmalloc_says_what_to_install(monkeypatch: Any) -> None:
    from tunelab.runtime import allocator, malloc_preload, onednn

    monkeypatch.setattr(allocator, "keep_freed_memory", lambda: True)
    monkeypatch.setattr(onednn, "bound_caches", lambda: [])
    monkeypatch.setattr(malloc_preload, "missing_hint", lambda *args: "install tcmalloc")
    assert speed.tune_process(CPU_BF16) == ["install tcmalloc", "malloc keeps freed memory for reuse (no page "
                                            "faults on each step's large tensors)"]
    assert speed.tune_process(GPU_BF16) == []


def test_onednn_caches_are_bounded_unless_the_user_chose(monkeypatch: Any) -> None:
    from tunelab.runtime import allocator, malloc_preload, onednn

    monkeypatch.setattr(allocator, "keep_freed_memory", lambda: False)
    monkeypatch.setattr(malloc_preload, "missing_hint", lambda *args: None)
    names = [name for cache in onednn.CACHES for name in cache]
    for name in names:  # setenv first: the test's end restores the variables' absence
        monkeypatch.setenv(name, "0")
        monkeypatch.delenv(name)
    assert speed.tune_process(GPU_BF16) == [] and not set(names) & set(os.environ)
    notes = speed.tune_process(CPU_BF16)
    assert len(notes) == 1 and "ONEDNN_PRIMITIVE_CACHE_CAPACITY, LRU_CACHE_CAPACITY" in notes[0]
    assert os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == os.environ["LRU_CACHE_CAPACITY"] == str(onednn.CAPACITY)
    for name in ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "LRU_CACHE_CAPACITY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("DNNL_PRIMITIVE_CACHE_CAPACITY", "512")  # the user's capacity stands; the other is set
    notes = speed.tune_process(CPU_BF16)
    assert "ONEDNN_PRIMITIVE_CACHE_CAPACITY" not in os.environ and os.environ["LRU_CACHE_CAPACITY"] == "256"
    assert "ONEDNN" not in notes[0]
    assert speed.tune_process(CPU_BF16) == []  # both set now: nothing more said
