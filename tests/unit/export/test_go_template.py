"""The Go template renderer against templates with known outputs: Ollama's own (template/*.gotmpl and the
expected files of template/testdata in ollama/ollama, and template_test.go's TestExecuteWithMessages), and
hand-written templates for text/template's trimming, branching, range and variable rules."""

from __future__ import annotations

import pytest

from tunelab.export.go_render import render
from tunelab.export.go_template import GoTemplateError

# As published in ollama/ollama template/ (MIT licence); the expected texts are its template/testdata files.
OLLAMA_CHATML = ("{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}"
                 "<|im_start|>assistant\n")
OLLAMA_LLAMA3 = ("{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n{{ .Content }}<|eot_id|>\n"
                 "{{- end }}<|start_header_id|>assistant<|end_header_id|>\n\n")
OLLAMA_GEMMA = ('{{- $system := "" }}\n{{- range .Messages }}\n{{- if eq .Role "system" }}\n'
                '{{- if not $system }}{{ $system = .Content }}\n'
                '{{- else }}{{ $system = printf "%s\\n\\n%s" $system .Content }}\n{{- end }}\n{{- continue }}\n'
                '{{- else if eq .Role "user" }}<start_of_turn>user\n{{- if $system }}\n{{ $system }}\n'
                '{{- $system = "" }}\n{{- end }}\n{{- else if eq .Role "assistant" }}<start_of_turn>model\n'
                '{{- end }}\n{{ .Content }}<end_of_turn>\n{{ end }}<start_of_turn>model\n')

SYSTEM = "You are a helpful assistant."
USER1, ANSWER, USER2 = ("Hello, how are you?", "I'm doing great. How can I help you today?",
                        "I'd like to show off how chat templating works!")


def values(*pairs: tuple[str, str]) -> dict:
    """Ollama's template values for messages given as (role, content)."""
    messages = [{"Role": role, "Content": content} for role, content in pairs]
    system = "\n\n".join(content for role, content in pairs if role == "system")
    return {"System": system, "Messages": messages, "Response": ""}


CASES = {
    "user": values(("user", USER1)),
    "user-assistant-user": values(("user", USER1), ("assistant", ANSWER), ("user", USER2)),
    "system-user-assistant-user": values(("system", SYSTEM), ("user", USER1), ("assistant", ANSWER), ("user", USER2)),
}
EXPECTED = {
    ("chatml", "system-user-assistant-user"):
        f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n{USER1}<|im_end|>\n<|im_start|>assistant\n"
        f"{ANSWER}<|im_end|>\n<|im_start|>user\n{USER2}<|im_end|>\n<|im_start|>assistant\n",
    ("llama3", "user"):
        f"<|start_header_id|>user<|end_header_id|>\n\n{USER1}<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n",
    ("llama3", "system-user-assistant-user"):
        f"<|start_header_id|>system<|end_header_id|>\n\n{SYSTEM}<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n"
        f"{USER1}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n{ANSWER}<|eot_id|>"
        f"<|start_header_id|>user<|end_header_id|>\n\n{USER2}<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n",
    ("gemma", "user-assistant-user"):
        f"<start_of_turn>user\n{USER1}<end_of_turn>\n<start_of_turn>model\n{ANSWER}<end_of_turn>\n"
        f"<start_of_turn>user\n{USER2}<end_of_turn>\n<start_of_turn>model\n",
    ("gemma", "system-user-assistant-user"):
        f"<start_of_turn>user\n{SYSTEM}\n{USER1}<end_of_turn>\n<start_of_turn>model\n{ANSWER}<end_of_turn>\n"
        f"<start_of_turn>user\n{USER2}<end_of_turn>\n<start_of_turn>model\n",
}
TEMPLATES = {"chatml": OLLAMA_CHATML, "llama3": OLLAMA_LLAMA3, "gemma": OLLAMA_GEMMA}


@pytest.mark.parametrize(("template", "case"), sorted(EXPECTED))
def test_ollama_published_templates_render_their_published_outputs(template: str, case: str) -> None:
    assert render(TEMPLATES[template], CASES[case]) == EXPECTED[(template, case)]


MISTRAL = ('[INST] {{ if .System }}{{ .System }}\n\n{{ end }}\n{{- range .Messages }}\n{{- if eq .Role "user" }}'
           '{{ .Content }}[/INST] {{ else if eq .Role "assistant" }}{{ .Content }}[INST] {{ end }}\n{{- end }}')


def test_ollama_execute_with_messages_cases() -> None:
    """template_test.go TestExecuteWithMessages: "mistral", "mistral system" and "mistral assistant"."""
    chat = values(("user", "Hello friend!"), ("assistant", "Hello human!"), ("user", "What is your name?"))
    assert render(MISTRAL, chat) == "[INST] Hello friend![/INST] Hello human![INST] What is your name?[/INST] "
    with_system = values(("system", "You are a helpful assistant!"), ("user", "Hello friend!"),
                         ("assistant", "Hello human!"), ("user", "What is your name?"))
    assert render(MISTRAL, with_system) == ("[INST] You are a helpful assistant!\n\nHello friend![/INST] Hello human!"
                                            "[INST] What is your name?[/INST] ")
    prefill = ('\n{{- range $i, $m := .Messages }}\n{{- if eq .Role "user" }}[INST] {{ .Content }}[/INST] '
               '{{ else if eq .Role "assistant" }}{{ .Content }}{{ end }}\n{{- end }}')
    chat["Messages"].append({"Role": "assistant", "Content": "My name is Ollama and I"})
    assert render(prefill, chat) == ("[INST] Hello friend![/INST] Hello human![INST] What is your name?[/INST] "
                                     "My name is Ollama and I")


@pytest.mark.parametrize(("source", "expected"), [
    ("a \n {{- 1 }} \n b", "a1 \n b"),            # `{{-` trims all whitespace before, not after
    ("a \n {{ 1 -}} \n\t b", "a \n 1b"),          # `-}}` trims all whitespace after
    ("a {{- 1 -}} b", "a1b"),
    ("a {{-1}} b", "a -1 b"),                       # without the space `-1` is a number, nothing is trimmed
    ("x{{/* a comment */}}y", "xy"),
    ("x {{- /* trimmed comment */ -}} y", "xy"),
    ('{{ "{{" }}{{ `raw \\n` }}{{ "\\x41\\u00e9\\t" }}', "{{raw \\nAé\t"),
])
def test_trimming_comments_and_literals(source: str, expected: str) -> None:
    assert render(source, {}) == expected


def test_if_else_if_else_and_truth() -> None:
    source = '{{ if .A }}a{{ else if eq .B "x" "y" }}b{{ else }}c{{ end }}'
    assert render(source, {"A": "yes", "B": ""}) == "a"
    assert render(source, {"A": "", "B": "y"}) == "b"
    assert render(source, {"A": [], "B": "z"}) == "c"
    assert render("{{ if 0 }}t{{ else }}f{{ end }}{{ if .Missing }}t{{ else }}f{{ end }}", {}) == "ff"


def test_and_or_return_the_deciding_value_and_short_circuit() -> None:
    assert render('{{ and "x" "" "never" }}|{{ or "" "y" (index .L 5) }}|{{ and 1 2 }}', {"L": []}) == "|y|2"
    assert render("{{ not .A }} {{ ne 1 2 }} {{ lt 1 2 }} {{ ge 2 3 }}", {"A": ""}) == "true true true false"


def test_range_variables_last_and_else() -> None:
    source = ('{{ range $i, $m := .L }}{{ $last := eq (len (slice $.L $i)) 1 }}{{ $i }}={{ $m }}'
              '{{ if not $last }},{{ end }}{{ else }}empty{{ end }}')
    assert render(source, {"L": ["a", "b", "c"]}) == "0=a,1=b,2=c"
    assert render(source, {"L": []}) == "empty"
    assert render("{{ range .L }}[{{ . }}]{{ end }}", {"L": ["x", "y"]}) == "[x][y]"


def test_break_continue_and_variable_scope() -> None:
    source = ('{{ $seen := "" }}{{ range .L }}{{ if eq . "skip" }}{{ continue }}{{ end }}{{ if eq . "stop" }}'
              '{{ break }}{{ end }}{{ $inner := . }}{{ $seen = printf "%s%s;" $seen $inner }}{{ end }}{{ $seen }}')
    assert render(source, {"L": ["a", "skip", "b", "stop", "c"]}) == "a;b;"
    with pytest.raises(GoTemplateError, match="undefined variable"):
        render("{{ range .L }}{{ $x := 1 }}{{ end }}{{ $x }}", {"L": [1]})


def test_len_index_slice_fields() -> None:
    data = {"Messages": [{"Role": "user", "Content": "你好"}], "System": ""}
    assert render("{{ len (index .Messages 0).Content }}", data) == "6"  # bytes, as Go counts a string
    assert render("{{ (index $.Messages 0).Role }} {{ len (slice .Messages 1) }}", data) == "user 0"
    assert render("{{ .System }}|{{ .Nothing }}", data) == "|<no value>"


@pytest.mark.parametrize(("source", "match"), [
    ("{{ if .A }}x", "missing"),
    ("{{ with .A }}x{{ end }}", "unsupported"),
    ("{{ trim .A }}", "not defined"),
    ("{{ index .L 3 }}", "out of range"),
    ("{{ .A", "unclosed"),
    ("{{ break }}", "misplaced"),
])
def test_what_is_not_covered_or_fails_in_go_is_an_error(source: str, match: str) -> None:
    with pytest.raises(GoTemplateError, match=match):
        render(source, {"A": "a", "L": []})
