"""What the Train tab's buttons do, without Gradio: form values in, text (or a ConfigError) out.

A run is `python -m tunelab train <output_dir>/webui_train.yaml`, the YAML the form wrote: the same command the
preview shows as `tunelab train ...`, so a run started here can be repeated from a terminal.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tunelab.config.errors import ConfigError, Problem
from tunelab.config.load import build, read_yaml
from tunelab.interfaces.webui import form
from tunelab.interfaces.webui.jobs import YAML_FILE, Job, Jobs, error_text, log_tail, state
from tunelab.interfaces.webui.safe_paths import check_config_paths, checked_path
from tunelab.runtime import paths
from tunelab.runtime.processes import tunelab_argv
from tunelab.sweep.runs import loss_curves, read_records

RESUME = ("overwrite_output_dir=false",)  # an unfinished run of the same config resumes from its last checkpoint


@dataclass
class Plan:
    """A run about to start: its flat config, the YAML text, where it goes and the command shown."""

    flat: dict[str, object]
    yaml: str
    folder: Path
    yaml_path: Path
    command: list[str]


def plan(values: dict[str, form.UiValue], workdir: Path) -> Plan:
    """Check the form (values, paths, the whole config as `tunelab train` would) and plan its run."""
    flat = form.to_flat(values)
    if not flat.get("output_dir"):
        raise ConfigError([Problem("output_dir", "choose the run folder in the top bar (e.g. saves/my-run)")])
    problems: list[Problem] = []
    for check in (lambda: check_config_paths(flat, workdir), lambda: build(flat, "train")):
        try:
            check()
        except ConfigError as exc:  # paths and values are reported together
            problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems, "in the form")
    folder = checked_path("output_dir", str(flat["output_dir"]), workdir)
    yaml_path = folder / YAML_FILE
    shown = yaml_path.relative_to(workdir) if yaml_path.is_relative_to(workdir) else yaml_path
    return Plan(flat=flat, yaml=form.yaml_text(flat), folder=folder, yaml_path=yaml_path,
                command=form.train_command(shown))


def start(values: dict[str, form.UiValue], workdir: Path, jobs: Jobs) -> Job:
    """Write the form's YAML into its run folder and start training on it."""
    planned = plan(values, workdir)
    jobs.check_idle()  # before the YAML of the active run's folder could be replaced
    planned.folder.mkdir(parents=True, exist_ok=True)
    planned.yaml_path.write_text(planned.yaml, encoding="utf-8")
    return jobs.start(planned.folder, tunelab_argv(*planned.command[1:]), {"shown": form.command_text(planned.command)})


def resume(folder_text: str, workdir: Path, jobs: Jobs) -> Job:
    """Start the run folder's YAML again so it continues from its last complete checkpoint."""
    folder = checked_path("run folder", folder_text, workdir, must_exist=True)
    yaml_path = folder / YAML_FILE
    if not yaml_path.is_file():
        raise ConfigError([Problem("run folder", f"{folder} holds no {YAML_FILE}: only runs started here can be "
                                   "resumed here; start it with Start instead")])
    shown = yaml_path.relative_to(workdir) if yaml_path.is_relative_to(workdir) else yaml_path
    command = form.train_command(shown, RESUME)
    return jobs.start(folder, tunelab_argv(*command[1:]), {"shown": form.command_text(command)})


def load_yaml(path_text: str, workdir: Path) -> dict[str, form.UiValue]:
    """The form values of a YAML file (unknown keys are errors)."""
    path = checked_path("YAML file", path_text, workdir, must_exist=True)
    return form.from_flat(read_yaml(path))


def save_yaml(values: dict[str, form.UiValue], path_text: str, workdir: Path) -> Path:
    """Write the form as a YAML file; returns where."""
    path = checked_path("YAML file", path_text, workdir)
    if path.suffix not in (".yaml", ".yml"):
        raise ConfigError([Problem("YAML file", f"{path_text}: give a .yaml or .yml file name")])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(form.yaml_text(form.to_flat(values)), encoding="utf-8")
    return path


@dataclass
class Progress:
    """What the Train tab shows of a run folder: state, step, loss curve points, log and error text."""

    state: str
    step: int
    max_steps: int
    train: list[tuple[int, float]]
    evals: list[tuple[int, float]]
    log: str
    error: str
    command: str


def progress(folder: Path, job: Job | None) -> Progress:
    """A run folder's progress, whether this UI started it, an earlier UI did, or a terminal did."""
    records = read_records(folder / paths.LOG)
    steps = [r for r in records if isinstance(r.get("step"), int)]
    last = steps[-1] if steps else {}
    train, evals = loss_curves(folder)
    if job is not None:
        now = state(job)
        return Progress(state=now, step=int(last.get("step", 0)), max_steps=int(last.get("max_steps", 0)),
                        train=train, evals=evals, log=log_tail(job),
                        error=error_text(job) if now == "failed" else "", command=job.extra.get("shown", ""))
    now = "finished" if (folder / paths.SUMMARY).is_file() else "idle" if not records else "unknown"
    return Progress(state=now, step=int(last.get("step", 0)), max_steps=int(last.get("max_steps", 0)),
                    train=train, evals=evals, log="", error="", command="")
