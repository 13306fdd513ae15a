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
