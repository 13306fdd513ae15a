"""YAML + overrides + `tunelab sweep` flags -> a SweepPlan, every problem reported at once; the training config is
checked with the first valid combination and the eval config before anything runs (a combination that is not a valid
config fails as a trial, with the config's message, and the others run)."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from tunelab.config.errors import ConfigError, Problem, pydantic_problems
from tunelab.config.load import build, parse_overrides, read_yaml
from tunelab.config.schema import RunConfig
from tunelab.sweep.naming import trial_name
from tunelab.sweep.params import ParamSpec, Scalar
from tunelab.sweep.spec import (SweepPlan, SweepSection, combinations, default_direction, key_problems, mode_problems,
                                objective_problems, read_grid, read_params, split_section, storage_problems)

DEFAULT_TRIALS = 10


def merge_flags(section: dict[str, object], flags: dict[str, object]) -> dict[str, object]:
    """The YAML's sweep section with the command-line flags on top (grid and params merged key by key)."""
    merged = dict(section)
    for key, value in flags.items():
        if value is None:
            continue
        if key in ("grid", "params") and isinstance(value, dict):
            base = merged.get(key) if isinstance(merged.get(key), dict) else {}
            merged[key] = {**base, **value}  # type: ignore[dict-item]
        else:
            merged[key] = value
    return merged


def sample_values(grid: dict[str, list[Scalar]], params: dict[str, ParamSpec]) -> dict[str, Scalar]:
    """Values of a first trial: each grid key's first value, each range's low end (or first choice)."""
    values = {key: items[0] for key, items in grid.items()}
    for key, spec in params.items():
        values[key] = spec.choices[0] if spec.kind == "cat" else int(spec.low) if spec.kind == "int" else spec.low
    return values


def validated_section(raw: dict[str, object], source: str | None) -> SweepSection:
    """The section's keys typed; pydantic's problems named sweep.KEY."""
    try:
        return SweepSection(**raw)
    except ValidationError as exc:
        raise ConfigError([Problem(f"sweep.{p.key}", p.message) for p in pydantic_problems(exc)], source) from None


def load_plan(path: str | Path | None, overrides: list[str], flags: dict[str, object]) -> SweepPlan:
    """Read and check the sweep; raises ConfigError listing every problem (naming sweep.KEY or the config key)."""
    source = str(path) if path else None
    base, raw = split_section(read_yaml(path) if path else {})
    values, problems = parse_overrides(overrides)
    base.update(values)
    section = validated_section(merge_flags(raw, flags), source)
    grid, grid_problems = read_grid(section.grid)
    params, param_problems = read_params(section.params)
    problems += grid_problems + param_problems + key_problems(list(grid), "sweep.grid")
    problems += key_problems(list(params), "sweep.params") + mode_problems(section, grid, params)
    problems += storage_problems(section.storage)
    if not base.get("output_dir"):
        problems.append(Problem("output_dir", "the sweep folder: set it (e.g. output_dir: saves/sweeps/identity); "
                                              "each trial trains into a folder under it"))
    if problems:
        raise ConfigError(problems, source)
    sampler = section.sampler or ("tpe" if section.search else "grid")
    combos = combinations(grid, params) if sampler == "grid" else [sample_values(grid, params)]
    config = first_valid(base, combos, source)
    problems += objective_problems(section, config, base)
    if not problems and base.get("eval_tasks"):
        problems += eval_problems({**base, **combos[0]}, section.metric, source)
    if problems:
        raise ConfigError(problems, source)
    plan = SweepPlan(base=base, config=config, folder=Path(str(base["output_dir"])), grid=grid, params=params,
                     sampler=sampler, trials=None if sampler == "grid" else section.trials or DEFAULT_TRIALS,
                     metric=section.metric, direction=section.direction or default_direction(section.metric),
                     pruner=section.pruner or ("median" if section.search and not plan_task(section.metric)
                                               else "none"),
                     parallel=section.parallel, storage=section.storage, study_name=section.study_name,
                     seed=section.seed if section.seed is not None else config.train.seed)
    names = [trial_name(values) for values in combos] if sampler == "grid" else []
    if len(set(names)) != len(names):
        raise ConfigError([Problem("sweep.grid", "two combinations give the same trial name; list each value once")],
                          source)
    return plan


def plan_task(metric: str) -> bool:
    """Whether the objective is an eval task's metric (TASK:METRIC) rather than an eval loss."""
    return ":" in metric


def eval_problems(flat: dict[str, object], metric: str, source: str | None) -> list[Problem]:
    """The eval config every trial runs (`tunelab eval`), checked now rather than after the first training; and
    the objective a metric its task's kind gives."""
    import tunelab.eval  # noqa: F401 - registers the task kinds the eval checks ask
    from tunelab.eval.kinds import kind_of

    try:
        config = build(flat, "eval", source)
    except ConfigError as exc:
        return exc.problems
    task, sep, name = metric.partition(":")
    spec = next((t for t in config.eval.tasks() if t.name == task), None)
    if not sep or spec is None or kind_of(spec).metrics.fits(name) or kind_of(spec).metrics.fits(name.split("@")[0]):
        return []
    return [Problem("sweep.metric", f"{metric}: a {spec.type} task gives {kind_of(spec).metrics.allowed()}")]


def first_valid(base: dict[str, object], combos: list[dict[str, Scalar]], source: str | None) -> RunConfig:
    """The base config with the first valid trial's values (no valid trial: the first one's problems)."""
    first: ConfigError | None = None
    for values in combos:
        try:
            return build({**base, **values}, "train", source)
        except ConfigError as exc:
            first = first or exc
    assert first is not None
    raise first
