"""Reward-model prediction (stage rm): both answers of every eval pair scored into generated_predictions.jsonl.

Each line holds the pair's id and dataset and LLaMA-Factory's fields `chosen` and `rejected` (the two scores;
LLaMA-Factory rounds them to 2 decimals, here they keep 6). Pairs are encoded exactly as training encodes them
(template, cutoff_len), scored in input order batch by batch, and appended as they are scored, so a rerun after an
interruption continues after the pairs already written. predict_results.json summarises the whole file:
accuracy (share of pairs whose chosen answer scores higher), mean margin, and LLaMA-Factory's pairwise loss.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tunelab.config.schema import RunConfig
from tunelab.data.collate import PairCollator
from tunelab.data.dataset import encode
from tunelab.data.encode import pair
from tunelab.data.gather import load_records
from tunelab.infer.predict import done_ids
from tunelab.infer.score import RewardScorer
from tunelab.runtime import paths


@dataclass(frozen=True)
class PairRow:
    """One encoded pair to score."""

    id: str
    dataset: str
    chosen_input_ids: list[int]
    rejected_input_ids: list[int]


@dataclass
class ScoreReport:
    """What happened to the pairs (written now, already there) and the summary of the whole file."""

    rows: int = 0
    written: int = 0
    resumed: int = 0
    truncated: int = 0
    seconds: float = 0.0
    results: dict[str, float] | None = None

    def to_dict(self) -> dict[str, int | float]:
        """predict_report.json's content."""
        return {"rows": self.rows, "written": self.written, "resumed": self.resumed, "truncated": self.truncated,
                "seconds": round(self.seconds, 2),
                "pairs_per_s": round(self.written / self.seconds, 2) if self.seconds else 0.0}


def pair_rows(config: RunConfig, scorer: RewardScorer) -> tuple[list[PairRow], int]:
    """The pairs of eval_dataset (else dataset), encoded as stage rm trains on them; and how many were cut."""
    data = config.data.model_copy(update={"dataset": config.data.eval_dataset or config.data.dataset})
    records, report = load_records(data, "rm", config.train.seed)
    chunks = encode(records, scorer.tokenizer, data, report, "train", pair.encode_chunk)
    chosen = [ids for chunk in chunks for ids in chunk.rows("chosen_input_ids")]
    rejected = [ids for chunk in chunks for ids in chunk.rows("rejected_input_ids")]
    rows = [PairRow(f"{record.dataset}:{record.row}", record.dataset, list(c), list(r))
            for record, c, r in zip(records, chosen, rejected)]
    return rows, report.totals()["truncated"]


def drop_torn_tail(path: Path) -> None:
    """Cut a last line left unfinished by an interruption, so the next line starts on a line of its own."""
    if not path.is_file():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        path.write_bytes(data[:data.rfind(b"\n") + 1])


def summary(path: Path, runtime: float, pairs_scored: int) -> dict[str, float]:
    """accuracy, mean margin and mean pairwise loss over every line of the predictions file, with the timing,
    under LLaMA-Factory's predict_ key names."""
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    margins = [line["chosen"] - line["rejected"] for line in lines]
    count = max(len(margins), 1)
    runtime = max(runtime, 1e-9)
    return {"predict_accuracy": round(sum(m > 0 for m in margins) / count, 6),
            "predict_margin_mean": round(sum(margins) / count, 6),
            "predict_loss": round(sum(math.log1p(math.exp(-m)) if m > -30 else -m for m in margins) / count, 6),
            "predict_pairs": len(margins), "predict_runtime": round(runtime, 4),
            "predict_samples_per_second": round(pairs_scored / runtime, 3)}


def predict_scores(config: RunConfig, scorer: RewardScorer,
                   progress: Callable[[ScoreReport, int], None] | None = None) -> ScoreReport:
    """Score every eval pair into <output_dir>/generated_predictions.jsonl (continuing an interrupted file), then
    write predict_results.json and predict_report.json."""
    out = Path(config.train.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / paths.PREDICTIONS
    rows, truncated = pair_rows(config, scorer)
    drop_torn_tail(path)
    finished = done_ids(path)
    todo = [row for row in rows if row.id not in finished]
    report = ScoreReport(rows=len(rows), resumed=len(rows) - len(todo), truncated=truncated)
    collate = PairCollator(scorer.tokenizer.pad_token_id if scorer.tokenizer.pad_token_id is not None else 0)
    size = config.eval.per_device_eval_batch_size
    started = time.time()
    with path.open("a", encoding="utf-8") as handle:
        for start in range(0, len(todo), size):
            batch = todo[start:start + size]
            examples = [{"chosen_input_ids": r.chosen_input_ids, "chosen_labels": r.chosen_input_ids,
                         "rejected_input_ids": r.rejected_input_ids, "rejected_labels": r.rejected_input_ids}
                        for r in batch]
            chosen, rejected = scorer.score_pairs(collate(examples))
            for row, good, bad in zip(batch, chosen.tolist(), rejected.tolist()):
                handle.write(json.dumps({"id": row.id, "dataset": row.dataset, "chosen": round(good, 6),
                                         "rejected": round(bad, 6)}, ensure_ascii=False) + "\n")
            handle.flush()
            report.written += len(batch)
            report.seconds = time.time() - started
            if progress is not None:
                progress(report, len(todo))
    report.seconds = time.time() - started
    report.results = summary(path, report.seconds, report.written)
    (out / paths.PREDICT_RESULTS).write_text(json.dumps(report.results, indent=4, sort_keys=True), encoding="utf-8")
    (out / paths.PREDICT_REPORT).write_text(json.dumps(report.to_dict(), indent=2), encoding="utf-8")
    return report
