"""The `sweep:` section of a YAML (and the `tunelab sweep` flags): validated into a SweepPlan, every problem named
by its key. The section is not a training key: the training config is the rest of the file."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, PositiveInt

from tunelab.config.aliases import RENAMED
from tunelab.config.errors import ConfigError, Problem
from tunelab.config.schema import RunConfig, key_owners
from tunelab.runtime.suggest import suggest
from tunelab.sweep.params import ParamError, ParamSpec, Scalar, grid_values, parse_param

SECTION = "sweep"
EVAL_LOSS = "eval_loss"
# metrics where a smaller number is better (the rest: larger is better); `direction` overrides
LOWER_IS_BETTER = ("loss", "mae", "mre", "perplexity", "std")
# the optional extra that installs the driver SQLAlchemy uses for postgresql:// (psycopg, version 3)
POSTGRES_EXTRA = "pip install 'tunelab[postgres]'"
# keys a sweep sets itself in every trial: varying them would break the sweep's folders or resume
RESERVED = frozenset({"output_dir", "overwrite_output_dir", "resume_from_checkpoint", "eval_tasks"})


class SweepSection(BaseModel):
    """The keys of the `sweep:` section."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    grid: dict[str, list[Scalar] | Scalar] = Field(
        default_factory=dict, description="Config key -> list of values; every combination is a trial.")
    search: Literal["optuna"] | None = Field(None, description="'optuna': sample `params` ranges for `trials` "
                                             "trials instead of running every grid combination.")
    params: dict[str, str] = Field(default_factory=dict, description="Search ranges: key -> log:LOW:HIGH, "
                                   "float:LOW:HIGH, int:LOW:HIGH or cat:A,B (needs search: optuna).")
    trials: PositiveInt | None = Field(None, description="How many trials a search runs (default 10; a grid "
                                       "with sampler random: how many combinations to draw).")
    sampler: Literal["grid", "random", "tpe"] | None = Field(
        None, description="grid (every combination; the default for a grid), random, or tpe (the search default).")
    metric: str = Field(EVAL_LOSS, description="The objective: eval_loss (the final eval loss of training) or "
                        "TASK:METRIC of the config's eval_tasks, e.g. length:mae, judge:judge-mean.")
    direction: Literal["minimize", "maximize"] | None = Field(
        None, description="Whether a smaller or a larger objective is better (default: minimize for losses, "
        "mae, mre, perplexity and std; maximize otherwise).")
    pruner: Literal["median", "none"] | None = Field(
        None, description="median: stop a trial whose eval loss during training is worse than the median of "
        "earlier trials at the same step (default for a search on eval_loss; needs metric eval_loss).")
    parallel: PositiveInt = Field(1, description="Trials run at once on this machine (one device each when "
                                  "there are several).")
    storage: str | None = Field(None, description="Optuna storage URL (default: SQLite sweep.db in the sweep "
                                "folder); a PostgreSQL URL (postgresql://USER@HOST/DB; needs pip install "
                                "'tunelab[postgres]') lets several machines work on one study.")
    study_name: str = Field("sweep", description="The study's name in the storage.")
    seed: int | None = Field(None, description="Seed of the random and TPE samplers (default: the config's seed).")


@dataclass(frozen=True)
class SweepPlan:
    """A validated sweep: what varies, how trials are chosen and judged, the base config and where it all goes."""

    base: dict[str, object]  # the training config's flat keys (the YAML without `sweep`, plus overrides)
    config: RunConfig  # the base, validated
    folder: Path
    grid: dict[str, list[Scalar]] = field(default_factory=dict)
    params: dict[str, ParamSpec] = field(default_factory=dict)
    sampler: str = "grid"
    trials: int | None = None
    metric: str = EVAL_LOSS
    direction: str = "minimize"
    pruner: str = "none"
    parallel: int = 1
    storage: str | None = None
    study_name: str = "sweep"
    seed: int = 42

    @property
    def varied(self) -> list[str]:
        """The keys that vary, grid keys first."""
        return list(self.grid) + [key for key in self.params if key not in self.grid]

    def storage_url(self) -> str:
        """The storage URL: the given one, or SQLite in the sweep folder."""
        return self.storage or f"sqlite:///{(self.folder / 'sweep.db').resolve()}"

    def combinations(self) -> list[dict[str, Scalar]]:
        """Every combination a grid visits, in order (search int/cat ranges expanded for sampler grid)."""
        return combinations(self.grid, self.params)

    def trial_flat(self, values: dict[str, Scalar], trial_dir: Path) -> dict[str, object]:
        """A trial's flat config: the base with the varied values, writing into the trial folder."""
        flat = {**self.base, **values, "output_dir": str(trial_dir)}
        flat["overwrite_output_dir"] = False  # a killed trial resumes from its checkpoint
        flat.pop("resume_from_checkpoint", None)
        return flat

    @property
    def task_metric(self) -> tuple[str, str] | None:
        """(task, metric) when the objective is an eval task's metric."""
        task, sep, metric = self.metric.partition(":")
        return (task, metric) if sep else None


def combinations(grid: dict[str, list[Scalar]], params: dict[str, ParamSpec]) -> list[dict[str, Scalar]]:
    """Every combination of grid values (and of int/cat ranges, for sampler grid), the first key slowest."""
    axes = {**grid, **{key: spec.values() for key, spec in params.items() if key not in grid}}
    return [dict(zip(axes, values)) for values in itertools.product(*axes.values())]


def split_section(flat: dict[str, object]) -> tuple[dict[str, object], dict[str, object]]:
    """(training keys, the sweep section) of a flat YAML."""
    rest = dict(flat)
    section = rest.pop(SECTION, None) or {}
    if not isinstance(section, dict):
        raise ConfigError([Problem(SECTION, "must be a mapping, e.g. sweep: {grid: {learning_rate: [1e-4, 3e-4]}}")])
    return rest, section


def key_problems(keys: list[str], where: str) -> list[Problem]:
    """Varied keys that are not training keys, or that the sweep sets itself."""
    owners = key_owners()
    problems = []
    for key in keys:
        name = RENAMED.get(key, key)
        if name in RESERVED:
            problems.append(Problem(f"{where}.{key}", "set by the sweep for every trial; it cannot vary"))
        elif name not in owners:
            problems.append(Problem(f"{where}.{key}", "not a config key" + suggest(name, sorted(owners))))
    return problems


def read_grid(raw: dict[str, object]) -> tuple[dict[str, list[Scalar]], list[Problem]]:
    """The grid's value lists, typed; a list that cannot be read is a problem naming sweep.grid.KEY."""
    grid: dict[str, list[Scalar]] = {}
    problems = []
    for key, values in raw.items():
        try:
            grid[key] = grid_values(values)  # type: ignore[arg-type]
        except ParamError as exc:
            problems.append(Problem(f"sweep.grid.{key}", str(exc)))
    return grid, problems


def read_params(raw: dict[str, str]) -> tuple[dict[str, ParamSpec], list[Problem]]:
    """The search ranges; a range that cannot be read is a problem naming sweep.params.KEY."""
    params: dict[str, ParamSpec] = {}
    problems = []
    for key, text in raw.items():
        try:
            params[key] = parse_param(text)
        except ParamError as exc:
            problems.append(Problem(f"sweep.params.{key}", str(exc)))
    return params, problems


def default_direction(metric: str) -> str:
    """minimize for losses and deviations, maximize for scores."""
    name = metric.split(":")[-1].lower()
    return "minimize" if any(word in name for word in LOWER_IS_BETTER) else "maximize"


def mode_problems(section: SweepSection, grid: dict[str, list[Scalar]], params: dict[str, ParamSpec]) -> list[Problem]:
    """How trials are chosen: a grid, or a search over ranges; the combinations that make no sense."""
    problems = []
    if not grid and not params:
        problems.append(Problem(SECTION, "nothing varies; add grid: {learning_rate: [1e-4, 3e-4]} (or --grid), or "
                                         "search: optuna with params (or --search optuna --param ...)"))
    if section.params and section.search is None:
        problems.append(Problem("sweep.params", "ranges are searched: add search: optuna (or --search optuna); "
                                                "list values to try every one under grid"))
    for key in set(grid) & set(params):
        problems.append(Problem(f"sweep.params.{key}", "also in sweep.grid; give it in one of them"))
    sampler = section.sampler or ("tpe" if section.search else "grid")
    if sampler == "grid":
        for key, spec in params.items():
            if spec.kind not in ("cat", "int"):
                problems.append(Problem(f"sweep.params.{key}", f"{spec.kind} ranges cannot be a grid; use sampler "
                                                               "tpe or random, or list values under grid"))
    if section.trials is not None and sampler == "grid":
        problems.append(Problem("sweep.trials", "a grid runs every combination; remove trials, or set sampler: "
                                                "random to draw that many combinations"))
    return problems


def objective_problems(section: SweepSection, config: RunConfig | None, flat: dict[str, object]) -> list[Problem]:
    """The objective must be something the trials produce."""
    problems = []
    task, sep, metric = section.metric.partition(":")
    if sep:
        tasks = [t.get("name") for t in flat.get("eval_tasks") or [] if isinstance(t, dict)]
        if task not in tasks:
            problems.append(Problem("sweep.metric", f"{section.metric}: no eval task named {task!r}"
                                    + (f"; the config's eval_tasks are {', '.join(map(str, tasks))}" if tasks else
                                       "; add eval_tasks to the config, or use eval_loss")))
        if not metric:
            problems.append(Problem("sweep.metric", "write TASK:METRIC, e.g. length:mae"))
    elif not (section.metric.startswith("eval_") and section.metric.endswith("loss")):
        problems.append(Problem("sweep.metric", f"{section.metric!r}: use eval_loss (the final eval loss) or "
                                                "TASK:METRIC of the eval_tasks, e.g. length:mae"))
    elif config is not None and not (config.data.val_size or config.data.eval_dataset):
        problems.append(Problem("sweep.metric", "eval_loss needs an eval set: set val_size or eval_dataset in the "
                                                "config, or use TASK:METRIC of eval_tasks"))
    if section.pruner == "median" and sep:
        problems.append(Problem("sweep.pruner", "pruning reads the eval loss logged during training; it needs "
                                                "metric: eval_loss"))
    return problems


def storage_problems(url: str | None) -> list[Problem]:
    """A storage URL SQLAlchemy cannot read, or whose database driver is not installed (checked now: otherwise
    the sweep would stop with an ImportError when it opens the study)."""
    if url is None:
        return []
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        return [Problem("sweep.storage", "not a database URL; write sqlite:///PATH/sweep.db or "
                                         "postgresql://USER@HOST/DB (or leave it out: sweep.db in the sweep folder)")]
    try:
        dialect = parsed.get_dialect()
    except sa.exc.NoSuchModuleError:
        return [Problem("sweep.storage", f"{parsed.drivername}://: not a database SQLAlchemy knows; write "
                                         "sqlite:///PATH/sweep.db or postgresql://USER@HOST/DB")]
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        shown = parsed.render_as_string(hide_password=True)
        missing = getattr(exc, "name", None) or str(exc)
        if parsed.get_backend_name() != "postgresql":
            fix = f"install the Python module {missing} (the driver of {parsed.drivername}://)"
        elif parsed.get_driver_name() == "psycopg":
            fix = POSTGRES_EXTRA
        else:
            fix = f"install {missing}, or {POSTGRES_EXTRA} and write the URL as postgresql+psycopg://..."
        return [Problem("sweep.storage", f"{shown}: its database driver is not installed (no module {missing}); "
                                         f"{fix}")]
    return []
