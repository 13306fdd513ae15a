"""What the Evaluate & Predict tab computes: the eval_tasks list (from a YAML or the form), the eval YAML it writes
and checks as `tunelab eval` would, the command it runs, and the report the CLI leaves in the output folder
(table, charts, and rows/<task>.jsonl for the row browser). The tasks YAML, dataset folder and report folder follow
the web UI's path rule (safe_paths.checked_path): relative paths are inside the working folder."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tunelab.config.errors import ConfigError, Problem
from tunelab.interfaces.webui.cli_capture import Captured, capture, cli_runner
from tunelab.interfaces.webui.safe_paths import checked_path, collect
from tunelab.interfaces.webui.top_config import blank, model_keys, run_folder
from tunelab.runtime.processes import tunelab_argv

CONFIG_NAME = "webui_eval.yaml"
LOG_NAME = "webui_eval.log"  # the command's output, next to its config
RESULTS_MD = "eval_results.md"
Task = dict[str, object]  # one eval_tasks entry as the YAML holds it
JsonRow = dict[str, Any]  # one line of rows/<task>.jsonl, as eval/report.py writes it (nested JSON)


def kind_names() -> list[str]:
    """The eval task kinds, in table order."""
    from tunelab.eval.kinds import KINDS

    return list(KINDS)


def task_entry(name: str, kind: str, dataset: str | None, metrics: str | None, extractor: str | None) -> Task:
    """One eval_tasks entry from the form (metrics a comma list; extractor a name or a JSON object)."""
    entry: dict[str, object] = {"name": blank(name) or blank(dataset) or kind, "type": kind}
    if blank(dataset):
        entry["dataset"] = blank(dataset)
    names = [m.strip() for m in (metrics or "").split(",") if m.strip()]
    if names:
        entry["metrics"] = names
    text = blank(extractor)
    if text and text.startswith("{"):
        try:
            entry["extractor"] = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError([Problem("extractor", f"not valid JSON ({exc.msg}); give a name, or an object like "
                                       '{"name": "regex", "pattern": "答案[:：](?P<answer>.+)"}')]) from None
    elif text:
        entry["extractor"] = text
    return entry


def add_task(tasks_yaml: str, entry: Task) -> str:
    """The tasks YAML with one more entry (a task of the same name is replaced)."""
    tasks = [t for t in parse_tasks(tasks_yaml) if not (isinstance(t, dict) and t.get("name") == entry["name"])]
    return dump_tasks(tasks + [entry])


def dump_tasks(tasks: list[object]) -> str:
    """eval_tasks as YAML (a list)."""
    return yaml.safe_dump(tasks, allow_unicode=True, sort_keys=False) if tasks else ""


def parse_tasks(tasks_yaml: str) -> list[object]:
    """The tasks box: a YAML list of task mappings (a ConfigError naming the box otherwise)."""
    try:
        tasks = yaml.safe_load(tasks_yaml or "") or []
    except yaml.YAMLError as exc:
        raise ConfigError([Problem("eval_tasks", f"the tasks box is not valid YAML ({exc}); fix it or clear it")])
    if not isinstance(tasks, list):
        raise ConfigError([Problem("eval_tasks", "the tasks box must be a YAML list (- name: ...); fix it")])
    return tasks


def tasks_from_file(path: str, workdir: Path) -> tuple[str, Captured]:
    """The eval_tasks of a YAML config (read as the CLI reads configs), as the tasks box's text."""
    from tunelab.config.load import read_yaml

    found: list[str] = []

    def handler(_: argparse.Namespace) -> int:
        tasks = read_yaml(checked_path("tasks YAML file", path, workdir)).get("eval_tasks")
        if not isinstance(tasks, list) or not tasks:
            raise ConfigError([Problem(f"{path}: eval_tasks", "the file lists no eval_tasks; add some or pick "
                                       "another file")])
        found.append(dump_tasks(tasks))
        return 0

    done = capture(handler, argparse.Namespace(), cli_runner)
    return (found[0] if found else ""), done


@dataclass(frozen=True)
class EvalForm:
    """The top bar and tab values of an eval run."""

    model: str
    template: str | None
    finetuning_type: str | None
    run_dir: str | None
    dataset_dir: str
    output_dir: str
    tasks_yaml: str
    max_new_tokens: int
    workdir: Path = field(default_factory=Path.cwd)  # relative folders are read from here, and may not leave it
    system: str | None = None  # the top bar's system prompt (default_system), for rows without one

    def report_dir(self) -> Path:
        """The report folder, by the path rule (a ConfigError naming output_dir when it is missing or escapes)."""
        if not blank(self.output_dir):
            raise ConfigError([Problem("output_dir", "no output folder; give the folder the report goes to")])
        return report_folder(self.output_dir, self.workdir)

    def keys(self) -> dict[str, object]:
        """The eval config's flat keys: base vs the run (its adapter, or its whole model for freeze/full), the system
        prompt; every problem of the form is reported together."""
        problems: list[Problem] = []
        model = collect(problems, lambda: model_keys(self.model, self.template, self.finetuning_type))
        run = collect(problems, lambda: run_folder(self.run_dir, required=True, workdir=self.workdir))
        data = collect(problems, lambda: checked_path("dataset_dir", self.dataset_dir, self.workdir, must_exist=True))
        report = collect(problems, self.report_dir)
        tasks = collect(problems, lambda: parse_tasks(self.tasks_yaml))
        if problems:
            raise ConfigError(problems)
        keys = {**(model or {}), "dataset_dir": str(data), "output_dir": str(report),
                "max_new_tokens": self.max_new_tokens, "do_sample": False, "eval_tasks": tasks}
        if blank(self.system):
            keys["default_system"] = self.system
        if run is not None and (run / "adapter_config.json").is_file():
            keys["adapter_name_or_path"] = str(run)
        elif run is not None:
            keys["eval_models"] = [{"name": "base"}, {"name": "fine-tuned", "model_name_or_path": str(run)}]
        return keys


def write_config(form: EvalForm) -> tuple[Path | None, Captured]:
    """Write the eval YAML into the output folder and check it as `tunelab eval` would (purpose eval)."""
    written: list[Path] = []

    def handler(_: argparse.Namespace) -> int:
        import tunelab.eval  # noqa: F401 - registers the task kinds the checks ask

        from tunelab.config.load import load_config

        keys = form.keys()
        out = Path(str(keys["output_dir"]))
        out.mkdir(parents=True, exist_ok=True)
        path = out / CONFIG_NAME
        path.write_text(yaml.safe_dump(keys, allow_unicode=True, sort_keys=False), encoding="utf-8")
        load_config(path, purpose="eval")
        written.append(path)
        print(f"wrote {path}")
        return 0

    done = capture(handler, argparse.Namespace(), cli_runner)
    return (written[0] if written and done.ok else None), done


def eval_argv(config: Path, compare: bool = True) -> list[str]:
    """`tunelab eval CONFIG --compare` as an argument list."""
    return tunelab_argv("eval", str(config), *(["--compare"] if compare else []))


def report_folder(text: str, workdir: Path) -> Path:
    """A report folder typed into the tab, by the path rule (inside the working folder when relative)."""
    return checked_path("output_dir", text, workdir)


def results_markdown(folder: Path) -> str:
    """The eval_results.md the CLI wrote, or empty text."""
    path = folder / RESULTS_MD
    return path.read_text(encoding="utf-8") if path.is_file() else ""


def figures(folder: Path) -> list[str]:
    """The PNG charts the CLI wrote into the report folder (the table's bars first)."""
    if not folder.is_dir():
        return []
    return [str(p) for p in sorted(folder.glob("*.png"), key=lambda p: (p.stem != "eval_results", p.name))]


def row_tasks(folder: Path) -> list[str]:
    """The tasks with per-row comparisons (rows/<task>.jsonl)."""
    rows = folder / "rows"
    return sorted(p.stem for p in rows.glob("*.jsonl")) if rows.is_dir() else []


def read_rows(folder: Path, task: str) -> list[JsonRow]:
    """rows/<task>.jsonl as written by eval/report.py (id, label, changed, models)."""
    path = folder / "rows" / f"{task}.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def outcome_text(result: JsonRow) -> str:
    """A model's outcome on a row: correct/wrong, else its first number."""
    if "correct" in result:
        return "✓" if result["correct"] else "✗"
    numbers = [f"{k} {v:.3g}" for k, v in result.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return numbers[0] if numbers else ""


def row_table(folder: Path, task: str, changed_only: bool) -> tuple[list[str], list[list[str]]]:
    """Headers and rows for the row browser: id, reference, then each model's answer and outcome side by side."""
    rows = read_rows(folder, task)
    models = list(rows[0]["models"]) if rows else []
    headers = ["id", "changed", "label"] + [f"{m} {part}" for m in models for part in ("answer", "outcome")]
    table = []
    for row in rows:
        if changed_only and not row.get("changed"):
            continue
        cells = [str(row.get("id")), "●" if row.get("changed") else "", str(row.get("label", ""))]
        for model in models:
            result = row["models"].get(model, {})
            cells += [str(result.get("predict", result.get("extracted", ""))), outcome_text(result)]
        table.append(cells)
    return headers, table
