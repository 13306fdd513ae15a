"""Which adapter chat and predict load: adapter_name_or_path, else the one trained in output_dir."""

from __future__ import annotations

from pathlib import Path

from tunelab.config.load import build
from tunelab.infer.load import adapter_paths


def test_adapter_paths(tmp_path: Path) -> None:
    out = tmp_path / "out"
    config = build({"model_name_or_path": "tiny", "output_dir": str(out)}, purpose="infer")
    assert adapter_paths(config) is None
    out.mkdir()
    (out / "adapter_config.json").write_text("{}")
    assert adapter_paths(config) == str(out)
    explicit = build({"model_name_or_path": "tiny", "output_dir": str(out), "adapter_name_or_path": "a,b"},
                     purpose="infer")
    assert adapter_paths(explicit) == "a,b"


def test_infer_dtype_sets_the_decoding_weights_and_adapters_follow(tiny_model_dir: Path, tmp_path: Path) -> None:
    import torch

    from tests.unit.export.conftest import save_adapter
    from tunelab.infer.batch_generate import GenRequest, generate
    from tunelab.infer.load import load_for_inference

    adapter = save_adapter(tiny_model_dir, tmp_path / "adapter", seed=1)
    keys = {"model_name_or_path": str(tiny_model_dir), "adapter_name_or_path": str(adapter)}
    answers = {}
    for dtype in ("bfloat16", "float32"):
        bundle = load_for_inference(build({**keys, "infer_dtype": dtype}, purpose="infer"))
        assert bundle.model.get_base_model().model.embed_tokens.weight.dtype == getattr(torch, dtype)
        answers[dtype] = generate(bundle.model, [GenRequest([5, 6, 7, 8], 6)], 0)[0].token_ids
    assert len(answers["bfloat16"]) == len(answers["float32"]) == 6  # a bf16 base with float32 adapters decodes
    export = load_for_inference(build({**keys, "infer_dtype": "bfloat16"}, purpose="infer"), dtype="float32")
    assert export.model.get_base_model().model.embed_tokens.weight.dtype == torch.float32
