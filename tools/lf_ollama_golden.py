"""Record the Modelfiles LLaMA-Factory 0.9.5 writes (Template.get_ollama_modelfile): tests/fixtures/ollama/.

Run with the Python of a venv where LLaMA-Factory 0.9.5 is importable (it must not import tunelab):

    /path/to/lf-venv/bin/python tools/lf_ollama_golden.py

For each (template, tokenizer folder of tests/fixtures/templates/tokenizers) it applies LLaMA-Factory's special-token
fixes, as its export does, and writes lf_<template>_<folder>.Modelfile with a header saying where it came from.
tests/unit/export/test_ollama_lf.py renders these with tunelab's checker and records where they drift from the
Jinja rendering.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("LLAMAFACTORY_VERBOSITY", "ERROR")

ROOT = Path(__file__).resolve().parents[1]
TOKENIZERS = ROOT / "tests" / "fixtures" / "templates" / "tokenizers"
OUT = ROOT / "tests" / "fixtures" / "ollama"
CASES = [("qwen", "bpe_qwen"), ("llama3", "bpe_llama3"), ("gemma", "spm")]


def main() -> None:
    """Write one Modelfile per case."""
    import llamafactory
    from llamafactory.data.template import TEMPLATES
    from transformers import AutoTokenizer

    OUT.mkdir(parents=True, exist_ok=True)
    for name, folder in CASES:
        tokenizer = AutoTokenizer.from_pretrained(TOKENIZERS / folder)
        template = TEMPLATES[name]
        template.fix_special_tokens(tokenizer)
        header = (f"# Recorded by tools/lf_ollama_golden.py: LLaMA-Factory {llamafactory.__version__} "
                  f"TEMPLATES['{name}'].get_ollama_modelfile on tokenizers/{folder}; do not edit by hand.\n")
        (OUT / f"lf_{name}_{folder}.Modelfile").write_text(header + template.get_ollama_modelfile(tokenizer),
                                                            encoding="utf-8")


if __name__ == "__main__":
    main()
