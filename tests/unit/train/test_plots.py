"""Loss PNGs drawn from run.jsonl."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tunelab.train.plots import plot_losses, read_log, smooth

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def write_log(path: Path, records: list[dict[str, float]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + "\n", encoding="utf-8")
    return path


def test_read_log(tmp_path: Path) -> None:
    path = write_log(tmp_path / "run.jsonl", [{"step": 1, "loss": 2.0}, {"step": 2, "eval_loss": 1.5}])
    assert read_log(path) == [{"step": 1, "loss": 2.0}, {"step": 2, "eval_loss": 1.5}]
    assert read_log(tmp_path / "missing.jsonl") == []


def test_smooth_is_a_bias_corrected_moving_average() -> None:
    assert smooth([3.0, 3.0, 3.0]) == pytest.approx([3.0, 3.0, 3.0])
    assert smooth([2.0]) == pytest.approx([2.0])
    assert smooth([0.0, 1.0], weight=0.5) == pytest.approx([0.0, 0.5 / 0.75])


def test_training_and_eval_loss_pngs(tmp_path: Path) -> None:
    records = [{"step": s, "loss": 3.0 - 0.1 * s} for s in range(1, 6)] + [{"step": 5, "eval_loss": 2.7}]
    log = write_log(tmp_path / "run.jsonl", records)
    written = plot_losses(log, tmp_path)
    assert written == [tmp_path / "training_loss.png", tmp_path / "training_eval_loss.png"]
    for path in written:
        assert path.read_bytes().startswith(PNG_MAGIC)


def test_no_eval_png_without_eval_loss(tmp_path: Path) -> None:
    log = write_log(tmp_path / "run.jsonl", [{"step": 1, "loss": 2.0}])
    assert plot_losses(log, tmp_path) == [tmp_path / "training_loss.png"]
    assert not (tmp_path / "training_eval_loss.png").exists()


def test_no_png_without_a_log(tmp_path: Path) -> None:
    assert plot_losses(tmp_path / "run.jsonl", tmp_path) == []
    assert list(tmp_path.iterdir()) == []


def test_default_smoothing_weight_grows_with_the_number_of_points() -> None:
    short = smooth([4.0] + [0.0] * 15)
    long = smooth([4.0] + [0.0] * 199)
    assert short[4] < 0.1  # 16 points: light smoothing follows a falling curve
    assert long[4] > 0.5  # 200 points: heavy smoothing


def test_stage_figures_get_one_png_each_and_unlogged_ones_none(tmp_path: Path) -> None:
    from tunelab.train.plots import plot_metrics

    log = tmp_path / "run.jsonl"
    log.write_text("".join(json.dumps({"step": s, "loss": 1.0, "rewards/accuracies": s / 10}) + "\n"
                           for s in range(1, 6)), encoding="utf-8")
    written = plot_metrics(log, tmp_path, ("rewards/accuracies", "rewards/margins"))
    assert written == [tmp_path / "training_rewards_accuracies.png"]
    assert written[0].stat().st_size > 1000
