"""LLaMA-Factory 0.9.5's Modelfiles (recorded by tools/lf_ollama_golden.py) under tunelab's checker: where they
render what the Jinja template renders and where they drift, next to tunelab's for the same template."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.export.test_ollama import fixture_tokenizer
from tunelab.export.ollama import SAMPLES, build_modelfile, check_modelfile

GOLDEN = Path(__file__).parents[2] / "fixtures" / "ollama"


@pytest.mark.parametrize(("template", "folder"), [("qwen", "bpe_qwen"), ("llama3", "bpe_llama3")])
def test_lf_modelfile_matches_where_bos_is_not_added(template: str, folder: str) -> None:
    tokenizer = fixture_tokenizer(folder, template)
    lf_text = (GOLDEN / f"lf_{template}_{folder}.Modelfile").read_text(encoding="utf-8")
    assert check_modelfile(lf_text, tokenizer, None, system_role=True) == []
    assert check_modelfile(build_modelfile("m.gguf", tokenizer, None), tokenizer, None, system_role=True) == []


def test_lf_gemma_modelfile_drifts_on_bos_and_system_placement() -> None:
    """LF writes the tokenizer's BOS text (llama.cpp adds another) and the system text before the user turn
    instead of inside it (its Llama2Template merges it there for training, but not in get_ollama_template)."""
    tokenizer = fixture_tokenizer("spm", "gemma")
    lf_text = (GOLDEN / "lf_gemma_spm.Modelfile").read_text(encoding="utf-8")
    problems = check_modelfile(lf_text, tokenizer, None, system_role=True)
    assert len(problems) == len(SAMPLES) and all("Ollama: '<s>" in p for p in problems)  # a doubled BOS each time
    without_bos = lf_text.replace('TEMPLATE """<s>', 'TEMPLATE """')
    drifted = [p.split("'")[1] for p in check_modelfile(without_bos, tokenizer, None, system_role=True)]
    assert drifted == ["system, user, assistant, user", "Chinese with a system message", "template syntax in contents"]
    assert check_modelfile(build_modelfile("m.gguf", tokenizer, None), tokenizer, None, system_role=True) == []
