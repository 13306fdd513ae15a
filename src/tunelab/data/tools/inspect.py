"""What the trainer will see, for `tunelab data tokenize | preview | stats | validate`.

The data layer loads no models: the caller (interfaces/data_cli.py) loads the run's tokenizer and passes it in.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tunelab.config.schema import RunConfig
from tunelab.data.errors import DataError
from tunelab.data.gather import load_records
from tunelab.data.pipeline import DataBundle, build_data, tokenize_records
from tunelab.data.report import DataReport
from tunelab.data.tokenize import IGNORE_INDEX

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


def require_dataset(config: RunConfig) -> None:
    """The data tools need a dataset to look at."""
    if not config.data.dataset:
        raise DataError("the config names no dataset", field="dataset", fix="set dataset: NAME (or dataset=NAME)")


def build(config: RunConfig, tokenizer: PreTrainedTokenizerBase) -> DataBundle:
    """The exact training data of a config, tokenized with the run's tokenizer."""
    require_dataset(config)
    return build_data(config.data, tokenizer, config.train.seed, config.method.stage)


def write_tokenized(bundle: DataBundle, out: Path) -> int:
    """One JSON line per example (train, then eval, or eval_NAME per eval dataset): every column the collator
    receives."""
    count = 0
    evals = bundle.eval if isinstance(bundle.eval, dict) else {"": bundle.eval} if bundle.eval is not None else {}
    parts = [("train", bundle.train)] + [(f"eval_{name}" if name else "eval", part) for name, part in evals.items()]
    with out.open("w", encoding="utf-8") as handle:
        for split, dataset in parts:
            for row in dataset:
                handle.write(json.dumps({"split": split, **{k: list(v) for k, v in row.items()}}) + "\n")
                count += 1
    return count


def trained_spans(input_ids: list[int], labels: list[int]) -> list[tuple[bool, list[int]]]:
    """Runs of consecutive tokens that are (True) or are not (False) trained."""
    spans: list[tuple[bool, list[int]]] = []
    for token, label in zip(input_ids, labels):
        trained = label != IGNORE_INDEX
        if spans and spans[-1][0] == trained:
            spans[-1][1].append(token)
        else:
            spans.append((trained, [token]))
    return spans


def preview_text(tokenizer: PreTrainedTokenizerBase, input_ids: list[int], labels: list[int], markup: bool) -> str:
    """The decoded example; trained spans in green (markup) or between ⟦ ⟧."""
    from rich.markup import escape

    parts = []
    for trained, ids in trained_spans(input_ids, labels):
        text = tokenizer.decode(ids, skip_special_tokens=False)
        if markup:
            text = f"[bold green]{escape(text)}[/]" if trained else escape(text)
        elif trained:
            text = f"⟦{text}⟧"
        parts.append(text)
    return "".join(parts)


def report_lines(report: DataReport, examples: bool = True) -> list[str]:
    """The data report as a few lines (without the example counts when nothing was tokenized)."""
    totals = report.totals()
    lines = [f"rows read {totals['rows_read']:,}, converted {totals['rows_converted']:,}, skipped "
             f"{totals['rows_skipped']:,}, truncated {totals['truncated']:,}, turns dropped for length "
             f"{totals['turns_dropped_for_length']:,}",
             f"examples: {report.train_examples:,} train, {report.eval_examples:,} eval; tokens {totals['tokens']:,}, "
             f"trained {totals['tokens_trained']:,}"][: 2 if examples else 1]
    if report.packed_rows:
        lines.append(f"packed rows {report.packed_rows:,}; examples dropped for length {report.dropped_for_length:,}; "
                     f"tokens dropped {report.tokens_dropped:,}")
    for dataset in report.datasets:
        lines += [f"  {dataset.name}: {reason}: {count}" for reason, count in dataset.skipped.items()]
        lines += [f"  {dataset.name}: {note}" for note in dataset.notes]
    return lines


@dataclass
class LengthStats:
    """Untruncated prompt and response token counts per example, and what cutoff_len would cut."""

    prompt: list[int]
    response: list[int]
    cutoff_len: int

    @property
    def over_cutoff(self) -> int:
        return sum(1 for p, r in zip(self.prompt, self.response) if p + r > self.cutoff_len)

    def summary(self) -> list[str]:
        import numpy as np

        lines = []
        for name, values in (("prompt", self.prompt), ("response", self.response),
                             ("total", [p + r for p, r in zip(self.prompt, self.response)])):
            array = np.array(values)
            lines.append(f"{name:>8}: min {array.min()}, median {int(np.median(array))}, p95 "
                         f"{int(np.percentile(array, 95))}, max {array.max()}, mean {array.mean():.1f}")
        lines.append(f"{self.over_cutoff} of {len(self.prompt)} examples are longer than cutoff_len {self.cutoff_len} "
                     "and would be truncated")
        return lines


def length_stats(config: RunConfig, tokenizer: PreTrainedTokenizerBase) -> LengthStats:
    """Token lengths of prompts (everything not trained) and responses, before truncation."""
    require_dataset(config)
    data = config.data.model_copy(update={"cutoff_len": 10**9})
    records, report = load_records(data, config.method.stage, config.train.seed)
    columns = tokenize_records(records, tokenizer, data, report)
    response = [sum(1 for label in labels if label != IGNORE_INDEX) for labels in columns["labels"]]
    prompt = [len(ids) - r for ids, r in zip(columns["input_ids"], response)]
    return LengthStats(prompt, response, config.data.cutoff_len)


def plot_lengths(stats: LengthStats, path: Path) -> None:
    """Histogram PNG of prompt, response and total lengths with the cutoff marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 4.5))
    totals = [p + r for p, r in zip(stats.prompt, stats.response)]
    for values, label in ((stats.prompt, "prompt"), (stats.response, "response"), (totals, "total")):
        axis.hist(values, bins=50, alpha=0.5, label=label)
    axis.axvline(stats.cutoff_len, color="red", linestyle="--", label=f"cutoff_len {stats.cutoff_len}")
    axis.set_xlabel("tokens per example")
    axis.set_ylabel("examples")
    axis.set_title(f"{stats.over_cutoff} of {len(totals)} examples longer than cutoff_len")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def validate(config: RunConfig) -> tuple[DataReport, list[str]]:
    """Convert every row with skipping on, so every bad row is listed (not just the first)."""
    require_dataset(config)
    data = config.data.model_copy(update={"on_bad_row": "skip"})
    _, report = load_records(data, config.method.stage, config.train.seed)
    problems = [f"{issue.dataset} row {issue.row}: {issue.reason}" for d in report.datasets for issue in d.skipped_rows]
    return report, problems
