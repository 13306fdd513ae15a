"""Runs tab: every run under a folder with its summary, and several compared (loss curves overlaid, one table).

The figures come from sweep/runs.py, the same index and comparison `tunelab runs` prints.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import pandas as pd

from tunelab.config.errors import ConfigError
from tunelab.interfaces.webui.safe_paths import checked_path
from tunelab.interfaces.webui.topbar import RUNS_ROOT
from tunelab.interfaces.webui.ui import UI
from tunelab.sweep.runs import RunInfo, compare_rows, find_runs, index_row, loss_curves, read_run

CURVE_COLUMNS = ["step", "loss", "run"]


def run_label(run: RunInfo, root: Path) -> str:
    """A run's name in the tables: its folder relative to the root searched."""
    folder = Path(run.folder)
    return str(folder.relative_to(root)) if folder.is_relative_to(root) else str(folder)


def index_table(root: Path) -> tuple[pd.DataFrame, list[str]]:
    """The index of every run under root (one row each) and the run labels, newest first."""
    runs = find_runs(root)
    rows = []
    for run in runs:
        row = index_row(run)
        row["run"] = run_label(run, root)
        rows.append(row)
    return pd.DataFrame(rows), [run_label(run, root) for run in runs]


def compare(root: Path, labels: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The comparison table of the chosen runs and their train loss curves, one series per run."""
    runs = [read_run(root / label) for label in labels]
    rows = compare_rows(runs)
    for row, label in zip(rows, labels, strict=True):
        row["run"] = label
    curves = [{"step": step, "loss": loss, "run": label} for label, run in zip(labels, runs, strict=True)
              for step, loss in loss_curves(Path(run.folder))[0]]
    return pd.DataFrame(rows), pd.DataFrame(curves, columns=CURVE_COLUMNS)


def build(ui: UI) -> None:
    """The Runs tab, inside its gr.Tab."""
    with gr.Row():
        folder = ui.add("runs.folder", gr.Textbox(value=RUNS_ROOT, elem_id="runs-folder", scale=3))
        refresh = ui.add("runs.refresh", gr.Button(elem_id="runs-refresh", scale=1))
    message = gr.Markdown(elem_id="runs-message")
    table = ui.add("runs.table", gr.Dataframe(interactive=False, elem_id="runs-table"))
    chosen = ui.add("runs.compare", gr.Dropdown(choices=[], multiselect=True, elem_id="runs-compare"))
    compared = ui.add("runs.compare_table", gr.Dataframe(interactive=False, elem_id="runs-compare-table"))
    curves = ui.add("runs.curves", gr.LinePlot(x="step", y="loss", color="run", elem_id="runs-curves"))

    def do_refresh(folder_text: str) -> tuple[str, pd.DataFrame, dict[str, object]]:
        """Re-read the index of the runs folder."""
        try:
            root = checked_path("runs folder", folder_text, ui.workdir, must_exist=True)
        except ConfigError as exc:
            return f"⚠️ {exc.render()}", pd.DataFrame(), gr.update(choices=[], value=[])
        frame, labels = index_table(root)
        return "", frame, gr.update(choices=labels, value=[])

    def do_compare(folder_text: str, labels: list[str]) -> tuple[str, pd.DataFrame, pd.DataFrame]:
        """Compare the chosen runs."""
        if not labels:
            return "", pd.DataFrame(), pd.DataFrame(columns=CURVE_COLUMNS)
        try:
            root = checked_path("runs folder", folder_text, ui.workdir, must_exist=True)
            rows, points = compare(root, labels)
        except ConfigError as exc:
            return f"⚠️ {exc.render()}", pd.DataFrame(), pd.DataFrame(columns=CURVE_COLUMNS)
        return "", rows, points

    refresh.click(do_refresh, inputs=folder, outputs=[message, table, chosen])
    chosen.change(do_compare, inputs=[folder, chosen], outputs=[message, compared, curves])
    folder.submit(do_refresh, inputs=folder, outputs=[message, table, chosen])
    ui.when_loaded(do_refresh, [folder], [message, table, chosen])
