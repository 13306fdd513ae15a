"""tunelab's Go template renderer against Go's own text/template: every output recorded by
tools/go_template_golden.py (hand-written rule cases, and each Modelfile TEMPLATE tunelab writes, plus
LLaMA-Factory's, over the checker's sample conversations) must come out the same, and Go's errors must be errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tunelab.export.go_render import render
from tunelab.export.go_template import GoTemplateError

GOLDEN = json.loads((Path(__file__).parents[2] / "fixtures" / "ollama" / "go_golden.json").read_text("utf-8"))
RUNS = [(case["label"], case["template"], run, outcome)
        for case in GOLDEN["cases"] for run, outcome in zip(case["runs"], case["outputs"])]


def test_golden_covers_every_modelfile_kind() -> None:
    labels = {case["label"].split()[0] for case in GOLDEN["cases"]}
    assert labels == {"hand", "tunelab", "own", "llamafactory"} and len(RUNS) > 250


@pytest.mark.parametrize(("label", "template", "data", "outcome"), RUNS,
                         ids=[f"{label}-{i}" for i, (label, *_rest) in enumerate(RUNS)])
def test_renderer_equals_go(label: str, template: str, data: dict, outcome: dict[str, str]) -> None:
    for message in data.get("Messages", []):  # Go executed Ollama's message structs: these fields at zero
        message.update({"Thinking": "", "ToolName": "", "Images": [], "ToolCalls": [], **message})
    if "error" in outcome:
        with pytest.raises(GoTemplateError):
            render(template, data)
    else:
        assert render(template, data) == outcome["output"]


def test_golden_holds_the_templates_written_now() -> None:
    """A change to the Go templates tunelab writes needs the golden rerun (tools/go_template_golden.py)."""
    from tests.unit.export.test_ollama import FOLDER_OF, commands, fixture_tokenizer
    from tunelab.export.ollama import build_modelfile

    for case in GOLDEN["cases"]:
        kind, _, name = case["label"].partition(" ")
        if kind == "tunelab":
            tokenizer = fixture_tokenizer(FOLDER_OF.get(name, "bpe_qwen"), name)
            assert commands(build_modelfile("m.gguf", tokenizer, None))["template"] == [case["template"]], name
