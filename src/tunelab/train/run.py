"""train(config): the orchestration of one training run, from a validated config to the output folder."""

from __future__ import annotations

import json
import resource
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from tunelab.config.load import dump_yaml
from tunelab.config.schema import RunConfig
from tunelab.data.pipeline import DataBundle, build_data
from tunelab.model import adapters
from tunelab.model.attention import use_packed_attention
from tunelab.model.load import ModelBundle, load_model, load_tokenizer, resolve
from tunelab.runtime import paths
from tunelab.runtime.logging import info, quiet_libraries, warn
from tunelab.train import plots, speed
from tunelab.train.args import training_arguments
from tunelab.train.callbacks import ProgressLine, StepLog, eval_losses
from tunelab.train.loss import supports_selective_loss
from tunelab.train.precision import Precision, decide
from tunelab.train.stages import BUILDERS

# files that mark a folder as holding a run, and the other files a run writes (replaced on overwrite)
RUN_MARKS = (paths.CONFIG, paths.LOG, paths.METRICS, "adapter_model.safetensors", "adapter_config.json",
             "trainer_state.json", "training_args.bin")
RUN_FILES = RUN_MARKS + (paths.LOSS_PNG, paths.EVAL_LOSS_PNG, paths.DATA_REPORT, "README.md", "tokenizer.json",
                         "tokenizer_config.json", "chat_template.jinja", "special_tokens_map.json",
                         "generation_config.json")
LARGE_MODEL_PARAMETERS = 1_000_000_000


class RunError(Exception):
    """A run that cannot start as configured; the message says what to change."""


def prepare_output_dir(output_dir: Path, overwrite: bool) -> None:
    """Refuse to mix two runs in one folder unless overwrite_output_dir is set, then clear the old run's files."""
    if output_dir.exists() and not output_dir.is_dir():
        raise RunError(f"output_dir: {output_dir} is a file; give a folder path")
    existing = [name for name in RUN_FILES if (output_dir / name).exists()]
    existing += sorted(p.name for p in output_dir.glob("checkpoint-*")) if output_dir.is_dir() else []
    marks = [name for name in existing if name in RUN_MARKS or name.startswith("checkpoint-")]
    if marks and not overwrite:
        raise RunError(f"output_dir: {output_dir} already holds a run ({', '.join(marks[:4])}); set "
                       "overwrite_output_dir: true to replace it, or choose another output_dir")
    for name in existing:
        target = output_dir / name
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    output_dir.mkdir(parents=True, exist_ok=True)


def use_gradient_checkpointing(config: RunConfig, parameters: int) -> bool:
    """Explicit setting, else on only for models of 1B parameters or more (below, it only costs time)."""
    train = config.train
    if train.disable_gradient_checkpointing:
        return False
    if train.gradient_checkpointing is not None:
        return train.gradient_checkpointing
    return parameters >= LARGE_MODEL_PARAMETERS


def peak_memory_mb() -> dict[str, float]:
    """Peak resident memory of this process (and of the GPU when one is used), in MiB."""
    import torch

    usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    out = {"peak_rss_mb": round(usage, 1)}
    if torch.cuda.is_available():
        out["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return out


def load_for_training(config: RunConfig, precision: Precision) -> tuple[ModelBundle, DataBundle]:
    """Tokenizer, then the data (so data errors come before the weights load), then model + LoRA."""
    import torch

    source = resolve(config.model.model_name_or_path, config.model.cache_dir)
    info(f"model {config.model.model_name_or_path} ({source.kind}: {source.path})")
    tokenizer = load_tokenizer(source.path, config.data.template, config.model.trust_remote_code)
    data = build_data(config.data, tokenizer, config.train.seed, config.method.stage)
    totals = data.report.totals()
    if data.streaming:
        info(f"data: streaming {config.data.dataset} (read while training; the counts go to "
             f"{paths.DATA_REPORT} at the end), {data.report.eval_examples} eval examples")
    else:
        info(f"data: {totals['rows_read']} rows read, {totals['rows_skipped']} skipped, {totals['truncated']} truncated; "
             f"{data.report.train_examples} train / {data.report.eval_examples} eval examples, "
             f"{totals['tokens_trained']:,} trained tokens of {totals['tokens']:,}")
    for dataset in data.report.datasets:
        for note in dataset.notes:
            warn(f"dataset {dataset.name!r}: {note}")
    for note in data.report.notes:
        info(f"data: {note}")
    model = load_model(source.path, getattr(torch, precision.weights), config.model.trust_remote_code)
    if config.model.adapter_name_or_path:
        model = adapters.load_adapters(model, config.model.adapter_name_or_path, trainable=True)
    else:
        model = adapters.apply_lora(model, config.lora)
    if precision.bf16 or precision.fp16:
        adapters.keep_input_dtype(model)  # autocast decides the matmul dtype; PEFT's cast would only copy
    for note in speed.apply(model, precision):
        info(f"speed: {note}")
    trainable, total = adapters.count_parameters(model)
    info(f"LoRA: {trainable:,} trainable of {total:,} parameters ({100 * trainable / total:.2f}%)")
    return ModelBundle(tokenizer=tokenizer, model=model, source=source), data


def train(config: RunConfig) -> dict[str, Any]:
    """Run one training job; returns the final metrics (also written to train_results.json)."""
    quiet_libraries()
    started = time.time()
    output_dir = Path(config.train.output_dir)
    prepare_output_dir(output_dir, config.train.overwrite_output_dir)
    paths.output_file(output_dir, paths.CONFIG).write_text(dump_yaml(config), encoding="utf-8")
    precision = decide(config.train)
    (warn if "instead" in precision.note else info)(precision.note)
    model_bundle, data_bundle = load_for_training(config, precision)
    data_bundle.report.write(paths.output_file(output_dir, paths.DATA_REPORT))
    checkpointing = use_gradient_checkpointing(config, adapters.count_parameters(model_bundle.model)[1])
    packed = (config.train.padding_free and supports_selective_loss(model_bundle.model)
              and use_packed_attention(adapters.base_model(model_bundle.model)))
    if packed:
        info("padding-free batches: each batch is one row, examples attend only to themselves")
    args = training_arguments(config, precision, data_bundle.eval is not None, checkpointing, packed)
    step_log = StepLog(paths.output_file(output_dir, paths.LOG))
    trainer = BUILDERS[config.method.stage](model_bundle, data_bundle, args, [step_log, ProgressLine(step_log)])
    length = (f"{trainer.args.max_steps} steps" if trainer.args.max_steps > 0
              else f"{config.train.num_train_epochs:g} epochs")
    info(f"training for {length}, output in {output_dir}")
    result = trainer.train()
    metrics = finish(config, trainer, result, step_log, data_bundle, started)
    return metrics


def finish(config: RunConfig, trainer: Any, result: Any, step_log: StepLog, data_bundle: DataBundle,
           started: float) -> dict[str, Any]:
    """Save adapter + tokenizer, evaluate once more, write metrics and plots, print the summary."""
    output_dir = Path(config.train.output_dir)
    trainer.save_model(str(output_dir))
    trainer.save_state()
    metrics = dict(result.metrics)
    state = trainer.state
    records = plots.read_log(output_dir / paths.LOG)
    evaluated = [r for r in records if eval_losses(r)]
    if data_bundle.eval is not None:
        if evaluated and evaluated[-1]["step"] == state.global_step:  # one record per eval set at that step
            for record in evaluated:
                if record["step"] == state.global_step:
                    metrics.update(eval_losses(record))
        else:
            metrics.update(trainer.evaluate())
    if data_bundle.streaming:  # the counts grew while training read the data
        data_bundle.report.write(paths.output_file(output_dir, paths.DATA_REPORT))
    losses = [r["loss"] for r in records if "loss" in r]
    metrics.update({
        "global_step": state.global_step, "epoch": state.epoch, "final_loss": losses[-1] if losses else None,
        "trained_tokens_seen": state.num_input_tokens_seen,
        "train_tokens_per_second": round(state.num_input_tokens_seen / max(metrics["train_runtime"], 1e-9), 2),
        "wall_time_s": round(time.time() - started, 2), **peak_memory_mb(),
        "data": data_bundle.report.totals(),
    })
    paths.output_file(output_dir, paths.METRICS).write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    if config.train.plot_loss:
        for png in plots.plot_losses(output_dir / paths.LOG, output_dir):
            info(f"wrote {png}")
    summary(metrics, output_dir)
    return metrics


def summary(metrics: dict[str, Any], output_dir: Path) -> None:
    """The closing lines on the console."""
    loss = metrics.get("final_loss")
    evals = ", ".join(f"{key.replace('_', ' ')} {value:.4f}" for key, value in eval_losses(metrics).items())
    info(f"done in {metrics['train_runtime']:.1f}s: {metrics['global_step']} steps"
         + (f", final loss {loss:.4f}" if loss is not None else "")
         + (f", {evals}" if evals else "")
         + f", {metrics['train_tokens_per_second']:,.0f} tokens/s, peak memory {metrics['peak_rss_mb']:,.0f} MiB")
    info(f"adapter, tokenizer and logs saved in {output_dir}")
    sys.stderr.flush()
