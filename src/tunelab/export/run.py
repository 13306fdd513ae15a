"""`tunelab export`: merge the run, write the format asked for into a temporary folder, prove it answers like the
run, then rename it into place (and push it to the hub when asked)."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tunelab.config.schema import RunConfig
from tunelab.export import verify
from tunelab.export.atomic import refuse_existing, staged_folder
from tunelab.export.card import CardFacts, model_card, run_datasets
from tunelab.export.hub import push
from tunelab.export.merge import MergePlan, merged_model, plan_merge, save_merged, stop_token_ids
from tunelab.infer.load import load_for_inference
from tunelab.model import registry
from tunelab.model.load import load_model
from tunelab.runtime.logging import info

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

REPORT = "export_report.json"
CARD = "README.md"
MERGED_HF = "merged-hf"  # the temporary HF folder a gguf export converts from, removed before the rename


@dataclass
class ExportReport:
    """What an export wrote and how it compared with base + adapters (also written to export_report.json)."""

    export_dir: str
    export_format: str
    dtype: str
    base: str
    adapters: list[str]
    gguf_type: str | None = None  # export_format gguf/ollama
    files: dict[str, int] = field(default_factory=dict)  # name -> bytes
    checks: list[verify.VerifyEntry] = field(default_factory=list)
    seconds: float = 0.0
    next_step: str | None = None  # a command to run next (ollama create)
    hub_url: str | None = None

    @property
    def total_bytes(self) -> int:
        """Bytes of every file written."""
        return sum(self.files.values())


def verify_folder(reference: verify.Probe, folder: Path, stop_ids: list[int], dtype: str,
                  final_path: str) -> verify.VerifyEntry:
    """Load the written folder back as a user would (tokenizer, and weights in their saved dtype) and compare it
    with the reference; final_path is where the folder will be once the export is complete."""
    import torch
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = load_model(folder, getattr(torch, dtype))
    entry = verify.compare(reference, model, tokenizer, "merged model", final_path, frozenset(stop_ids))
    del model
    return entry


def verify_gguf(reference: verify.Probe, stage: Path, name: str, gguf_type: str, stop_ids: list[int],
                final_path: str) -> verify.VerifyEntry:
    """Load the written GGUF back with transformers (its tokenizer and chat template from the file's metadata, the
    weights dequantized to float32) and compare it with the reference."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(stage, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(stage, gguf_file=name, dtype=torch.float32)
    entry = verify.compare(reference, model, tokenizer, f"gguf {gguf_type}", final_path, frozenset(stop_ids))
    del model
    return entry


def convert(config: RunConfig, hf_dir: Path, stage: Path, tokenizer: PreTrainedTokenizerBase,
            report: ExportReport, reference: verify.Probe | None, stop_ids: list[int]) -> None:
    """export_format gguf/ollama: the GGUF file from the merged folder (checked against the reference when there
    is one) and the Modelfile; then the merged folder goes."""
    from tunelab.export.gguf import write_gguf

    gguf_type = report.gguf_type = (config.export.gguf_type or "f16").lower()
    name = f"{Path(report.export_dir).name}-{gguf_type}.gguf"
    info(f"writing {name} ({gguf_type})")
    written = write_gguf(hf_dir, stage / name, gguf_type, Path(report.export_dir).name)
    info(f"{written.tensors} tensors, architecture {written.arch}, {written.bytes / 1e6:,.1f} MB")
    if reference is not None:
        info(f"checking {name} (loaded back through transformers) against base + adapters")
        report.checks.append(verify_gguf(reference, stage, name, gguf_type, stop_ids,
                                         str(Path(report.export_dir) / name)))
    if config.export.export_format == "ollama":
        from tunelab.export.ollama import write_modelfile

        write_modelfile(stage, name, tokenizer, config.data.default_system)
        report.next_step = f"ollama create {Path(report.export_dir).name.lower()} -f {report.export_dir}/Modelfile"
    shutil.rmtree(hf_dir)


def write_card_and_report(config: RunConfig, plan: MergePlan, stage: Path, report: ExportReport) -> None:
    """README.md (the model card) and export_report.json, listing every file written."""
    runs = plan.adapters or ([plan.model_dir] if config.method.finetuning_type != "lora" else [])
    name = config.model.model_name_or_path
    alias = registry.aliases().get(name)
    facts = CardFacts(base=alias.hub_id if alias else name, adapters=report.adapters, runs=runs,
                      base_note=f"tunelab alias {name}: {alias.note}" if alias and alias.note else None,
                      template=config.data.template, datasets=run_datasets(runs, config.data.dataset),
                      dtype=f"{report.gguf_type} GGUF, merged in {report.dtype}" if report.gguf_type else report.dtype,
                      export_format=report.export_format,
                      verify=[dict(entry) for entry in report.checks])
    (stage / CARD).write_text(model_card(facts), encoding="utf-8")
    report.files = {str(p.relative_to(stage)): p.stat().st_size for p in sorted(stage.rglob("*")) if p.is_file()}
    (stage / REPORT).write_text(json.dumps(asdict(report), indent=2, ensure_ascii=False), encoding="utf-8")


def with_adapters(config: RunConfig, plan: MergePlan) -> RunConfig:
    """The config with the planned adapters named, so that loading does not look for them (and say so) again."""
    if not plan.adapters:
        return config
    named = config.model.model_copy(update={"adapter_name_or_path": ",".join(str(a) for a in plan.adapters)})
    return config.model_copy(update={"model": named})


def export(config: RunConfig) -> ExportReport:
    """Export the run as config.export asks; returns the report (the folder is complete when this returns)."""
    settings = config.export
    dest = Path(str(settings.export_dir))
    refuse_existing(dest, config.train.overwrite_output_dir)
    started = time.perf_counter()
    plan = plan_merge(config)
    report = ExportReport(str(dest), settings.export_format, plan.dtype, str(plan.model_dir),
                          [str(a) for a in plan.adapters])
    with staged_folder(dest, config.train.overwrite_output_dir) as stage:
        info(f"loading {plan.model_dir}" + (f" with {len(plan.adapters)} adapter(s)" if plan.adapters else ""))
        bundle = load_for_inference(with_adapters(config, plan), dtype="float32")  # merged in float32
        stop_ids = stop_token_ids(bundle.tokenizer, config.data.template, bundle.model)
        reference = (verify.reference_probe(bundle.model, bundle.tokenizer, config.data.default_system,
                                            frozenset(stop_ids)) if settings.export_verify else None)
        info(f"merging in float32, saving as {plan.dtype}")
        model = merged_model(bundle.model, plan.dtype, settings.export_device)
        hf_dir = stage if settings.export_format == "hf" else stage / MERGED_HF
        save_merged(bundle, model, hf_dir, settings, stop_ids)
        del model, bundle.model  # free the merged weights before the saved copy is loaded back
        if reference is not None:
            info("checking the saved model against base + adapters")
            shown = str(dest) if hf_dir == stage else "(temporary merged folder)"
            report.checks.append(verify_folder(reference, hf_dir, stop_ids, plan.dtype, shown))
        if settings.export_format != "hf":
            convert(config, hf_dir, stage, bundle.tokenizer, report, reference, stop_ids)
        report.seconds = round(time.perf_counter() - started, 1)
        write_card_and_report(config, plan, stage, report)
    if settings.export_hub_model_id:
        info(f"pushing {dest} to the hub as {settings.export_hub_model_id}")
        report.hub_url = push(dest, settings.export_hub_model_id)
    return report
