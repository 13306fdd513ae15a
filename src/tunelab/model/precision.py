"""Which dtypes a run trains in, decided once from the config and the hardware, and said to the user."""

from __future__ import annotations

from dataclasses import dataclass

from tunelab.config.schema import TrainSection
from tunelab.runtime import env


@dataclass(frozen=True)
class Precision:
    """bf16/fp16 autocast flags for the trainer, the dtype the frozen weights are loaded in, and why."""

    bf16: bool
    fp16: bool
    use_cpu: bool
    weights: str  # "bfloat16" | "float16" | "float32": frozen weights
    note: str
    trainable: str = "float32"  # trainable weights (bfloat16 only with pure_bf16)

    def load_dtype(self, method: str) -> str:
        """The dtype weights are loaded in: LoRA freezes every base weight; freeze and full load the trainable
        dtype so trained weights are never rounded through bf16 (frozen ones are cast down afterwards)."""
        return self.weights if method == "lora" else self.trainable


def decide(train: TrainSection, pure_bf16: bool = False) -> Precision:
    """bf16 where it is fast (GPU with bf16, CPU with AVX512-BF16/AMX), else float32 with a note."""
    on_gpu = env.cuda_available() and not train.use_cpu
    if pure_bf16:
        if env.bf16_supported() if on_gpu else env.cpu_has_fast_bf16():
            return Precision(False, False, not on_gpu, "bfloat16",
                             f"pure_bf16 on the {'GPU' if on_gpu else 'CPU'}: every weight, trainable ones too, "
                             "in bf16, no autocast", trainable="bfloat16")
        what = "this GPU" if on_gpu else "this CPU (no AVX512-BF16 or AMX)"
        return Precision(False, False, not on_gpu, "float32",
                         f"pure_bf16: true, but {what} has no fast bf16; training in float32 instead")
    if train.bf16:
        if env.bf16_supported() if on_gpu else env.cpu_has_fast_bf16():
            where = "GPU" if on_gpu else "CPU (bf16 matrix units found)"
            return Precision(True, False, not on_gpu, "bfloat16",
                             f"bf16 on the {where}: frozen weights stored in bf16, trainable weights in float32, "
                             "bf16 autocast")
        what = "this GPU" if on_gpu else "this CPU (no AVX512-BF16 or AMX)"
        return Precision(False, False, not on_gpu, "float32",
                         f"bf16: true, but {what} has no fast bf16; training in float32 instead")
    if train.fp16:
        if on_gpu:
            return Precision(False, True, False, "float32", "fp16 autocast with loss scaling on the GPU")
        return Precision(False, False, True, "float32", "fp16: true, but fp16 needs a GPU; training in float32")
    return Precision(False, False, not on_gpu, "float32", "float32 (set bf16: true for speed on capable hardware)")


@dataclass(frozen=True)
class InferPrecision:
    """The dtype chat, predict, eval and the API decode in, and why."""

    dtype: str  # "bfloat16" | "float16" | "float32"
    note: str


def decide_infer(infer_dtype: str, on_gpu: bool) -> InferPrecision:
    """infer_dtype as decoding takes it: explicit values honoured; auto picks bf16 on a GPU that supports it and
    float32 on the CPU, where bf16 is faster only with AVX512-BF16/AMX and its greedy answers depend on the batch
    mates (docs/inference.md has the figures)."""
    if infer_dtype != "auto":
        return InferPrecision(infer_dtype, f"infer_dtype: {infer_dtype}")
    if on_gpu:
        if env.bf16_supported():
            return InferPrecision("bfloat16", "infer_dtype auto: bfloat16 (the GPU supports bf16)")
        return InferPrecision("float16", "infer_dtype auto: float16 (the GPU has no bf16)")
    if env.cpu_has_fast_bf16():
        return InferPrecision("float32", "infer_dtype auto: float32, so greedy answers do not depend on their batch "
                                         "mates; this CPU has bf16 units: infer_dtype: bfloat16 decodes faster")
    return InferPrecision("float32", "infer_dtype auto: float32 (the CPU has no AVX512-BF16 or AMX units)")
