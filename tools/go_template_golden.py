"""Record what Go's own text/template renders for tunelab's Go template checks: tests/fixtures/ollama/go_golden.json.

Needs a Go toolchain (`apt-get install golang-go`; Go 1.19 was used). Run from the repository root:

    PYTHONPATH=src:. python tools/go_template_golden.py

Cases: hand-written templates for text/template's rules (trimming, branches, range, variables, functions, errors),
and every Modelfile TEMPLATE tunelab writes for the named templates and the fixture models' own templates, plus
LLaMA-Factory's recorded Modelfiles, each executed for the checker's sample conversations with the values Ollama
passes (tunelab.export.ollama.ollama_values). tools/go_template_golden/main.go executes them with Ollama's
options (missingkey=zero, the json function, message structs). tests/unit/export/test_go_template_golden.py
checks tunelab's renderer against every recorded output.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.unit.export.test_ollama import FOLDER_OF, fixture_tokenizer
from tunelab.data.chat_template import template_names
from tunelab.export.modelfile import parse_modelfile
from tunelab.export.ollama import SAMPLES, build_modelfile, ollama_values

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "fixtures" / "ollama" / "go_golden.json"
PLAIN = {"A": "a", "B": "", "L": ["x", "skip", "y", "stop", "z"], "E": [], "N": 0, "S": "你好",
         "M": {"k": "v", "a": "b"}, "Messages": [{"Role": "user", "Content": "hi"}, {"Role": "assistant",
                                                                                     "Content": " ok "}]}
HAND = [
    "a \n {{- .A }} \n b", "a \n {{ .A -}} \n\t b", "a {{- .A -}} b", "a {{-1}} b", "x{{/* c */}}y",
    "x {{- /* c */ -}} y", '{{ "{{" }}{{ `raw \\n` }}{{ "\\x41\\u00e9\\t" }}',
    '{{ if .A }}a{{ else if eq .B "x" "" }}b{{ else }}c{{ end }}', "{{ if .E }}e{{ else if .N }}n{{ else }}-{{ end }}",
    '{{ and "x" "" "never" }}|{{ or "" "y" (index .E 5) }}|{{ and 1 2 }}|{{ or 0 "" }}',
    "{{ not .B }} {{ ne 1 2 }} {{ lt 1 2 }} {{ ge 2 3 }} {{ le .A .A }} {{ gt .S .A }}",
    "{{ range $i, $m := .L }}{{ $last := eq (len (slice $.L $i)) 1 }}{{ $i }}={{ $m }}{{ if not $last }},{{ end }}"
    "{{ else }}empty{{ end }}",
    "{{ range .E }}x{{ else }}empty{{ end }}{{ range $k, $v := .M }}{{ $k }}{{ $v }}{{ end }}",
    '{{ $seen := "" }}{{ range .L }}{{ if eq . "skip" }}{{ continue }}{{ end }}{{ if eq . "stop" }}{{ break }}'
    '{{ end }}{{ $inner := . }}{{ $seen = printf "%s%s;" $seen $inner }}{{ end }}{{ $seen }}',
    "{{ range .L }}{{ $x := 1 }}{{ end }}{{ $x }}",
    "{{ len .S }} {{ len .L }} {{ (index $.Messages 1).Content }}|{{ len (slice .Messages 1) }} {{ slice .S 3 }}",
    "{{ .B }}|{{ .Missing }}|{{ .A | printf \"<%s>\" }}|{{ print 1 \"a\" 2 }}|{{ print 1 2 }}|{{ printf \"%d%%\" 5 }}",
    "{{- range .Messages }}{{ .Role }}:{{ .Content }}{{ .Thinking }};{{ end }}",
    "{{ if .A }}x", "{{ index .L 9 }}", "{{ .A", "{{ trim .A }}", '{{ eq .A }}', "{{ slice .S 1 9 }}",
]


def modelfile_cases() -> list[dict]:
    """The TEMPLATE and SYSTEM of each Modelfile to record, by label."""
    texts = {}
    for name in template_names():
        texts[f"tunelab {name}"] = build_modelfile("m.gguf", fixture_tokenizer(FOLDER_OF.get(name, "bpe_qwen"),
                                                                               name), None)
    for folder in ("jinja_qwen3", "jinja_smollm2"):
        texts[f"own {folder}"] = build_modelfile("m.gguf", fixture_tokenizer(folder), None)
    for path in sorted((ROOT / "tests" / "fixtures" / "ollama").glob("lf_*.Modelfile")):
        texts[f"llamafactory {path.stem}"] = path.read_text(encoding="utf-8")
    cases = []
    for label, text in texts.items():
        commands = dict(parse_modelfile(text))
        system = commands.get("system", "")
        cases.append({"label": label, "template": commands["template"],
                      "runs": [ollama_values(conversation, system) for _, conversation in SAMPLES]})
    return cases


def main() -> None:
    """Execute every case with Go and write the golden file."""
    cases = [{"label": f"hand {i}", "template": source, "runs": [PLAIN]} for i, source in enumerate(HAND)]
    cases += modelfile_cases()
    done = subprocess.run(["go", "run", "main.go"], cwd=ROOT / "tools" / "go_template_golden", check=True,
                          input=json.dumps(cases), capture_output=True, text=True,
                          env={"GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod", "HOME": str(Path.home()),
                               "PATH": "/usr/bin:/bin:/usr/local/bin", "GOCACHE": "/tmp/go-cache"})
    recorded = json.loads(done.stdout)
    for case, result in zip(cases, recorded):
        case["outputs"] = result["outputs"]
        for run in case["runs"]:  # keep only what the template reads; Go added the struct's zero fields
            for message in run.get("Messages", []):
                for key in ("Thinking", "ToolName", "Images", "ToolCalls"):
                    message.pop(key, None)
    version = subprocess.run(["go", "version"], capture_output=True, text=True, check=True).stdout.split()[2]
    lines = ",\n".join(json.dumps(case, ensure_ascii=False) for case in cases)  # one case a line
    OUT.write_text(f'{{"go": "{version}", "cases": [\n{lines}\n]}}\n', encoding="utf-8")


if __name__ == "__main__":
    main()
