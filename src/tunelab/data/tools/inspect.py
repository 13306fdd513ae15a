"""What the trainer will see, for `tunelab data tokenize | preview | stats | validate`.

The data layer loads no models: the caller (interfaces/data_cli.py) loads the run's tokenizer and passes it in.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tunelab.config.schema import DataSection, RunConfig
from tunelab.data.bundle import DataBundle
from tunelab.data.convert.media import DROP_FIX, media_problem, media_rows
from tunelab.data.encode.cutoff import IGNORE_INDEX
from tunelab.data.errors import DataError
from tunelab.data.examples import Supervised, TextExample
from tunelab.data.gather import load_records
from tunelab.data.kinds import kind_of
from tunelab.data.packing import data_cutoff_len, pretrain_block_counts, pretrain_eos_token
from tunelab.data.pipeline import build_data, tokenize_records
from tunelab.data.report import DataReport
from tunelab.runtime.atomic import atomic_file

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
    receives, under LLaMA-Factory's names (chosen_input_ids ... for pairs; kl_input_ids, kto_tags for KTO)."""
    count = 0
    evals = bundle.eval if isinstance(bundle.eval, dict) else {"": bundle.eval} if bundle.eval is not None else {}
    parts = [("train", bundle.train)] + [(f"eval_{name}" if name else "eval", part) for name, part in evals.items()]
    with atomic_file(out) as handle:
        for split, dataset in parts:
            for row in dataset:
                columns = {k: v if isinstance(v, bool) else list(v) for k, v in row.items()}  # kto_tags: a flag
                handle.write(json.dumps({"split": split, **columns}) + "\n")
                count += 1
    return count


def report_lines(report: DataReport, examples: bool = True) -> list[str]:
    """The data report as a few lines (without the example counts when nothing was tokenized)."""
    totals = report.totals()
    lines = [f"rows read {totals['rows_read']:,}, converted {totals['rows_converted']:,}, skipped "
             f"{totals['rows_skipped']:,}, truncated {totals['truncated']:,}, turns dropped for length "
             f"{totals['turns_dropped_for_length']:,}",
             f"examples: {report.train_examples:,} train, {report.eval_examples:,} eval; tokens {totals['tokens']:,}, "
             f"trained {totals['tokens_trained']:,}"][: 2 if examples else 1]
    if report.packed_rows or report.tokens_dropped:
        lines.append(f"packed rows {report.packed_rows:,}; examples dropped for length {report.dropped_for_length:,}; "
                     f"tokens dropped {report.tokens_dropped:,}")
    for dataset in report.datasets:
        lines += [f"  {dataset.name}: {reason}: {count}" for reason, count in dataset.skipped.items()]
        lines += [f"  {dataset.name}: {note}" for note in dataset.notes]
        if dataset.media_dropped:
            lines.append(f"  {dataset.name}: {dataset.media_dropped:,} media files dropped with their placeholders "
                         "(drop_media)")
    return lines


def distribution(name: str, values: list[int]) -> str:
    """min, median, p95, max and mean of some token counts, on one line."""
    import numpy as np

    array = np.array(values)
    return (f"{name:>8}: min {array.min()}, median {int(np.median(array))}, p95 {int(np.percentile(array, 95))}, "
            f"max {array.max()}, mean {array.mean():.1f}")


@dataclass
class LengthStats:
    """Untruncated prompt and response token counts per example, and what cutoff_len would cut."""

    prompt: list[int]
    response: list[int]
    cutoff_len: int

    @property
    def over_cutoff(self) -> int:
        """Examples longer than cutoff_len."""
        return sum(1 for p, r in zip(self.prompt, self.response) if p + r > self.cutoff_len)

    def series(self) -> list[tuple[str, list[int]]]:
        """The token counts to summarise and plot, by name."""
        return [("prompt", self.prompt), ("response", self.response),
                ("total", [p + r for p, r in zip(self.prompt, self.response)])]

    def summary(self) -> list[str]:
        """The distributions and the count cutoff_len would truncate."""
        return [distribution(name, values) for name, values in self.series()] + [
            f"{self.over_cutoff} of {len(self.prompt)} examples are longer than cutoff_len {self.cutoff_len} and "
            "would be truncated"]


@dataclass
class TextLengthStats:
    """Pre-training texts (stage pt): token counts per text (end-of-text included) and what packing into blocks of
    cutoff_len makes of them, or what truncation cuts without packing."""

    text: list[int]
    cutoff_len: int
    packing: bool
    block_size: int
    batch_size: int

    @property
    def over_cutoff(self) -> int:
        """Texts longer than cutoff_len (truncated when not packing)."""
        return sum(1 for length in self.text if length > self.cutoff_len)

    def series(self) -> list[tuple[str, list[int]]]:
        """The token counts to summarise and plot, by name."""
        return [("text", self.text)]

    def summary(self) -> list[str]:
        """The distribution, then the blocks and dropped tokens of packing (or the texts truncation cuts)."""
        lines = [distribution("text", self.text)]
        if not self.packing:
            return lines + [f"{self.over_cutoff} of {len(self.text)} texts are longer than cutoff_len "
                            f"{self.cutoff_len} and would be truncated (packing: false)"]
        blocks, dropped = pretrain_block_counts(self.text, self.block_size, self.batch_size)
        tokens = sum(self.text)
        lines.append(f"packing {tokens:,} tokens into blocks of {self.block_size}: {blocks:,} examples, {dropped:,} "
                     f"tokens dropped (the rest after the last full block of each preprocessing batch of "
                     f"{self.batch_size} texts, as LLaMA-Factory does)")
        if not blocks:
            fix = ("raise preprocessing_batch_size" if tokens >= self.block_size
                   else f"set cutoff_len: {tokens + self.cutoff_len - self.block_size} or lower")
            lines.append(f"no examples: training would stop; {fix}, or set packing: false")
        return lines


def length_stats(config: RunConfig, tokenizer: PreTrainedTokenizerBase) -> LengthStats | TextLengthStats:
    """Token lengths of prompts (everything not trained) and responses before truncation, or of pre-training texts."""
    require_dataset(config)
    data = config.data.model_copy(update={"cutoff_len": 10**9})
    records, report = load_records(data, config.method.stage, config.train.seed)
    kind = kind_of(config.method.stage)
    if kind.example is TextExample:
        return text_length_stats([record.text for record in records], tokenizer, config.data)
    if kind.example is not Supervised:  # pairs, KTO examples, prompts: the kind's own columns (never packed)
        lengths = [row_lengths(kind.name, row) for row in kind.build(records, tokenizer, data, report, "train")]
        return LengthStats([p for p, _ in lengths], [r for _, r in lengths], config.data.cutoff_len)
    columns = tokenize_records(records, tokenizer, data, report)
    response = [sum(1 for label in labels if label != IGNORE_INDEX) for labels in columns["labels"]]
    prompt = [len(ids) - r for ids, r in zip(columns["input_ids"], response)]
    return LengthStats(prompt, response, config.data.cutoff_len)


def row_lengths(kind: str, row: dict[str, list[int] | bool]) -> tuple[int, int]:
    """(prompt, response) tokens of one encoded row: for a pair its longer answer (the cutoff rule sizes both answers
    by it), for a prompt its reference answer, else the trained tokens."""
    if kind == "pair":
        chosen, rejected = list(row["chosen_labels"]), list(row["rejected_labels"])
        prompt = chosen.count(IGNORE_INDEX)
        return prompt, max(len(chosen), len(rejected)) - prompt
    if kind == "prompt":
        return len(row["input_ids"]), len(row["labels"])
    labels = list(row["labels"])
    trained = sum(1 for label in labels if label != IGNORE_INDEX)
    return len(labels) - trained, trained


def text_length_stats(texts: list[str], tokenizer: PreTrainedTokenizerBase, data: DataSection) -> TextLengthStats:
    """Token counts of pre-training texts as `pack_pretrain` tokenizes them (text + end-of-text)."""
    eos = pretrain_eos_token(tokenizer, data.template)
    lengths = [len(ids) for ids in tokenizer([text + eos for text in texts], add_special_tokens=False)["input_ids"]]
    packing = True if data.packing is None else data.packing
    return TextLengthStats(lengths, data.cutoff_len, packing,
                           data_cutoff_len(data),
                           data.preprocessing_batch_size)


def plot_lengths(stats: LengthStats | TextLengthStats, path: Path) -> None:
    """Histogram PNG of the token counts (prompt, response and total, or texts) with the cutoff marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 4.5))
    series = stats.series()
    for label, values in series:
        axis.hist(values, bins=50, alpha=0.5, label=label)
    axis.axvline(stats.cutoff_len, color="red", linestyle="--", label=f"cutoff_len {stats.cutoff_len}")
    axis.set_xlabel("tokens per example")
    axis.set_ylabel("examples")
    axis.set_title(f"{stats.over_cutoff} of {len(series[0][1])} examples longer than cutoff_len")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def verdict(report: DataReport, problems: list[str]) -> str:
    """The last line of `tunelab data validate`."""
    if not problems:
        return "valid: every row converts"
    skipped = report.totals()["rows_skipped"]
    if not skipped:  # only datasets whose media training would refuse
        return "the datasets have problems (listed above); training stops on them"
    return f"{skipped} rows have problems (listed above; training stops at the first unless on_bad_row: skip)"


def validate(config: RunConfig) -> tuple[DataReport, list[str]]:
    """Convert every row with skipping on, so every bad row is listed (not just the first), and every dataset whose
    rows carry media that training would refuse."""
    require_dataset(config)
    data = config.data.model_copy(update={"on_bad_row": "skip"})
    records, report = load_records(data, config.method.stage, config.train.seed)
    problems = [f"{issue.dataset} ({d.file}) row {issue.row}: {issue.reason}" for d in report.datasets
                for issue in d.skipped_rows]
    problems += [f"{d.name} ({d.file}): no rows; add rows, or remove the dataset from the config"
                 for d in report.datasets if d.rows_read == 0]
    for dataset, counts in ({} if data.drop_media else media_rows(records)).items():
        converted = sum(d.rows_converted for d in report.datasets if d.name == dataset)
        rows = f"{counts['rows']:,} of {converted:,} rows carry"
        problems.append(f"{dataset}: {media_problem(counts, rows, None)}; {DROP_FIX}")
    return report, problems
