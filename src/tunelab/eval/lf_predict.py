"""LLaMA-Factory's do_predict, as `tunelab train` runs it: every eval_dataset row answered into
generated_predictions.jsonl (by `tunelab predict`'s batched decoding) and scored into predict_results.json with
LLaMA-Factory's BLEU-4/ROUGE recipe and key names (predict_bleu-4, predict_rouge-1/2/l, predict_runtime, ...).

The model is the one the run names: model_name_or_path with adapter_name_or_path when nothing was trained, else
what training saved in output_dir (its adapter, after the earlier ones with create_new_adapter; or the whole model
of a freeze or full run). An adapter an earlier run left in output_dir is never picked up on its own.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path

from tunelab.config.eval_tasks import task_spec
from tunelab.config.schema import RunConfig
from tunelab.eval.errors import EvalError
from tunelab.eval.predictions import file_answers, read_predictions
from tunelab.eval.score import score_task
from tunelab.infer.load import load_for_inference
from tunelab.infer.predict import PredictReport, predict
from tunelab.infer.reward import load_scorer
from tunelab.infer.score_predict import ScoreReport, predict_scores
from tunelab.runtime import paths
from tunelab.runtime.logging import info, warn
from tunelab.runtime.progress import Counter

OUTPUTS = (paths.PREDICTIONS, paths.PREDICT_RESULTS, paths.PREDICT_REPORT)


def clear_outputs(config: RunConfig) -> None:
    """Before anything loads: an earlier prediction in output_dir is replaced with overwrite_output_dir, else an
    error (a new model's answers are never appended to another's)."""
    out = Path(config.train.output_dir)
    found = [name for name in OUTPUTS if (out / name).is_file()]
    if not found:
        return
    if not config.train.overwrite_output_dir:
        raise EvalError(f"output_dir: {out} already holds {', '.join(found)} of an earlier prediction; set "
                        "overwrite_output_dir: true to replace them, or choose another output_dir (`tunelab "
                        "predict` with this config finishes an interrupted prediction instead)")
    for name in found:
        (out / name).unlink()
    info(f"overwrite_output_dir: replacing {', '.join(found)} in {out}")


def prediction_config(config: RunConfig, trained: bool) -> RunConfig:
    """The config whose model_name_or_path and adapter_name_or_path name the model to ask."""
    if not trained:
        return config
    out = config.train.output_dir
    if config.method.finetuning_type != "lora":
        update: dict[str, str | None] = {"model_name_or_path": out, "adapter_name_or_path": None}
    elif config.lora.create_new_adapter and config.model.adapter_name_or_path:
        # the earlier adapters were merged under the new one while training; loaded together they add up the same
        update = {"adapter_name_or_path": f"{config.model.adapter_name_or_path},{out}"}
    else:
        update = {"adapter_name_or_path": out}
    return config.model_copy(update={"model": config.model.model_copy(update=update)})


def score_predictions(path: Path) -> dict[str, float]:
    """LLaMA-Factory's BLEU-4 and ROUGE means over a predictions file: what `tunelab eval score FILE` prints."""
    task = task_spec(name=path.stem, type="generation", dataset="-", metrics=None, extractor=None)
    return score_task(task, file_answers(read_predictions(path))).metrics


def predict_results(scores: dict[str, float], rows: int, batch_size: int, runtime: float,
                    load_seconds: float) -> dict[str, float]:
    """The scores and timings under the names LLaMA-Factory's predict_results.json uses (transformers' speed
    figures, rounded as it rounds them)."""
    runtime = max(runtime, 1e-9)
    results = {f"predict_{name}": value for name, value in scores.items()}
    results.update({"predict_model_preparation_time": round(load_seconds, 4), "predict_runtime": round(runtime, 4),
                    "predict_samples_per_second": round(rows / runtime, 3),
                    "predict_steps_per_second": round(math.ceil(rows / batch_size) / runtime, 3)})
    return dict(sorted(results.items()))


def pair_progress() -> Callable[[ScoreReport, int], None]:
    """The progress line of scoring pairs."""
    counter = Counter("predict", "pairs", every=0.0)

    def progress(report: ScoreReport, total: int) -> None:
        counter(report.written, total, f"{report.written / max(report.seconds, 1e-9):,.1f} pairs/s")

    return progress


def run_reward_predict(source: RunConfig) -> dict[str, float]:
    """Stage rm's do_predict: score both answers of every eval pair; predict_results.json holds the accuracy."""
    info(f"do_predict: scoring the pairs of {source.data.eval_dataset} with the reward model")
    report = predict_scores(source, load_scorer(source, from_output_dir=False), pair_progress())
    results = report.results or {}
    out = Path(source.train.output_dir)
    info(f"predict: accuracy {results['predict_accuracy']:.4f}, mean margin {results['predict_margin_mean']:.4f} "
         f"over {results['predict_pairs']} pairs; {out / paths.PREDICTIONS}, {out / paths.PREDICT_RESULTS}")
    return results


def run_predict(config: RunConfig, trained: bool) -> dict[str, float]:
    """Answer eval_dataset with the run's model, score the answers and write predict_results.json (returned); for
    stage rm, score the eval pairs with the reward model instead."""
    source = prediction_config(config, trained)
    if config.method.stage == "rm":
        return run_reward_predict(source)
    started = time.time()
    bundle = load_for_inference(source, from_output_dir=False)
    load_seconds = time.time() - started
    what = source.model.model_name_or_path + (f" + {source.model.adapter_name_or_path}"
                                              if source.model.adapter_name_or_path else "")
    info(f"do_predict: answering {config.data.eval_dataset} with {what}")
    counter = Counter("predict", "rows", every=0.0)

    def progress(report: PredictReport, total: int) -> None:
        counter(report.written, total, f"{report.generated_tokens / max(report.seconds, 1e-9):,.0f} generated tokens/s")

    started = time.time()
    out = Path(config.train.output_dir)
    report = predict(source, bundle, progress)
    note = report.too_long_note(out)
    if note:
        warn(note)
    if not report.written:
        raise EvalError(f"eval_dataset {config.data.eval_dataset}: no row was answered (every prompt is longer than "
                        f"cutoff_len {config.data.cutoff_len}); raise cutoff_len")
    scores = score_predictions(out / paths.PREDICTIONS)
    results = predict_results(scores, report.written, config.eval.per_device_eval_batch_size, time.time() - started,
                              load_seconds)
    # indent 4 and sorted keys: the file transformers' save_metrics writes for LLaMA-Factory
    (out / paths.PREDICT_RESULTS).write_text(json.dumps(results, indent=4, sort_keys=True), encoding="utf-8")
    info("predict: " + ", ".join(f"{name.removeprefix('predict_')} {value:.4f}" for name, value in scores.items()))
    info(f"{report.written} rows answered: {out / paths.PREDICTIONS}; scores: {out / paths.PREDICT_RESULTS}")
    return results
