"""The layout of a run's output folder: every file name in one place."""

from __future__ import annotations

from pathlib import Path

CONFIG = "config.yaml"
LOG = "run.jsonl"
METRICS = "train_results.json"
LOSS_PNG = "training_loss.png"
EVAL_LOSS_PNG = "training_eval_loss.png"
DATA_REPORT = "data_report.json"
PREDICTIONS = "generated_predictions.jsonl"  # tunelab predict, and do_predict (LLaMA-Factory's name)
PREDICT_REPORT = "predict_report.json"  # rows answered, resumed and too long
PREDICT_RESULTS = "predict_results.json"  # do_predict's scores, under LLaMA-Factory's key names


def output_file(output_dir: str | Path, name: str) -> Path:
    """Path of one of the run files inside output_dir."""
    return Path(output_dir) / name

SUMMARY = "run_summary.json"
TENSORBOARD = "runs"  # report_to: tensorboard writes its event files here
