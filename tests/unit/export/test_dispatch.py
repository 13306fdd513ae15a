"""export_format gguf and ollama through `export`: the GGUF file (and the Modelfile) land in export_dir, the
temporary merged folder does not; config and writer agree on the GGUF type names."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tunelab.config.load import build
from tunelab.config.schema import GGUF_LLAMA_QUANTIZE_TYPES, GGUF_PYTHON_TYPES
from tunelab.export.gguf import K_QUANTS, PYTHON_TYPES
from tunelab.export.run import MERGED_HF, REPORT, export


def test_config_and_writer_know_the_same_gguf_types() -> None:
    assert GGUF_PYTHON_TYPES == tuple(PYTHON_TYPES) and GGUF_LLAMA_QUANTIZE_TYPES == K_QUANTS


def run(base: Path, adapter: Path, out: Path, export_format: str) -> object:
    return export(build({"model_name_or_path": str(base), "adapter_name_or_path": str(adapter),
                         "export_dir": str(out), "export_format": export_format, "gguf_type": "q8_0"}, "export"))


def test_gguf_export(tiny_model_dir: Path, make_adapter: Callable[..., Path], tmp_path: Path) -> None:
    out = tmp_path / "tiny"
    report = run(tiny_model_dir, make_adapter(), out, "gguf")
    assert sorted(p.name for p in out.iterdir()) == ["README.md", REPORT, "tiny-q8_0.gguf"]
    assert not (out / MERGED_HF).exists() and report.next_step is None and report.gguf_type == "q8_0"
    assert "- Weights: q8_0 GGUF, merged in float32, format gguf" in (out / "README.md").read_text()
    saved = json.loads((out / REPORT).read_text())
    assert set(saved["files"]) == {"README.md", "tiny-q8_0.gguf"} and saved["checks"][0]["greedy_equal"] == 5
    from gguf import GGUFReader

    field = GGUFReader(out / "tiny-q8_0.gguf").fields["general.name"]
    assert bytes(field.parts[field.data[0]]).decode() == "tiny"  # the export's name, not its temporary folder's
    gguf = saved["checks"][1]  # the file itself, loaded back through transformers
    assert gguf["output"] == "gguf q8_0" and gguf["path"] == str(out / "tiny-q8_0.gguf")
    assert gguf["prompts_equal"] and gguf["prompts"] == 5 and 0 < gguf["max_abs_logit_diff"] < 0.5


def test_ollama_export(tiny_model_dir: Path, make_adapter: Callable[..., Path], tmp_path: Path) -> None:
    out = tmp_path / "Tiny"
    report = run(tiny_model_dir, make_adapter(), out, "ollama")
    assert {p.name for p in out.iterdir()} == {"Modelfile", "README.md", REPORT, "Tiny-q8_0.gguf"}
    assert "Tiny-q8_0.gguf" in next(line for line in (out / "Modelfile").read_text().splitlines()
                                    if line.startswith("FROM"))
    assert report.next_step == f"ollama create tiny -f {out}/Modelfile"
