"""`length`: length control. Each row asks for a text of N characters (or words, or tokens); the answer's length,
measured by a named rule (tunelab.text.length), is compared with N.

The target comes from a field of the row (`target_field`, as `tunelab data length-set` writes it) or from the
prompt (`target_regex`, one group). Rows need no reference answer. Decoding is greedy unless the task samples
(`do_sample: true`): the user story found only low temperature gives stable lengths. Empty answers count (their
length is 0, their deviation minus the target) and are listed, never dropped.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, PositiveFloat, PositiveInt

from tunelab.config.eval_tasks import EvalTaskSpec
from tunelab.eval.kinds.base import Metrics, TaskKind, needs_dataset
from tunelab.eval.kinds.length_plot import draw_actual_vs_target, draw_bands
from tunelab.eval.results import Answer, Row, TaskScore, mean
from tunelab.text.extract import JSON, Extractor
from tunelab.text.length import UNITS, LengthRule, length_rule

DEFAULT_TOLERANCE = (10, 20)
DEFAULT_BANDS = (50, 100, 200, 300, 500)
WITHIN = re.compile(r"within@(\d+)$")


class LengthTask(EvalTaskSpec):
    """A length-control task: the rule, where each row's target is, tolerances, bands and decoding."""

    length_rule: Literal["chars_no_space", "chars", "words", "tokens"] = Field(
        "chars_no_space", description="Length: how an answer is measured: chars_no_space (characters without "
                                      "spaces and line breaks, the spreadsheet LEN rule; default), chars, words "
                                      "(a Chinese character is one word), tokens (needs tokenizer).")
    target_field: str | None = Field(None, description="Length: the field of each row holding its target length "
                                                       "(tunelab data length-set writes target_length).")
    target_regex: str | None = Field(None, description="Length: a regular expression with one group that finds "
                                                       "the target length in the prompt, e.g. '(\\d+)字'.")
    tolerance: PositiveInt | list[PositiveInt] = Field(list(DEFAULT_TOLERANCE), description="Length: k for the "
                                                       "metric within (share of answers within ±k); a list gives "
                                                       "within@k for each.")
    bands: list[PositiveInt] = Field(list(DEFAULT_BANDS), description="Length: upper edges of the target-length "
                                                                      "bands of the deviation-by-band table.")
    do_sample: bool = Field(False, description="Length: sample instead of greedy decoding (default false: stable "
                                               "lengths).")
    temperature: PositiveFloat | None = Field(None, description="Length, with do_sample: sampling temperature "
                                                                "(default: the config's).")
    top_p: float | None = Field(None, gt=0.0, le=1.0, description="Length, with do_sample: nucleus sampling mass "
                                                                  "(default: the config's).")
    tokenizer: str | None = Field(None, description="Length, rule tokens: the model (alias or path) whose "
                                                    "tokenizer counts the tokens.")


def tolerances(task: LengthTask) -> list[int]:
    """The k of within@k, ascending."""
    given = task.tolerance if isinstance(task.tolerance, list) else [task.tolerance]
    return sorted(set(given))


def length_needs(task: LengthTask) -> list[str]:
    """A dataset, exactly one target source that works, a tokenizer for tokens, ascending bands, sane decoding."""
    problems = needs_dataset(task)
    if task.target_field is None and task.target_regex is None:
        problems.append("a length task needs each row's target length: set target_field (the row's field, e.g. "
                        "target_length as `tunelab data length-set` writes it) or target_regex (a regex with one "
                        "group on the prompt, e.g. '(\\d+)字')")
    if task.target_field is not None and task.target_regex is not None:
        problems.append("target_field and target_regex: give one source of the target length, not both")
    if task.target_regex is not None:
        try:
            groups = re.compile(task.target_regex).groups
        except re.error as exc:
            groups = None
            problems.append(f"target_regex {task.target_regex!r} does not compile: {exc}")
        if groups is not None and groups != 1:
            problems.append(f"target_regex has {groups} groups; it needs exactly one, around the number, e.g. "
                            "'(\\d+)字'")
    if task.label_extractor is not None:
        problems.append("label_extractor: a length task reads its target from target_field or target_regex; "
                        "remove label_extractor")
    if task.length_rule == "tokens" and task.tokenizer is None:
        problems.append("length_rule tokens counts a tokenizer's tokens: set tokenizer (a model alias or path)")
    if task.tokenizer is not None and task.length_rule != "tokens":
        problems.append("tokenizer is used by length_rule tokens only; remove it or set length_rule: tokens")
    if task.bands != sorted(set(task.bands)):
        problems.append(f"bands {task.bands} must be ascending without repeats, e.g. [50, 100, 200, 300, 500]")
    sampling = [key for key in ("temperature", "top_p") if getattr(task, key) is not None]
    if sampling and not task.do_sample:
        problems.append(f"{' and '.join(sampling)} apply when sampling; set do_sample: true or remove them")
    return problems


def length_decoding(task: LengthTask) -> dict[str, object]:
    """Greedy unless the task samples; its temperature and top_p when it gives them."""
    fixed: dict[str, object] = {"do_sample": task.do_sample}
    fixed.update({key: getattr(task, key) for key in ("temperature", "top_p") if getattr(task, key) is not None})
    return fixed


def target_value(text: str) -> int | None:
    """A positive whole number ('95', 95.0, full-width '９５'), else None."""
    try:
        number = float(text.strip())
    except ValueError:
        return None
    return int(number) if number.is_integer() and number > 0 else None


def target_reader(task: LengthTask) -> Extractor:
    """Reads each row's target: the raw field's value (the answer's label), or the regex's group on the prompt."""
    if task.target_regex is None:
        return Extractor(f"target_field {task.target_field!r} (a positive whole number)", {},
                         lambda label, _prompt: target_value(label))
    pattern = re.compile(task.target_regex)

    def from_prompt(_label: str, prompt: str) -> int | None:
        found = pattern.search(prompt)
        return target_value(found.group(1)) if found else None
    return Extractor(f"target_regex {task.target_regex!r} (on the prompt)", {}, from_prompt)


@lru_cache(maxsize=4)
def tokenizer_rule(name: str) -> LengthRule:
    """The tokens rule of a model's tokenizer (loaded once per process)."""
    from tunelab.model.load import load_tokenizer, resolve

    tokenizer = load_tokenizer(resolve(name).path)
    return length_rule("tokens", lambda text: tokenizer.encode(text, add_special_tokens=False))


def task_rule(task: LengthTask) -> LengthRule:
    """The task's length rule."""
    if task.length_rule == "tokens" and task.tokenizer is not None:
        return tokenizer_rule(task.tokenizer)
    return length_rule(task.length_rule)


def band_labels(edges: Sequence[int]) -> list[str]:
    """'1-50', '51-100', ..., '501+' for edges 50, 100, ..., 500."""
    lows = [1] + [edge + 1 for edge in edges]
    return [f"{low}-{edge}" for low, edge in zip(lows, edges)] + [f"{lows[-1]}+"]


def band_of(target: int, edges: Sequence[int]) -> int:
    """The index of the band a target falls in."""
    return next((index for index, edge in enumerate(edges) if target <= edge), len(edges))


def figures(targets: Sequence[int], deviations: Sequence[int], ks: list[int]) -> dict[str, float]:
    """mae, mre (percent of the target), bias and within@k (percent of rows) of some rows."""
    result = {"mae": mean([abs(d) for d in deviations]),
              "mre": mean([100.0 * abs(d) / t for d, t in zip(deviations, targets)]),
              "bias": mean(deviations)}
    for k in ks:
        result[f"within@{k}"] = mean([100.0 * (abs(d) <= k) for d in deviations])
    return result


def band_table(targets: Sequence[int], deviations: Sequence[int], edges: Sequence[int],
               ks: list[int]) -> list[dict[str, object]]:
    """The figures per target-length band (bands without rows left out)."""
    table: list[dict[str, object]] = []
    bands = [band_of(target, edges) for target in targets]
    for index, label in enumerate(band_labels(edges)):
        inside = [i for i, band in enumerate(bands) if band == index]
        if inside:
            values = figures([targets[i] for i in inside], [deviations[i] for i in inside], ks)
            table.append({"band": label, "rows": len(inside), **{k: round(v, 4) for k, v in values.items()}})
    return table


def asked_metrics(names: list[str], ks: list[int]) -> list[str]:
    """The metric names with `within` spelled out as within@k for each tolerance."""
    return [expanded for name in names for expanded in ([f"within@{k}" for k in ks] if name == "within" else [name])]


def score_length(task: LengthTask, names: list[str], answers: Sequence[Answer], gold: list[JSON],
                 extracted: list[JSON], workers: int | None) -> TaskScore:
    """Each answer's length by the task's rule against its target: mae, mre, bias, within@k; rows and bands."""
    rule = task_rule(task)
    asked = asked_metrics(names, tolerances(task))
    ks = sorted({int(m.group(1)) for name in asked if (m := WITHIN.match(name))} | set(tolerances(task)))
    targets = [int(str(value)) for value in gold]  # read by target_reader: positive whole numbers
    actual = [rule(str(value)) if value is not None else 0 for value in extracted]  # an empty answer is 0 long
    deviations = [length - target for length, target in zip(actual, targets)]
    rows: list[Row] = [{"target": t, "actual": a, "deviation": d, "mae": abs(d), "mre": round(100.0 * abs(d) / t, 4)}
                       for t, a, d in zip(targets, actual, deviations)]
    overall = figures(targets, deviations, ks)
    details: dict[str, object] = {
        "length_rule": f"{task.length_rule} ({UNITS[task.length_rule]})",
        "tolerance": tolerances(task),
        "empty_answers": [a.id for a, value in zip(answers, extracted) if value is None],
        "bands": band_table(targets, deviations, task.bands, ks)}
    return TaskScore(task.name, task.type, {name: overall[name] for name in asked}, len(answers), rows=rows,
                     details=details)


def band_means(score: TaskScore) -> dict[str, tuple[float, float]]:
    """Band label -> (mean absolute deviation, mean deviation), from the band table score_length wrote."""
    table = score.details["bands"]
    assert isinstance(table, list)  # score_length's band_table
    return {str(band["band"]): (float(band["mae"]), float(band["bias"])) for band in table}


def plot_length(task: LengthTask, scores: dict[str, TaskScore], out: Path) -> list[Path]:
    """<task>_length.png (actual vs target, y = x, a series per model) and <task>_length_bands.png."""
    unit, rule = UNITS[task.length_rule], f"rule {task.length_rule}"
    series, tables = {}, {}
    for model, score in scores.items():
        targets = [int(str(row["target"])) for row in score.rows]
        deviations = [int(str(row["deviation"])) for row in score.rows]
        series[model] = (targets, [t + d for t, d in zip(targets, deviations)])
        tables[model] = band_means(score)
    return [draw_actual_vs_target(out / f"{task.name}_length.png", f"{task.name}: actual vs target length ({rule})",
                                  unit, series),
            draw_bands(out / f"{task.name}_length_bands.png", f"{task.name}: deviation by target length ({rule}; "
                       "+ too long, - too short)", unit, tables)]


def read_targets(_kind: TaskKind, task: LengthTask) -> Extractor:
    """How the kind reads each row's reference: as its target length."""
    return target_reader(task)


def target_column(task: LengthTask) -> str | None:
    """The raw field holding the targets, when the task reads them from the rows."""
    return task.target_field


METRIC_NAMES = ("mae", "mre", "within", "bias")

KIND = TaskKind(
    "length", "length control: each answer's length (a named rule) against the row's target; mae, mre, within@k",
    LengthTask, Metrics(METRIC_NAMES, WITHIN, "mae, mre, bias, within (within@k for each tolerance), within@K"),
    METRIC_NAMES, extractor="text", score=score_length, read_labels=read_targets,
    needs=length_needs, needs_reference=False, plot=plot_length,
    scales={"mae": "length units of the rule, lower is better", "mre": "percent of the target, lower is better",
            "bias": "length units, + too long, - too short"},
    label_column=target_column, decoding=length_decoding)
