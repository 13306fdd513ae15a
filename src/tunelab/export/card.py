"""The model card (README.md) of an export: base, adapters, datasets, template, dtype, and the runs' final metrics,
read from what training wrote into each run folder."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tunelab.runtime import paths
from tunelab.runtime.names import split_names

# what a run folder may hold: tunelab's own files, then the ones transformers' Trainer and LLaMA-Factory write
METRIC_FILES = (paths.METRICS, "eval_results.json", "all_results.json")


@dataclass(frozen=True)
class CardFacts:
    """What the card says; runs are the folders that trained the adapters (or the full model)."""

    base: str
    adapters: list[str]
    runs: list[Path]
    template: str | None
    datasets: list[str]
    dtype: str
    export_format: str
    verify: list[dict[str, object]] = field(default_factory=list)
    base_note: str | None = None  # e.g. how a packaged alias differs from the hub checkpoint


def run_config(folder: Path) -> dict[str, object]:
    """The resolved config a tunelab run saved (flat keys), or {} when the folder has none."""
    path = paths.output_file(folder, paths.CONFIG)
    if not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


def run_datasets(runs: list[Path], fallback: str | None) -> list[str]:
    """The datasets the runs trained on (their saved configs), else the export config's dataset."""
    names: list[str] = []
    for folder in runs:
        for name in split_names(str(run_config(folder).get("dataset") or "")):
            if name not in names:
                names.append(name)
    return names or split_names(fallback or "")


def run_metrics(folder: Path) -> dict[str, float]:
    """The final numbers of a run: its metric files, and the final losses of run_summary.json."""
    metrics: dict[str, float] = {}
    for name in METRIC_FILES:
        path = folder / name
        if path.is_file():
            data = json.loads(path.read_text(encoding="utf-8"))
            metrics.update({k: v for k, v in data.items() if isinstance(v, (int, float)) and not isinstance(v, bool)})
    summary = folder / paths.SUMMARY
    if summary.is_file():
        data = json.loads(summary.read_text(encoding="utf-8"))
        if isinstance(data.get("final_train_loss"), (int, float)):
            metrics["final_train_loss"] = data["final_train_loss"]
        metrics.update({k: v for k, v in (data.get("final_eval") or {}).items() if isinstance(v, (int, float))})
    return metrics


def metrics_lines(runs: list[Path]) -> list[str]:
    """A table of each run's metrics (loss, eval, speed), or a line saying none were found."""
    lines = []
    for folder in runs:
        metrics = run_metrics(folder)
        if not metrics:
            continue
        lines += [f"Run `{folder}`:", "", "| metric | value |", "| --- | --- |"]
        lines += [f"| {key} | {value:.6g} |" for key, value in sorted(metrics.items())]
        lines.append("")
    return lines or ["No training metrics were found in the run folders.", ""]


def verify_lines(verify: list[dict[str, object]]) -> list[str]:
    """The export-time proof, one line per checked output."""
    if not verify:
        return ["Not verified at export time (export_verify: false).", ""]
    lines = []
    for entry in verify:
        lines.append(f"- {entry['output']}: greedy answers equal on {entry['greedy_equal']} of {entry['prompts']} "
                     f"prompts, max |logit difference| {entry['max_abs_logit_diff']:.3g} ({entry['dtype']})")
    return lines + [""]


def model_card(facts: CardFacts) -> str:
    """README.md text: Hugging Face metadata, then what the model is and how it was made."""
    front = {"base_model": facts.base, "library_name": "transformers", "tags": ["tunelab", "merged"]}
    adapters = "\n".join(f"{i}. `{a}`" for i, a in enumerate(facts.adapters, 1)) or "none (the run's own weights)"
    lines = [
        "---", yaml.safe_dump(front, sort_keys=False).rstrip(), "---", "",
        f"# {facts.base} fine-tuned with tunelab", "",
        f"- Base model: `{facts.base}`" + (f" ({facts.base_note})" if facts.base_note else ""),
        f"- Adapters merged, in order:{' ' if not facts.adapters else chr(10)}{adapters}",
        f"- Datasets: {', '.join(facts.datasets) or 'not recorded'}",
        f"- Chat template: {facts.template or 'the base model’s own'} (saved with the tokenizer)",
        f"- Weights: {facts.dtype}, format {facts.export_format}", "",
        "## Final metrics of the training run", "", *metrics_lines(facts.runs),
        "## Checked at export", "", *verify_lines(facts.verify),
        "## Use", "", *usage_lines(facts.export_format),
    ]
    return "\n".join(lines)


def usage_lines(export_format: str) -> list[str]:
    """How to run the exported model: transformers for a folder, llama.cpp or Ollama for a GGUF file."""
    if export_format == "hf":
        return ["```python", "from transformers import AutoModelForCausalLM, AutoTokenizer",
                "tokenizer = AutoTokenizer.from_pretrained(PATH)",
                "model = AutoModelForCausalLM.from_pretrained(PATH)", "```", ""]
    if export_format == "ollama":
        return ["```bash", "ollama create NAME -f Modelfile", "ollama run NAME", "```", ""]
    return ["```bash", "llama-cli -m FILE.gguf -cnv", "```", ""]
