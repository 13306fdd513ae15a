"""The Train tab's event handlers: form values from Gradio in, messages and component updates out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import pandas as pd

from tunelab.config.errors import ConfigError
from tunelab.data.errors import DataError
from tunelab.data.registry import read_registry
from tunelab.interfaces.webui import form, train_actions
from tunelab.interfaces.webui.jobs import JobError
from tunelab.interfaces.webui.safe_paths import checked_path
from tunelab.interfaces.webui.strings import Lang, label
from tunelab.interfaces.webui.ui import UI

UI_ERRORS = (ConfigError, JobError, DataError, OSError)
LOSS_COLUMNS = ["step", "loss", "curve"]
Tick = tuple[str, str, pd.DataFrame, str, str]


def problem_text(exc: Exception) -> str:
    """An error as the message line shows it (a config error lists every problem)."""
    return f"⚠️ {exc.render() if isinstance(exc, ConfigError) else exc}"


def dataset_names(dataset_dir: str, workdir: Path) -> list[str]:
    """The entries of dataset_dir/dataset_info.json ([] when the folder or file is missing or bad)."""
    try:
        return sorted(read_registry(checked_path("dataset_dir", dataset_dir or "data", workdir, must_exist=True)))
    except (ConfigError, DataError):
        return []


def loss_frame(progress: train_actions.Progress | None) -> pd.DataFrame:
    """Loss points for the plot: step, loss and which curve (train or eval)."""
    rows = [{"step": s, "loss": v, "curve": "train"} for s, v in (progress.train if progress else [])]
    rows += [{"step": s, "loss": v, "curve": "eval"} for s, v in (progress.evals if progress else [])]
    return pd.DataFrame(rows, columns=LOSS_COLUMNS)


def status_text(progress: train_actions.Progress, folder: str, lang: Lang) -> str:
    """One status line: state, step, folder."""
    steps = f" · {label('train.step', lang)} {progress.step}/{progress.max_steps}" if progress.max_steps else ""
    return f"**{label(f'train.state.{progress.state}', lang)}**{steps} · `{folder}`"


def progress_html(progress: train_actions.Progress) -> str:
    """A progress bar of steps done."""
    if not progress.max_steps:
        return ""
    return f'<progress value="{progress.step}" max="{progress.max_steps}" style="width:100%"></progress>'


@dataclass
class TrainEvents:
    """Handlers bound to the UI and to the order of the form's inputs (top-bar keys first, then the form's)."""

    ui: UI
    keys: list[str]

    def values(self, values: tuple[form.UiValue, ...]) -> dict[str, form.UiValue]:
        """The inputs' values by config key."""
        return dict(zip(self.keys, values, strict=True))

    def preview(self, *values: form.UiValue) -> tuple[str, str, str]:
        """Message, command and YAML of the form (the problems instead of the command when it does not check)."""
        try:
            planned = train_actions.plan(self.values(values), self.ui.workdir)
        except ConfigError as exc:
            return problem_text(exc), "", form.yaml_text(form.to_flat(self.values(values)))
        return "", form.command_text(planned.command), planned.yaml

    def start(self, lang: Lang, *values: form.UiValue) -> str:
        """Start a run of the form."""
        try:
            job = train_actions.start(self.values(values), self.ui.workdir, self.ui.jobs)
        except UI_ERRORS as exc:
            return problem_text(exc)
        return f"{label('train.msg.started', lang)}: `{job.extra['shown']}`"

    def resume(self, lang: Lang, folder: str) -> str:
        """Start the run folder's YAML again, resuming from its last checkpoint."""
        try:
            job = train_actions.resume(folder, self.ui.workdir, self.ui.jobs)
        except UI_ERRORS as exc:
            return problem_text(exc)
        return f"{label('train.msg.started', lang)}: `{job.extra['shown']}`"

    def abort(self, lang: Lang) -> str:
        """Stop the active run."""
        job = self.ui.jobs.active()
        if job is None:
            return label("train.msg.none_active", lang)
        self.ui.jobs.abort(job)
        return f"{label('train.msg.aborting', lang)}: `{job.folder}`"

    def save(self, lang: Lang, path: str, *values: form.UiValue) -> str:
        """Write the form to a YAML file."""
        try:
            saved = train_actions.save_yaml(self.values(values), path, self.ui.workdir)
        except UI_ERRORS as exc:
            return problem_text(exc)
        return f"{label('train.msg.saved', lang)}: `{saved}`"

    def load(self, path: str) -> list[object]:
        """Fill the form (and the top bar's keys) from a YAML file."""
        try:
            loaded = train_actions.load_yaml(path, self.ui.workdir)
        except UI_ERRORS as exc:
            return [problem_text(exc)] + [gr.update() for _ in self.keys]
        return [""] + [gr.update(value=form.top_bar_value(key, loaded[key])) for key in self.keys]

    def tick(self, lang: Lang, folder: str) -> Tick:
        """Status, progress bar, loss points, log and error text of the run folder."""
        if not folder:
            return "", "", loss_frame(None), "", ""
        try:
            path = checked_path("run folder", folder, self.ui.workdir)
        except ConfigError as exc:
            return problem_text(exc), "", loss_frame(None), "", ""
        shown = train_actions.progress(path, self.ui.jobs.find(path))
        return status_text(shown, folder, lang), progress_html(shown), loss_frame(shown), shown.log, shown.error

    def datasets(self, dataset_dir: str) -> tuple[dict[str, object], dict[str, object]]:
        """New choices of the dataset multi-selects for another dataset_dir."""
        names = dataset_names(dataset_dir, self.ui.workdir)
        return gr.update(choices=names), gr.update(choices=names)
