"""The Modelfile text survives Ollama's parser: values read back unchanged, or an ExportError before writing."""

from __future__ import annotations

import pytest

from tunelab.export.errors import ExportError
from tunelab.export.go_render import render
from tunelab.export.modelfile import format_modelfile, parse_modelfile, template_text


def test_round_trip_of_template_system_and_stops() -> None:
    template = '{{- range .Messages }}\n  "{{ .Content }}"\n{{- end }}'
    system = "第一行\n  second line with \"quotes\" and {{ braces }}\tend"
    text = format_modelfile("model q8.gguf", template, system, ["<|im_end|>", "</s>"])
    assert parse_modelfile(text) == [("model", "./model q8.gguf"), ("template", template), ("system", system),
                                     ("stop", "<|im_end|>"), ("stop", "</s>")]


@pytest.mark.parametrize("literal", ['say """hi"""', "{{ not an action }}", "a{", "ctrl\x1fchar\x00", "\n\t x \n",
                                     '"', 'ends with ""'])
def test_literal_text_renders_back_exactly(literal: str) -> None:
    template = "[" + template_text(literal) + "]{{ .X }}"
    read = dict(parse_modelfile(format_modelfile("m.gguf", template, "", [])))["template"]
    assert render(read, {"X": "!"}) == f"[{literal}]!"


@pytest.mark.parametrize(("system", "match"), [("a\x1fb", "unprintable"), ('a """ b', "cannot hold"),
                                               ('ends "', "cannot hold")])
def test_system_text_ollama_would_change_is_refused(system: str, match: str) -> None:
    with pytest.raises(ExportError, match=match):
        format_modelfile("m.gguf", "{{ .Content }}", system, [])


def test_unreadable_modelfile_is_an_error() -> None:
    with pytest.raises(ExportError, match="not closed"):
        parse_modelfile('FROM ./m.gguf\nTEMPLATE """open')
    with pytest.raises(ExportError, match="unknown command"):
        parse_modelfile("FRM ./m.gguf\n")
