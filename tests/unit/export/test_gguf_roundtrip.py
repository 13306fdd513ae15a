"""transformers loads each written GGUF back (gguf_file=) and its logits match the source model's.

Tolerances, as the relative RMS error of the logits (||gguf - source|| / ||source||) on a 20-token prompt, for the
tiny random models here (weights N(0, 0.1): quantization error is larger than on a trained model):

    type   tolerance   measured: llama   qwen2    qwen3    gemma2
    f32    1e-6                  0        0        0        0       (bit-exact)
    f16    2e-3                  3.2e-4   2.8e-4   3.9e-4   5.6e-4
    bf16   1e-2                  2.4e-3   2.2e-3   3.3e-3   4.3e-3
    q8_0   3e-2                  8.5e-3   8.0e-3   9.1e-3   1.6e-2
    q5_0   0.2                   6.5e-2   6.7e-2   8.1e-2   0.12
    q5_1   0.2                   6.1e-2   5.5e-2   7.7e-2   0.11
    q4_0   0.35                  0.13     0.14     0.17     0.23
    q4_1   0.35                  0.12     0.13     0.17     0.22

Gemma norms stored without the + 1 give an error of ~1.0; a missing llama q/k permutation ~1e-3 here (the residual
stream dominates these random models), caught by the bit-exact f32 check and by test_gguf_arch's tensor checks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from tests.unit.export.gguf_models import ARCHS, save_tiny_model
from tunelab.export.gguf import PYTHON_TYPES, write_gguf

TOLERANCE = {"f32": 1e-6, "f16": 2e-3, "bf16": 1e-2, "q8_0": 3e-2, "q5_0": 0.2, "q5_1": 0.2, "q4_0": 0.35,
             "q4_1": 0.35}
PROMPT = "Who are you? I am tunelab, a small model trained on a tiny set."


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory, tiny_tokenizer_json: str) -> dict[str, tuple[Path, Any]]:
    """One saved tiny model per architecture, with its logits on PROMPT."""
    from tests.conftest import chatml_template, make_tokenizer

    tokenizer = make_tokenizer(tiny_tokenizer_json, chatml_template())
    ids = torch.tensor([tokenizer(PROMPT)["input_ids"]])
    out = {}
    for arch in ARCHS:
        folder = tmp_path_factory.mktemp(arch)
        model = save_tiny_model(folder, arch, tokenizer)
        with torch.no_grad():
            out[arch] = (folder, model(ids).logits)
    return out


def test_every_python_type_has_a_tolerance() -> None:
    assert set(TOLERANCE) == set(PYTHON_TYPES)


@pytest.mark.parametrize("gguf_type", list(PYTHON_TYPES))
@pytest.mark.parametrize("arch", ARCHS)
def test_logits_match_the_source(sources: dict[str, tuple[Path, Any]], arch: str, gguf_type: str) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, reference = sources[arch]
    report = write_gguf(folder, folder / f"model-{gguf_type}.gguf", gguf_type)
    assert report.path.is_file() and report.bytes == report.path.stat().st_size and report.kept_float == []
    assert report.arch == arch
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=report.path.name, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=report.path.name)
    with torch.no_grad():
        logits = model(torch.tensor([tokenizer(PROMPT)["input_ids"]])).logits
    error = ((logits - reference).norm() / reference.norm()).item()
    assert error <= TOLERANCE[gguf_type], f"{arch} {gguf_type}: relative logit error {error:.3g}"
