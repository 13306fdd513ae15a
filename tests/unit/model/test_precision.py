"""Which dtypes a run trains in, from the config and the (monkeypatched) hardware."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tunelab.config.schema import TrainSection
from tunelab.model.precision import Precision, decide
from tunelab.runtime import env

Hardware = Callable[..., None]


@pytest.fixture
def hardware(monkeypatch: pytest.MonkeyPatch) -> Hardware:
    """set_hardware(gpu=, gpu_bf16=, cpu_bf16=): what runtime.env reports."""
    def set_hardware(gpu: bool = False, gpu_bf16: bool = False, cpu_bf16: bool = False) -> None:
        monkeypatch.setattr(env, "cuda_available", lambda: gpu)
        monkeypatch.setattr(env, "bf16_supported", lambda: gpu_bf16 if gpu else cpu_bf16)
        monkeypatch.setattr(env, "cpu_has_fast_bf16", lambda: cpu_bf16)

    return set_hardware


def test_bf16_on_a_cpu_with_bf16_units(hardware: Hardware) -> None:
    hardware(cpu_bf16=True)
    precision = decide(TrainSection(bf16=True))
    assert (precision.bf16, precision.fp16, precision.use_cpu, precision.weights) == (True, False, True, "bfloat16")
    assert precision.note.startswith("bf16 on the CPU (bf16 matrix units found)")


def test_bf16_on_a_cpu_without_bf16_units_falls_back_to_float32(hardware: Hardware) -> None:
    hardware(cpu_bf16=False)
    assert decide(TrainSection(bf16=True)) == Precision(
        False, False, True, "float32",
        "bf16: true, but this CPU (no AVX512-BF16 or AMX) has no fast bf16; training in float32 instead")


def test_bf16_on_a_gpu(hardware: Hardware) -> None:
    hardware(gpu=True, gpu_bf16=True)
    precision = decide(TrainSection(bf16=True))
    assert (precision.bf16, precision.use_cpu, precision.weights) == (True, False, "bfloat16")
    assert precision.note.startswith("bf16 on the GPU")


def test_bf16_on_a_gpu_without_bf16(hardware: Hardware) -> None:
    hardware(gpu=True, gpu_bf16=False)
    precision = decide(TrainSection(bf16=True))
    assert (precision.bf16, precision.use_cpu, precision.weights) == (False, False, "float32")
    assert precision.note == "bf16: true, but this GPU has no fast bf16; training in float32 instead"


def test_use_cpu_on_a_gpu_machine_decides_for_the_cpu(hardware: Hardware) -> None:
    hardware(gpu=True, gpu_bf16=True, cpu_bf16=False)
    precision = decide(TrainSection(bf16=True, use_cpu=True))
    assert (precision.bf16, precision.use_cpu, precision.weights) == (False, True, "float32")


def test_fp16_on_cpu_trains_in_float32_and_says_so(hardware: Hardware) -> None:
    hardware()
    assert decide(TrainSection(fp16=True)) == Precision(
        False, False, True, "float32", "fp16: true, but fp16 needs a GPU; training in float32")


def test_fp16_on_a_gpu(hardware: Hardware) -> None:
    hardware(gpu=True)
    assert decide(TrainSection(fp16=True)) == Precision(
        False, True, False, "float32", "fp16 autocast with loss scaling on the GPU")


def test_default_is_float32(hardware: Hardware) -> None:
    hardware(cpu_bf16=True)
    precision = decide(TrainSection())
    assert (precision.bf16, precision.fp16, precision.use_cpu, precision.weights) == (False, False, True, "float32")
    assert "set bf16: true" in precision.note


def test_cpu_has_fast_bf16_reads_the_cpu_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(env, "cpu_flags", lambda: frozenset({"avx2", "amx_bf16"}))
    assert env.cpu_has_fast_bf16()
    monkeypatch.setattr(env, "cpu_flags", lambda: frozenset({"avx2", "avx512f"}))
    assert not env.cpu_has_fast_bf16()


def test_pure_bf16_keeps_trainable_weights_in_bf16_without_autocast(hardware: Hardware) -> None:
    hardware(cpu_bf16=True)
    precision = decide(TrainSection(), pure_bf16=True)
    assert (precision.bf16, precision.weights, precision.trainable) == (False, "bfloat16", "bfloat16")
    assert precision.load_dtype("full") == precision.load_dtype("lora") == "bfloat16"
    hardware(cpu_bf16=False)
    assert decide(TrainSection(), pure_bf16=True).trainable == "float32"


def test_full_and_freeze_load_trainable_weights_in_float32(hardware: Hardware) -> None:
    hardware(cpu_bf16=True)
    precision = decide(TrainSection(bf16=True))
    assert precision.load_dtype("lora") == "bfloat16"
    assert precision.load_dtype("full") == precision.load_dtype("freeze") == "float32"


@pytest.mark.parametrize(("infer_dtype", "gpu", "cpu_bf16", "gpu_bf16", "expected"), [
    ("auto", False, True, False, "float32"),  # bf16 greedy answers depend on their batch mates
    ("auto", False, False, False, "float32"),
    ("auto", True, False, True, "bfloat16"),
    ("auto", True, False, False, "float16"),
    ("float32", False, True, False, "float32"),
    ("bfloat16", False, False, False, "bfloat16"),  # explicit values are honoured, even where bf16 is slow
])
def test_decoding_dtype(hardware: Hardware, infer_dtype: str, gpu: bool, cpu_bf16: bool, gpu_bf16: bool,
                        expected: str) -> None:
    from tunelab.model.precision import decide_infer

    hardware(gpu=gpu, gpu_bf16=gpu_bf16, cpu_bf16=cpu_bf16)
    precision = decide_infer(infer_dtype, on_gpu=gpu)
    assert precision.dtype == expected
    assert precision.note.startswith(f"infer_dtype{' auto' if infer_dtype == 'auto' else ''}")


def test_float16_decoding_is_refused_without_a_gpu(hardware: Hardware) -> None:
    from tunelab.config.errors import ConfigError
    from tunelab.config.load import build

    hardware(gpu=False)
    base = {"model_name_or_path": "m", "output_dir": "o", "eval_dataset": "e", "infer_dtype": "float16"}
    for purpose in ("infer", "predict"):
        with pytest.raises(ConfigError) as excinfo:
            build(base, purpose=purpose)
        assert [p.key for p in excinfo.value.problems] == ["infer_dtype"]
        assert "no fast float16" in str(excinfo.value)
    export = build({**base, "export_dir": "x"}, purpose="export")
    assert export.infer.infer_dtype == "float16"  # export writes float16 weights
    hardware(gpu=True)
    assert build(base, purpose="predict").infer.infer_dtype == "float16"
