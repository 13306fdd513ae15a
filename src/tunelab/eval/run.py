"""`tunelab eval`: every task for every model, predictions reused when up to date, one report.

Order of work: every task is prepared first (datasets read, references checked, predictions files
matched, benchmark folders parsed), so bad input stops the run before a model loads. Then each model is
loaded once and runs every task; results land in <output_dir>/<model>/<task>/ and the report in
<output_dir>/eval_results.{json,md,png} with per-row comparisons in <output_dir>/rows/<task>.jsonl.
"""

from __future__ import annotations

import gc
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tunelab.config.eval_tasks import EvalModelSpec, EvalTaskSpec
from tunelab.config.schema import InferSection, RunConfig
from tunelab.data.gather import load_prompts, load_records, selected_rows
from tunelab.eval.errors import EvalError
from tunelab.eval.kinds import kind_of
from tunelab.eval.kinds.base import Measured, ScoreModels
from tunelab.eval.predictions import match_to_dataset, read_predictions
from tunelab.eval.results import Answer, TaskScore
from tunelab.eval.reuse import answers_from_run, prediction_fingerprint, reuse_or_reset, save_fingerprint
from tunelab.eval.score import gold_values, score_task
from tunelab.infer.backends.vllm_load import VllmBundle
from tunelab.model.load import ModelBundle
from tunelab.runtime.logging import info, warn
from tunelab.runtime.progress import Counter

if TYPE_CHECKING:
    from tunelab.infer.predict import PredictReport


@dataclass
class PreparedTask:
    """A task checked and ready: its dataset rows with references (and answers from a file), or, for a kind
    that scores the model directly, its inputs read and bound into `measure`."""

    spec: EvalTaskSpec
    expected: list[Answer] | None = None
    answers: list[Answer] | None = None  # from a `predictions:` file
    measure: Measured | None = None
    score_models: ScoreModels | None = None  # a kind scoring all models' answers together, after all answered
    answered: dict[str, tuple[list[Answer], dict[str, object]]] = field(default_factory=dict)  # model -> answers


def compared_models(config: RunConfig, compare: bool) -> list[EvalModelSpec]:
    """The models to evaluate: the configured one, or for --compare eval_models (default: base and base + adapter)."""
    base = config.model.model_name_or_path
    adapter = config.model.adapter_name_or_path
    if not compare:
        return [EvalModelSpec(name="fine-tuned" if adapter else "model", adapter_name_or_path=adapter)]
    if config.eval.eval_models:
        return config.eval.models()
    if not adapter:
        raise EvalError("--compare needs models to compare: set adapter_name_or_path (a LoRA run's output_dir, "
                        f"compared with the bare {base}) or list eval_models (for a freeze or full run: "
                        "eval_models: [{name: base}, {name: fine-tuned, model_name_or_path: <its output_dir>}])")
    return [EvalModelSpec(name="base"), EvalModelSpec(name="fine-tuned", adapter_name_or_path=adapter)]


def expected_answers(config: RunConfig, task: EvalTaskSpec) -> list[Answer]:
    """The task dataset's rows as answers-to-be, each with its reference (from the kind's raw column when it names
    one); rows without one are an error for the kinds that score against a reference, the only kinds whose rows
    must have a response."""
    kind = kind_of(task)
    data = config.data.model_copy(update={"dataset": task.dataset})
    records = load_records(data)[0] if kind.needs_reference else load_prompts(data)[0]
    column = kind.label_column(task)
    raw = selected_rows(data) if column else {}
    answers, empty = [], []
    for record in records:
        row_id = f"{record.dataset}:{record.row}"
        label = column_label(task, raw[record.dataset][record.row - 1], column, row_id) if column \
            else record.reference
        if kind.needs_reference and not label.strip():
            empty.append(row_id)
        prompt = "\n".join(m["content"] for m in record.prompt_dicts() if m["role"] == "user")
        answers.append(Answer(id=row_id, prompt=prompt, label=label, predict=""))
    if empty:
        raise EvalError(f"task {task.name}: {len(empty)} of {len(answers)} rows of dataset {task.dataset} have no "
                        f"reference answer (first: {empty[0]}); put the expected answer in the response column "
                        "(output), or use a perplexity task for plain text")
    if not answers:
        raise EvalError(f"task {task.name}: dataset {task.dataset} has no rows")
    return answers


def column_label(task: EvalTaskSpec, row: dict[str, object], column: str, row_id: str) -> str:
    """A row's reference read from a raw column; a row without it is an error naming the row and the column."""
    value = row.get(column)
    if value is None or value == "":
        fields = ", ".join(row)
        raise EvalError(f"task {task.name}: row {row_id} has no value in field {column!r} (its fields: {fields}); "
                        "fill it in, or name the right field in the task")
    return str(value)


def prepare(config: RunConfig, compare: bool, models: list[str] | None = None) -> list[PreparedTask]:
    """Check and load every task's inputs before any model is loaded."""
    prepared = []
    for task in config.eval.tasks():
        item = PreparedTask(task)
        kind = kind_of(task)
        if kind.measure is not None:
            item.measure = kind.measure(config, task)
        else:
            item.expected = expected_answers(config, task)
            gold_values(task, item.expected)
            if task.predictions:
                if compare:
                    raise EvalError(f"task {task.name}: predictions names one file, which cannot stand for several "
                                    "models under --compare; remove it to generate each model's answers")
                item.answers = match_to_dataset(read_predictions(task.predictions), item.expected, task.predictions)
            if kind.across_models is not None:
                item.score_models = kind.across_models(config, task, models or ["model"], item.expected)
        prepared.append(item)
    return prepared


def model_config(config: RunConfig, model: EvalModelSpec, out: Path) -> RunConfig:
    """The run config of one compared model, writing into its own folder."""
    section = config.model.model_copy(update={
        "model_name_or_path": model.model_name_or_path or config.model.model_name_or_path,
        "adapter_name_or_path": model.adapter_name_or_path})
    data = config.data.model_copy(update={"template": model.template or config.data.template})
    train = config.train.model_copy(update={"output_dir": str(out)})
    return config.model_copy(update={"model": section, "data": data, "train": train})


def needs_model(prepared: list[PreparedTask]) -> bool:
    """Whether any task must run the model (a task scoring a predictions file does not)."""
    return any(item.answers is None for item in prepared)


def evaluate(config: RunConfig, compare: bool = False) -> dict[str, dict[str, TaskScore]]:
    """Run every task for every model; returns model -> task -> score and writes the report."""
    from tunelab.eval.report import write_report

    out = Path(config.train.output_dir)
    models = compared_models(config, compare)
    prepared = prepare(config, compare, [model.name for model in models])
    results: dict[str, dict[str, TaskScore]] = {}
    for model in models:
        info(f"model {model.name}: {model.model_name_or_path or config.model.model_name_or_path}"
             + (f" + {model.adapter_name_or_path}" if model.adapter_name_or_path else ""))
        results[model.name] = run_model(model_config(config, model, out / model.name), prepared, model.name)
        gc.collect()
    for item in prepared:
        if item.score_models is not None:
            score_across_models(out, item, results)
    order = [item.spec.name for item in prepared]
    results = {model: {task: scores[task] for task in order} for model, scores in results.items()}
    write_report(out, results, [item.spec for item in prepared])
    return results


def run_model(config: RunConfig, prepared: list[PreparedTask], name: str = "model") -> dict[str, TaskScore]:
    """Every task for one model (loaded only when a task needs it); a task scored across models only keeps the
    model's answers (in item.answered) for score_across_models."""
    from tunelab.infer.backends.select import load_decoder

    check_backend(config, prepared)
    bundle = load_decoder(config) if needs_model(prepared) else None
    scores = {}
    for item in prepared:
        folder = Path(config.train.output_dir) / item.spec.name
        folder.mkdir(parents=True, exist_ok=True)
        started = time.time()
        if item.score_models is not None:
            answers, details = answers_for(config, bundle, item, folder)
            item.answered[name] = (answers, {**details, "seconds": round(time.time() - started, 2)})
            continue
        score = run_task(config, bundle, item, folder)
        score.details["seconds"] = round(time.time() - started, 2)
        finish_task(folder, item.spec.name, score)
        scores[item.spec.name] = score
    return scores


def check_backend(config: RunConfig, prepared: list[PreparedTask]) -> None:
    """vLLM generates answers; a task that scores the model's own probabilities needs the huggingface backend."""
    measured = [item.spec.name for item in prepared if item.measure is not None and item.answers is None]
    if config.backend.infer_backend == "vllm" and measured:
        raise EvalError(f"eval_tasks {', '.join(measured)}: these tasks score the model's probabilities, which the "
                        "vllm backend does not give; run them with infer_backend: huggingface (generation tasks "
                        "may stay on vllm in a separate run)")


def finish_task(folder: Path, task: str, score: TaskScore) -> None:
    """Write one model's task results and say its figures."""
    write_task(folder, score)
    info(f"  {task}: " + (", ".join(f"{k} {v:.4g}" for k, v in score.metrics.items()) or "no figures of its own")
         + f" ({score.scored} rows, {len(score.unextracted)} unextracted)")
    if "hint" in score.details:
        warn(f"  {task}: {score.details['hint']}")


def score_across_models(out: Path, item: PreparedTask, results: dict[str, dict[str, TaskScore]]) -> None:
    """Score a task whose kind needs every model's answers (a judge comparing models) and add it to the results."""
    assert item.score_models is not None
    started = time.time()
    scores = item.score_models({model: answers for model, (answers, _) in item.answered.items()}, out)
    for model, score in scores.items():
        score.details.update(item.answered[model][1])
        score.details["scoring_seconds"] = round(time.time() - started, 2)
        info(f"model {model}:")
        finish_task(out / model / item.spec.name, item.spec.name, score)
        results[model][item.spec.name] = score


def run_task(config: RunConfig, bundle: ModelBundle | VllmBundle | None, item: PreparedTask,
             folder: Path) -> TaskScore:
    """One task for one model."""
    task = item.spec
    if item.measure is not None:
        # a measured task always has the model loaded (needs_model), on huggingface (check_backend)
        assert isinstance(bundle, ModelBundle)
        return item.measure(bundle, config, lambda unit: Counter(f"  {task.name}", unit))
    answers, details = answers_for(config, bundle, item, folder)
    score = score_task(task, answers)
    score.details.update(details)
    return score


def answers_for(config: RunConfig, bundle: ModelBundle | VllmBundle | None, item: PreparedTask,
                folder: Path) -> tuple[list[Answer], dict[str, object]]:
    """The task's answers: from its predictions file, else generated by the model (reusing a fresh file)."""
    if item.answers is not None:
        return item.answers, {}
    return generate(config, bundle, item, folder)


def generate(config: RunConfig, bundle: ModelBundle | VllmBundle | None, item: PreparedTask,
             folder: Path) -> tuple[list[Answer], dict[str, object]]:
    """The model's answers to the task's rows via `tunelab predict`, reusing an up-to-date predictions file."""
    from tunelab.config.launch_plan import plan_launch
    from tunelab.infer.predict import PREDICTIONS, predict, prediction_settings
    from tunelab.infer.shard import predict_parallel
    from tunelab.runtime import env

    task = item.spec
    data = config.data.model_copy(update={"eval_dataset": task.dataset, "dataset": task.dataset})
    infer = config.infer.model_copy(update={"max_new_tokens": task.max_new_tokens or config.infer.max_new_tokens,
                                            **kind_of(task).decoding(task)})
    run_config = config.model_copy(update={"data": data, "infer": infer,
                                           "train": config.train.model_copy(update={"output_dir": str(folder)})})
    fingerprint = prediction_fingerprint(run_config)
    if reuse_or_reset(folder, fingerprint):
        info(f"  {task.name}: reusing {folder / PREDICTIONS} (same model, data and settings)")
    rows_progress = Counter(f"  {task.name}", "rows")

    def progress(report: PredictReport, total: int) -> None:
        rows_progress(report.written, total, f"{report.generated_tokens / max(report.seconds, 1e-9):,.0f} tokens/s")

    prompts_only = not kind_of(task).needs_reference
    plan = plan_launch(config.launch, env.variables())
    if plan is not None:  # nproc_per_node: the task's rows answered by that many processes, merged in row order
        generated = predict_parallel(run_config, plan.processes, prompts_only).generated_tokens
    else:
        generated = predict(run_config, bundle, progress, prompts_only=prompts_only).generated_tokens
    save_fingerprint(folder, fingerprint)
    answers, too_long = answers_from_run(folder / PREDICTIONS, item.expected)
    if too_long:
        warn(f"  {task.name}: {len(too_long)} rows longer than cutoff_len were not answered; they score as wrong")
    return answers, {"too_long": too_long, "generated_tokens": generated,
                     "decoding": decoding_note(prediction_settings(infer))}


def decoding_note(settings: InferSection) -> dict[str, object]:
    """The decoding settings the answers were generated with, as the report states them (sampling values only
    when sampling)."""
    note: dict[str, object] = {"do_sample": settings.do_sample, "max_new_tokens": settings.max_new_tokens,
                               "repetition_penalty": settings.repetition_penalty}
    if settings.do_sample:
        note.update(temperature=settings.temperature, top_p=settings.top_p, top_k=settings.top_k)
    return note



def write_task(folder: Path, score: TaskScore) -> None:
    """score.json and rows.jsonl of one model's task."""
    (folder / "score.json").write_text(json.dumps(score.to_dict(), indent=2, ensure_ascii=False), encoding="utf-8")
    with (folder / "rows.jsonl").open("w", encoding="utf-8") as handle:
        for row in score.rows:
            handle.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
