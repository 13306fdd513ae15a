"""Batch prediction: an answer for every row of the eval dataset(s), written to generated_predictions.jsonl.

Prompts are rendered with the chat template, sorted by length (so running rows hold similar lengths and
little padding) and decoded with `batch_generate.generate_each`: up to per_device_eval_batch_size rows
decode together, and a row whose answer ends gives its slot to the next prompt at once. Lines are
appended as the answers complete, so a rerun after an interruption skips the rows already written; the finished
file lists the rows in dataset order. Rows whose prompt is longer than cutoff_len are listed in
predict_report.json, never dropped silently. On several processes (infer/shard.py) each one answers its share of
the rows into a shard file of its own.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tunelab.config.schema import DataSection, InferSection, RunConfig
from tunelab.data.gather import load_prompts, load_records
from tunelab.data.examples import PromptOnly, Supervised
from tunelab.data.render import generation_prompt
from tunelab.infer.backends.select import VLLM_ROWS
from tunelab.infer.backends.vllm_load import VllmBundle
from tunelab.infer.batch_generate import GenRequest, GenResult, generate_each, sampling_fields, stop_token_ids
from tunelab.infer import shard
from tunelab.infer.partial_char import whole_text
from tunelab.infer.protocols import Tokenizer
from tunelab.model.load import ModelBundle
from tunelab.runtime import paths

PREDICTIONS = paths.PREDICTIONS
REPORT = paths.PREDICT_REPORT


@dataclass(frozen=True)
class PromptRow:
    """One row to answer: its id, the prompt messages and their rendered text and token ids, the reference answer."""

    id: str
    dataset: str
    messages: list[dict[str, str]]
    prompt: str
    label: str
    input_ids: list[int]


@dataclass
class PredictReport:
    """What happened to the rows: written, already there (resumed), too long."""

    rows: int = 0
    written: int = 0
    resumed: int = 0
    too_long: list[dict[str, str | int]] = field(default_factory=list)
    generated_tokens: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, int | float | list[dict[str, str | int]]]:
        """JSON-ready form."""
        speed = self.generated_tokens / self.seconds if self.seconds else 0.0
        return {"rows": self.rows, "written": self.written, "resumed": self.resumed,
                "too_long": self.too_long, "generated_tokens": self.generated_tokens,
                "seconds": round(self.seconds, 2), "generated_tokens_per_s": round(speed, 1)}

    def too_long_note(self, out_dir: str | Path) -> str | None:
        """The warning for rows left unanswered because their prompt is longer than cutoff_len (None: none)."""
        if not self.too_long:
            return None
        ids = ", ".join(str(r["id"]) for r in self.too_long[:10])
        return (f"{len(self.too_long)} rows not answered: their prompt is longer than cutoff_len ({ids}"
                f"{', ...' if len(self.too_long) > 10 else ''}); see {out_dir}/{REPORT}")


def prediction_settings(infer: InferSection) -> InferSection:
    """Greedy decoding unless the config sets do_sample itself."""
    return infer if "do_sample" in infer.model_fields_set else infer.model_copy(update={"do_sample": False})


def prompt_rows(records: Sequence[Supervised | PromptOnly], tokenizer: Tokenizer,
                data: DataSection) -> list[PromptRow]:
    """Every record as a prompt (all turns but the last answer) and its reference answer ('' when it has none)."""
    rows = []
    for record in records:
        prompt = record.prompt_dicts(data.default_system)
        # rendered once: the text goes into the predictions file, its tokens into the model
        text, ids = generation_prompt(tokenizer, prompt)
        rows.append(PromptRow(id=f"{record.dataset}:{record.row}", dataset=record.dataset, messages=prompt,
                              prompt=text, label=record.reference, input_ids=ids))
    return rows


def done_ids(path: Path) -> set[str]:
    """Ids already in a predictions file (a torn last line from an interruption is ignored)."""
    if not path.is_file():
        return set()
    ids = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            ids.add(json.loads(line)["id"])
        except (json.JSONDecodeError, KeyError, TypeError):
            continue
    return ids


def generate_batch(bundle: ModelBundle | VllmBundle, rows: list[PromptRow],
                   settings: InferSection) -> list[tuple[str, int]]:
    """(answer text, generated token count with the stop token) for a batch of prompts, decoded together."""
    return [(text, count) for _, text, count in answers(bundle, rows, settings, None)]


def answers(bundle: ModelBundle | VllmBundle, rows: list[PromptRow], settings: InferSection,
            max_batch: int | None) -> Iterator[tuple[PromptRow, str, int]]:
    """(row, answer text, generated token count with the stop token) in the order of rows; up to max_batch rows
    decode together (all when None) and a finished row's slot goes to the next row at once."""
    tokenizer = bundle.tokenizer
    vllm = isinstance(bundle, VllmBundle)
    stop = bundle.stop_ids if vllm else stop_token_ids(bundle.tokenizer, bundle.model)
    requests = [GenRequest(input_ids=r.input_ids, max_new_tokens=settings.max_new_tokens, stop_token_ids=stop,
                           **sampling_fields(settings)) for r in rows]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    finished: dict[int, GenResult] = {}
    following = 0  # rows are handed out in order: an answer that ends early waits for the rows before it
    each = bundle.backend.each(requests) if vllm else generate_each(bundle.model, requests, pad, max_batch=max_batch)
    for index, result in each:
        finished[index] = result
        while following in finished:
            result = finished.pop(following)
            count = len(result.token_ids) + (result.finish_reason == "stop")
            # an answer cut by max_new_tokens may end inside a character: its half is dropped, not shown as U+FFFD
            yield rows[following], whole_text(tokenizer, result.token_ids).strip(), count
            following += 1


def predict(config: RunConfig, bundle: ModelBundle | VllmBundle,
            progress: Callable[[PredictReport, int], None] | None = None, prompts_only: bool = False) -> PredictReport:
    """Answer every eval row into <output_dir>/generated_predictions.jsonl; resumes where a run stopped.
    prompts_only: rows need no response (their reference is kept when they have one)."""
    import torch

    out_dir = Path(config.train.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / PREDICTIONS
    data = config.data.model_copy(update={"dataset": config.data.eval_dataset or config.data.dataset})
    records = load_prompts(data)[0] if prompts_only else load_records(data)[0]
    rows = prompt_rows(records, bundle.tokenizer, data)
    report = PredictReport(rows=len(rows))
    report.too_long = [{"id": r.id, "prompt_tokens": len(r.input_ids), "cutoff_len": data.cutoff_len}
                       for r in rows if len(r.input_ids) > data.cutoff_len]
    partial, target = shard.answer_files(path)
    finished = done_ids(partial)
    todo = [r for r in rows if r.id not in finished and len(r.input_ids) <= data.cutoff_len]
    report.resumed = len(rows) - len(report.too_long) - len(todo)
    todo.sort(key=lambda r: len(r.input_ids), reverse=True)
    size = VLLM_ROWS if isinstance(bundle, VllmBundle) else config.eval.per_device_eval_batch_size
    mine = shard.share([r.id for r in todo], size)  # all of them unless this is one of several processes
    todo = [r for r in todo if r.id in mine]
    settings = prediction_settings(config.infer)
    torch.manual_seed(config.train.seed)
    if isinstance(bundle, ModelBundle):
        bundle.model.eval()
    started = time.time()
    with target.open("a", encoding="utf-8") as handle:
        for done, (row, text, count) in enumerate(answers(bundle, todo, settings, size), start=1):
            handle.write(json.dumps({"id": row.id, "dataset": row.dataset, "prompt": row.prompt, "predict": text,
                                     "label": row.label}, ensure_ascii=False) + "\n")
            report.generated_tokens += count
            report.written += 1
            if done % size == 0 or done == len(todo):
                handle.flush()
                report.seconds = time.time() - started
                if progress is not None:
                    progress(report, len(todo))
        os.fsync(handle.fileno())
    shard.finish(path, partial, [r.id for r in rows], report.to_dict())
    return report
