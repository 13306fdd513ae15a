"""The end of a run: save the result, evaluate once more if needed, write train_results.json,
run_summary.json and the plots, and print the summary."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, NotRequired, TypedDict

from tunelab.config.schema import RunConfig
from tunelab.data.bundle import DataBundle
from tunelab.model import adapters
from tunelab.runtime import paths
from tunelab.runtime.logging import info, is_main_process
from tunelab.train import plots
from tunelab.train.callbacks import StepLog
from tunelab.train.outdir import Start
from tunelab.train.plots import LogRecord, eval_losses

if TYPE_CHECKING:
    from transformers.trainer_utils import TrainOutput

    from tunelab.train.trainer import TunelabTrainer


class RunSummary(TypedDict):
    """What run_summary.json holds (and print_summary reads)."""

    output_dir: str | None
    model: str
    stage: str
    finetuning_type: str
    trainable_parameters: int
    total_parameters: int
    resumed_from: str | None
    stopped_early: bool
    runtime_s: float
    wall_time_s: float
    steps: int
    max_steps: int
    epochs: float
    samples_per_second: float | None
    completions_per_second: NotRequired[float]  # grpo: answers sampled per second
    input_tokens: int
    trained_tokens: int
    input_tokens_per_second: float
    trained_tokens_per_second: float
    peak_memory_mb: dict[str, float]  # peak_rss_mb, and peak_gpu_mb on a GPU
    final_train_loss: float | None
    final_eval: dict[str, float]
    best: dict[str, str | float | None] | None  # metric, value, checkpoint (with a metric_for_best_model)
    data: dict[str, object]  # totals and per-dataset row counts


def final_eval(trainer: TunelabTrainer, records: list[LogRecord], data_bundle: DataBundle) -> dict[str, float]:
    """The eval metrics of the weights saved: those logged at the last step (or at the best checkpoint's step with
    load_best_model_at_end) when the schedule evaluated there, else evaluated now."""
    if data_bundle.eval is None:
        return {}
    state = trainer.state
    step = state.best_global_step if trainer.args.load_best_model_at_end and state.best_global_step else \
        state.global_step
    at_end = [r for r in records if eval_losses(r) and r["step"] == step]
    if at_end:
        metrics: dict[str, float] = {}
        for record in at_end:  # one record per eval set at that step
            metrics.update({k: v for k, v in record.items() if k.startswith("eval_")})
        return metrics
    return dict(trainer.evaluate())


def save_result(config: RunConfig, trainer: TunelabTrainer, output_dir: Path) -> None:
    """The trained adapter or model and the tokenizer; a PiSSA adapter is saved as a plain LoRA adapter that
    applies to the original weights."""
    trainer.save_model(str(output_dir))
    trainer.save_state()
    initial = output_dir / "pissa_init"
    if config.lora.pissa_init and is_main_process() and initial.is_dir():
        trainer.model.save_pretrained(str(output_dir), path_initial_model_for_weight_conversion=str(initial))
        info("PiSSA adapter converted to a LoRA adapter of rank 2r for the original weights")


def speeds(trainer: TunelabTrainer, runtime: float) -> dict[str, float | int]:
    """Tokens seen and trained, over the whole run and per second of this session."""
    state = trainer.state
    step_log = next((cb for cb in trainer.callback_handler.callbacks if isinstance(cb, StepLog)), None)
    counter = trainer.trained_tokens()
    seen_now = state.num_input_tokens_seen - (step_log.tokens_at_start if step_log else 0)
    trained_now = counter.count - counter.at_start
    return {"input_tokens": state.num_input_tokens_seen, "trained_tokens": counter.count,
            "input_tokens_per_second": round(seen_now / max(runtime, 1e-9), 2),
            "trained_tokens_per_second": round(trained_now / max(runtime, 1e-9), 2)}


def run_summary(config: RunConfig, trainer: TunelabTrainer, metrics: dict[str, object], start: Start,
                data_bundle: DataBundle) -> RunSummary:
    """What run_summary.json holds."""
    state = trainer.state
    trainable, total = adapters.count_parameters(trainer.model)
    stopped_early = 0 < state.global_step < state.max_steps
    return {
        "output_dir": config.train.output_dir, "model": config.model.model_name_or_path,
        "stage": config.method.stage, "finetuning_type": config.method.finetuning_type,
        "trainable_parameters": trainable, "total_parameters": total,
        "resumed_from": str(start.resume) if start.resume else None,
        "stopped_early": stopped_early,
        "runtime_s": metrics["train_runtime"], "wall_time_s": metrics["wall_time_s"],
        "steps": state.global_step, "max_steps": state.max_steps, "epochs": round(state.epoch or 0.0, 4),
        "samples_per_second": metrics.get("train_samples_per_second"),
        **{key: metrics[key] for key in ("input_tokens", "trained_tokens", "input_tokens_per_second",
                                         "trained_tokens_per_second")},
        "peak_memory_mb": {k: v for k, v in metrics.items() if k.startswith("peak_")},
        "final_train_loss": metrics.get("final_loss"),
        "final_eval": {k: v for k, v in metrics.items() if k.startswith("eval_") and not k.endswith(
            ("_runtime", "_samples_per_second", "_steps_per_second"))},
        **({"completions_per_second": float(metrics["completions_per_second"])}
           if "completions_per_second" in metrics else {}),
        "best": ({"metric": trainer.args.metric_for_best_model, "value": state.best_metric,
                  "checkpoint": state.best_model_checkpoint} if state.best_metric is not None else None),
        "data": {"totals": data_bundle.report.totals(),
                 "datasets": [{"name": d.name, "role": d.role, "rows_read": d.rows_read,
                               "rows_kept": d.rows_converted - d.dropped_for_length,
                               "rows_skipped": sum(d.skipped.values()), "skipped": dict(d.skipped),
                               "truncated": d.truncated, "dropped_for_length": d.dropped_for_length}
                              for d in data_bundle.report.datasets]},
    }


def finish(config: RunConfig, trainer: TunelabTrainer, result: TrainOutput, data_bundle: DataBundle, started: float,
           start: Start, memory: dict[str, float]) -> dict[str, object]:
    """Save, evaluate, write the metrics, summary and plots; returns train_results.json's metrics."""
    output_dir = Path(config.train.output_dir)
    save_result(config, trainer, output_dir)
    records = plots.read_log(output_dir / paths.LOG)
    metrics = dict(result.metrics)
    metrics.update(final_eval(trainer, records, data_bundle))
    if data_bundle.streaming and is_main_process():  # the counts grew while training read the data
        data_bundle.report.write(paths.output_file(output_dir, paths.DATA_REPORT))
    losses = [r["loss"] for r in records if "loss" in r]
    metrics.update({"global_step": trainer.state.global_step, "epoch": trainer.state.epoch,
                    "final_loss": losses[-1] if losses else None, "wall_time_s": round(time.time() - started, 2),
                    **speeds(trainer, metrics["train_runtime"]), **memory, "data": data_bundle.report.totals()})
    metrics["train_tokens_per_second"] = metrics["input_tokens_per_second"]
    if not is_main_process():
        return metrics
    paths.output_file(output_dir, paths.METRICS).write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    summary = run_summary(config, trainer, metrics, start, data_bundle)
    paths.output_file(output_dir, paths.SUMMARY).write_text(json.dumps(summary, indent=2, ensure_ascii=False),
                                                            encoding="utf-8")
    if config.train.plot_loss:
        stage_keys = plots.stage_plot_keys(config.method.stage, records)
        for png in plots.plot_losses(output_dir / paths.LOG, output_dir) + plots.plot_metrics(
                output_dir / paths.LOG, output_dir, stage_keys):
            info(f"wrote {png}")
    print_summary(summary, output_dir)
    return metrics


def print_summary(summary: RunSummary, output_dir: Path) -> None:
    """The closing lines on the console."""
    loss = summary["final_train_loss"]
    evals = ", ".join(f"{key.replace('_', ' ')} {value:.4f}" for key, value in summary["final_eval"].items())
    memory = summary["peak_memory_mb"]
    info(f"done in {summary['runtime_s']:.1f}s: {summary['steps']} steps, {summary['epochs']:g} epochs"
         + (" (stopped early)" if summary["stopped_early"] else "")
         + (f", final loss {loss:.4f}" if loss is not None else "")
         + (f", {evals}" if evals else ""))
    info(f"{summary['input_tokens_per_second']:,.0f} input tokens/s, {summary['trained_tokens_per_second']:,.0f} "
         f"trained tokens/s, {summary['samples_per_second'] or 0:.2f} samples/s, "
         + (f"{summary['completions_per_second']:.2f} sampled answers/s, " if "completions_per_second" in summary
            else "") + "peak memory "
         f"{memory.get('peak_rss_mb', 0):,.0f} MiB" + (f" (GPU {memory['peak_gpu_mb']:,.0f} MiB)"
                                                      if "peak_gpu_mb" in memory else ""))
    if summary["best"]:
        best = summary["best"]
        info(f"best {best['metric']} {best['value']:.4f} at {best['checkpoint']}")
    what = "adapter" if summary["finetuning_type"] == "lora" else "model"
    info(f"{what}, tokenizer, logs and {paths.SUMMARY} saved in {output_dir}")
