"""train(config): the orchestration of one training run, from a validated config to the output folder."""

from __future__ import annotations

import resource
import time
from pathlib import Path
from typing import TYPE_CHECKING

from tunelab.config.load import dump_yaml
from tunelab.config.schema import RunConfig
from tunelab.data.bundle import DataBundle
from tunelab.data.pipeline import build_data
from tunelab.model import adapters
from tunelab.model.attention import use_packed_attention
from tunelab.model.fit import check_fit, model_media
from tunelab.model.load import ModelBundle, load_model, load_tokenizer, resolve
from tunelab.model.methods import apply_method
from tunelab.model.preflight import check_adapters
from tunelab.model.precision import Precision, decide
from tunelab.runtime import paths
from tunelab.runtime.logging import info, is_main_process, quiet_libraries, warn
from tunelab.runtime.names import split_names
from tunelab.train import outdir, recompute, speed
from tunelab.train.args import training_arguments
from tunelab.train.callbacks import ProgressLine, StepLog
from tunelab.train.loss import supports_selective_loss
from tunelab.train.memory import is_out_of_memory, out_of_memory_help
from tunelab.train.outdir import RunError
from tunelab.train.reference import Reference, build_reference
from tunelab.train.stages import BUILDERS
from tunelab.train.summary import finish
from tunelab.train.trainer import TrainerOptions

if TYPE_CHECKING:
    from transformers import TrainerCallback

PACKED_STAGES = ("pt", "sft", "rm", "dpo", "kto")  # stages whose collators make padding-free rows (not the sampling ones)

__all__ = ["RunError", "train"]


def recompute_mode(config: RunConfig, parameters: int) -> recompute.Recompute:
    """What the backward pass recomputes (train/recompute.py): the explicit setting, else by model size."""
    train = config.train
    setting = False if train.disable_gradient_checkpointing else train.gradient_checkpointing
    return recompute.choose(setting, parameters)


def peak_memory_mb() -> dict[str, float]:
    """Peak resident memory of this process (and of the GPU when one is used), in MiB."""
    import torch

    usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    out = {"peak_rss_mb": round(usage, 1)}
    if torch.cuda.is_available():
        out["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return out


def report_data(data: DataBundle, config: RunConfig) -> None:
    """The data lines of the console: what was read, kept and trained on."""
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


def load_for_training(config: RunConfig, precision: Precision) -> tuple[ModelBundle, DataBundle]:
    """Method settings checked against the architecture, then the tokenizer and the data (so data errors come
    before the weights load), then the model with its fine-tuning method applied."""
    import torch
    from transformers import set_seed

    for note in speed.tune_process(precision):
        info(f"speed: {note}")
    source = resolve(config.model.model_name_or_path, config.model.cache_dir)
    info(f"model {config.model.model_name_or_path} ({source.kind}: {source.path})")
    check_adapters(source.path, [Path(name) for name in split_names(config.model.adapter_name_or_path or "")])
    check_fit(config, source.path)
    tokenizer = load_tokenizer(source.path, config.data.template, config.model.trust_remote_code)
    media = model_media(source.path, config.model.model_name_or_path, config.model.trust_remote_code)
    data = build_data(config.data, tokenizer, config.train.seed, config.method.stage, media)
    report_data(data, config)
    dtype = getattr(torch, precision.load_dtype(config.method.finetuning_type))
    model = load_model(source.path, dtype, config.model.trust_remote_code)
    set_seed(config.train.seed)  # new adapters start from the same random weights in every attempt of a run
    model, what = apply_method(model, config, precision)
    info(what)
    if precision.bf16 or precision.fp16:
        adapters.keep_input_dtype(model)  # autocast decides the matmul dtype; PEFT's cast would only copy
    for note in speed.apply(model, precision, config.method.stage):
        info(f"speed: {note}")
    return ModelBundle(tokenizer=tokenizer, model=model, source=source), data


def check_report_to(report_to: str) -> None:
    """Each tracker in report_to must be installed (transformers would fail late, after the model loaded)."""
    from transformers.integrations import get_available_reporting_integrations

    from tunelab.train.args import report_targets

    wanted = report_targets(report_to)
    if wanted == "none":
        return
    available = set(get_available_reporting_integrations())
    missing = [name for name in wanted if name not in available and name != "all"]
    if missing:
        raise RunError(f"report_to: {', '.join(missing)} not installed (available here: "
                       f"{', '.join(sorted(available)) or 'none'}); install it (pip install {missing[0]}) or "
                       "remove it from report_to")


def trainer_options(config: RunConfig, precision: Precision, reference: Reference | None = None) -> TrainerOptions:
    """The trainer's own options: accuracy and perplexity at evaluation, master weights, LoRA+ learning rates, the
    preference keys and reference model."""
    lora = config.lora
    return TrainerOptions(pref=config.pref, reference=reference,
                          compute_accuracy=config.eval.compute_accuracy, perplexity=config.method.stage == "pt",
                          master_weights=speed.master_weights(config, precision),
                          loraplus_lr_ratio=lora.loraplus_lr_ratio if config.method.finetuning_type == "lora" else None,
                          loraplus_lr_embedding=lora.loraplus_lr_embedding, run_config=config)


def callbacks(config: RunConfig, step_log: StepLog) -> list[TrainerCallback]:
    """The run.jsonl log, the progress line, and early stopping when asked for."""
    from transformers import EarlyStoppingCallback

    found: list[TrainerCallback] = [step_log, ProgressLine(step_log)]
    if config.eval.early_stopping_steps:
        found.append(EarlyStoppingCallback(early_stopping_patience=config.eval.early_stopping_steps))
    return found


def train(config: RunConfig) -> dict[str, object]:
    """Run one training job; returns the final metrics (also written to train_results.json)."""
    quiet_libraries()
    started = time.time()
    main = is_main_process()
    output_dir = Path(config.train.output_dir)
    check_report_to(config.train.report_to)
    start = outdir.plan_start(config)
    for line in ([start.note] if start.note else []) + outdir.prepare(config, start, main):
        info(line)
    if main:
        paths.output_file(output_dir, paths.CONFIG).write_text(dump_yaml(config), encoding="utf-8")
    precision = decide(config.train, config.method.pure_bf16)
    (warn if "instead" in precision.note else info)(precision.note)
    model_bundle, data_bundle = load_for_training(config, precision)
    if main:
        data_bundle.report.write(paths.output_file(output_dir, paths.DATA_REPORT))
    if config.lora.pissa_init and main:  # the starting point, to save the result as a plain LoRA adapter
        model_bundle.model.save_pretrained(str(output_dir / "pissa_init"))
    mode = recompute_mode(config, adapters.count_parameters(model_bundle.model)[1])
    checkpointing = mode == "full"
    for note in speed.keep_less(model_bundle.model, mode):
        info(f"memory: {note}")
    if mode == "cheap" and recompute.enable_cheap(model_bundle.model):
        info("memory: the backward pass recomputes each layer's elementwise work and attention scores (the "
             "projections' outputs are kept)")
    sharded = bool(config.launch.deepspeed or config.launch.fsdp)  # the trainer uses the standard loss there
    packed = (config.train.padding_free and not sharded and config.method.stage in PACKED_STAGES
              and supports_selective_loss(model_bundle.model)
              and use_packed_attention(adapters.base_model(model_bundle.model)))
    if packed:
        info("padding-free batches: each batch is one row, examples attend only to themselves")
    args = training_arguments(config, precision, data_bundle.eval is not None, checkpointing, packed)
    step_log = StepLog(paths.output_file(output_dir, paths.LOG))
    options = trainer_options(config, precision, build_reference(config, precision, model_bundle))
    if options.master_weights:
        info("speed: trainable weights in bf16 for the forward and backward, float32 masters in the optimizer")
    if config.method.stage not in BUILDERS:
        raise RunError(f"stage {config.method.stage!r} cannot train in this build of tunelab (stages here: "
                       f"{', '.join(BUILDERS)})")
    trainer = BUILDERS[config.method.stage](model_bundle, data_bundle, args, callbacks(config, step_log), options)
    length = (f"{trainer.args.max_steps} steps" if trainer.args.max_steps > 0
              else f"{config.train.num_train_epochs:g} epochs")
    info(f"training for {length}, output in {output_dir}" + (" (gradient checkpointing on)" if checkpointing else ""))
    try:
        result = trainer.train(resume_from_checkpoint=str(start.resume) if start.resume else None)
    except Exception as exc:
        if is_out_of_memory(exc):
            raise RunError(out_of_memory_help(config, exc, checkpointing)) from None
        raise
    return finish(config, trainer, result, data_bundle, started, start, peak_memory_mb())

