"""The Evaluate and Export tabs' runs end to end on a tiny model: the real `tunelab eval --compare` and
`tunelab export` subprocesses, their output streamed, then the report or the exported files shown."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.unit.interfaces.webui.tab_helpers import lora_run  # noqa: F401 - the fixture
from tunelab.interfaces.webui import eval_job, export_job
from tunelab.interfaces.webui.strings import label
from tunelab.interfaces.webui.tabs import evaluate as evaluate_tab, export as export_tab

pytestmark = pytest.mark.integration  # two tunelab subprocesses (imports of torch and transformers): ~30 s

ROWS = [{"instruction": "Who are you?", "input": "", "output": "I am tunelab."},
        {"instruction": "Hello there", "input": "", "output": "Hello, how are you?"}]


def test_eval_compare_runs_and_its_report_is_shown(tiny_model_dir: Path, lora_run: Path,  # noqa: F811
                                                   make_dataset: Any, data_dir: Path, tmp_path: Path) -> None:
    make_dataset(ROWS)
    tasks = eval_job.add_task("", eval_job.task_entry("demo", "generation", "demo", "rouge-l", ""))
    form = eval_job.EvalForm(str(tiny_model_dir), None, "lora", str(lora_run), str(data_dir), str(tmp_path / "out"),
                             tasks, 4)
    steps = list(evaluate_tab.run_eval("en", form, True))
    status, log, table, chart, _, picker = steps[-1]
    assert status == f"{label('evaluate.done', 'en')}: {tmp_path / 'out'}", log
    assert log.startswith(f"$ tunelab eval {tmp_path / 'out' / eval_job.CONFIG_NAME} --compare")
    assert "| base |" in table and "| fine-tuned |" in table
    assert chart is not None and chart.endswith("eval_results.png") and picker["value"] == "demo"
    assert all(step[0] == label("evaluate.running", "en") for step in steps[:-1])


def test_export_runs_and_lists_the_files(tiny_model_dir: Path, lora_run: Path, tmp_path: Path) -> None:  # noqa: F811
    out = tmp_path / "exported"
    form = export_job.ExportForm(str(tiny_model_dir), None, "lora", str(lora_run), {"export_dir": str(out),
                                 "export_format": "hf", "export_verify": False})
    status, log, files = list(export_tab.run_export("zh", form))[-1]
    assert status == f"{label('export.done', 'zh')}: {out}", log
    assert "model.safetensors" in files and (out / "config.json").is_file()
    assert json.loads((out / "config.json").read_text())["architectures"] == ["LlamaForCausalLM"]
    again = list(export_tab.run_export("en", form))[-1]
    assert again[0] == label("export.failed", "en") and "overwrite_output_dir" in again[1]
