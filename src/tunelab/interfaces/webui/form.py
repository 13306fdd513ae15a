"""The Train tab's form, generated from the config schema: one field per key, its values to a YAML file and back.

Pure data (no Gradio): the tab turns each FormField into a component, and a key added to the schema appears in the
form without UI code. Values travel in the form's own shape (checkbox bools, dropdown strings, numbers, text) and
are converted to config values here, in both directions, so a saved YAML loads back to the same form.
"""

from __future__ import annotations

import shlex
import types
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Annotated, Literal, Union, get_args, get_origin

import yaml
from pydantic.fields import FieldInfo

from tunelab.config.errors import ConfigError, Problem
from tunelab.config.schema import SECTIONS

# keys set in the top bar (shared by every tab): config key -> TopBar attribute
TOP_KEYS: dict[str, str] = {"model_name_or_path": "model", "template": "template",
                            "finetuning_type": "finetuning_type", "output_dir": "run_dir", "default_system": "system"}
# shown above the accordions; every other key sits in its section's accordion
COMMON_KEYS: tuple[str, ...] = (
    "stage", "dataset", "dataset_dir", "learning_rate", "num_train_epochs", "max_steps",
    "per_device_train_batch_size", "gradient_accumulation_steps", "cutoff_len", "lora_rank", "lora_target",
    "val_size", "logging_steps", "save_steps", "bf16", "plot_loss")
DATASET_KEYS: tuple[str, ...] = ("dataset", "eval_dataset")  # multi-selects, comma-joined in the YAML
# keys written even at their default, so the YAML says what it trains without `tunelab config --keys`
ALWAYS_WRITTEN: tuple[str, ...] = ("model_name_or_path", "stage", "do_train", "finetuning_type", "dataset",
                                   "dataset_dir", "output_dir")
UNSET = "(unset)"  # the dropdown choice of an optional key left at None
Kind = Literal["bool", "choice", "integer", "number", "text", "yaml", "datasets"]
UiValue = bool | int | float | str | list[str] | None


@dataclass(frozen=True)
class FormField:
    """One config key as a form field: its kind, choices, default (as the form shows it) and description."""

    key: str
    section: str
    kind: Kind
    optional: bool
    default: object  # the schema default, as a config value
    description: str
    choices: tuple[object, ...] = ()  # the Literal values (config values), for kind choice

    @property
    def common(self) -> bool:
        """Shown outside the accordions."""
        return self.key in COMMON_KEYS

    def choice_labels(self) -> list[str]:
        """The dropdown's choices as text (UNSET first for an optional key)."""
        return ([UNSET] if self.optional else []) + [str(choice) for choice in self.choices]


def unwrap(annotation: object) -> tuple[object, bool]:
    """An annotation without Annotated and without None, and whether None was allowed."""
    if get_origin(annotation) is Annotated:
        return unwrap(get_args(annotation)[0])
    if get_origin(annotation) in (Union, types.UnionType):
        members = [arg for arg in get_args(annotation) if arg is not type(None)]
        optional = len(members) < len(get_args(annotation))
        if len(members) == 1:
            inner, _ = unwrap(members[0])
            return inner, optional
        return annotation, optional
    return annotation, False


def kind_of(key: str, annotation: object) -> tuple[Kind, bool, tuple[object, ...]]:
    """The form kind of an annotation, whether it is optional, and its choices."""
    inner, optional = unwrap(annotation)
    if key in DATASET_KEYS:
        return "datasets", optional, ()
    if inner is bool and not optional:
        return "bool", False, ()
    if get_origin(inner) is Literal:
        return "choice", optional, get_args(inner)
    if inner is int:
        return "integer", optional, ()
    if inner is float:
        return "number", optional, ()
    if inner is str:
        return "text", optional, ()
    return "yaml", optional, ()  # unions (bool | str), lists, mappings: typed as YAML text


def make_field(key: str, section: str, info: FieldInfo) -> FormField:
    """The FormField of one schema field."""
    kind, optional, choices = kind_of(key, info.annotation)
    default = None if info.is_required() else info.get_default(call_default_factory=True)
    return FormField(key=key, section=section, kind=kind, optional=optional or info.is_required(), default=default,
                     description=info.description or "", choices=choices)


@cache
def fields() -> tuple[FormField, ...]:
    """Every config key as a FormField, in section order."""
    return tuple(make_field(key, section, info) for section, cls in SECTIONS.items()
            for key, info in cls.model_fields.items())


def fields_by_key() -> dict[str, FormField]:
    """Every FormField by its key."""
    return {field.key: field for field in fields()}


def top_bar_value(key: str, value: UiValue) -> UiValue:
    """A form value as its top-bar dropdown takes it: the template's dropdown says UNSET for no template."""
    return UNSET if key == "template" and not value else value


def to_ui(field: FormField, value: object) -> UiValue:
    """A config value as the form shows it."""
    if field.kind == "bool":
        return bool(value)
    if field.kind == "choice":
        return UNSET if value is None else str(value)
    if field.kind in ("integer", "number"):
        return value  # type: ignore[return-value]
    if field.kind == "datasets":
        return [name.strip() for name in str(value).split(",") if name.strip()] if value else []
    if value is None:
        return ""
    if field.kind == "text":
        return str(value)
    return yaml.safe_dump(value, default_flow_style=True, allow_unicode=True).strip().removesuffix("...").strip()


def from_ui(field: FormField, value: UiValue) -> object:
    """A form value as a config value (an empty field is the schema default); bad YAML text is a ConfigError."""
    if field.kind == "bool":
        return bool(value)
    if field.kind == "datasets":
        names = [str(name).strip() for name in value or [] if str(name).strip()]
        return ",".join(names) if names else field.default
    if value == UNSET:
        return None
    if value is None or (isinstance(value, str) and not value.strip()):
        return field.default
    if field.kind == "choice":
        return next((choice for choice in field.choices if str(choice) == str(value)), value)
    if field.kind == "integer":
        return int(value)  # type: ignore[arg-type]
    if field.kind == "number":
        return float(value)  # type: ignore[arg-type]
    if field.kind == "text":
        return str(value)
    try:
        return yaml.safe_load(str(value))
    except yaml.YAMLError as exc:
        raise ConfigError([Problem(field.key, f"not valid YAML ({getattr(exc, 'problem', exc)}); write a value "
                                   "as in the config file, e.g. true, 3 or [a, b]")]) from None


def to_flat(values: dict[str, UiValue]) -> dict[str, object]:
    """The form's values as flat config keys: those that differ from the schema default, plus ALWAYS_WRITTEN."""
    flat: dict[str, object] = {}
    for field in fields():
        if field.key not in values:
            continue
        value = from_ui(field, values[field.key])
        if (field.key in ALWAYS_WRITTEN and value is not None) or value != field.default:
            flat[field.key] = value
    return flat


def from_flat(flat: dict[str, object]) -> dict[str, UiValue]:
    """Every key's form value for a flat config (keys it leaves out get the schema default)."""
    unknown = sorted(set(flat) - {field.key for field in fields()})
    if unknown:
        raise ConfigError([Problem(key, "unknown key; see `tunelab config --keys`") for key in unknown])
    return {field.key: to_ui(field, flat.get(field.key, field.default)) for field in fields()}


def yaml_text(flat: dict[str, object]) -> str:
    """A flat config as YAML, grouped by section under `### section` comments (as the examples are)."""
    blocks = []
    for section, cls in SECTIONS.items():
        part = {key: flat[key] for key in cls.model_fields if key in flat}
        if part:
            body = yaml.safe_dump(part, sort_keys=False, allow_unicode=True).rstrip()
            blocks.append(f"### {section}\n{body}\n")
    return "\n".join(blocks)


def train_command(yaml_path: Path, overrides: tuple[str, ...] = ()) -> list[str]:
    """The `tunelab train` command a run executes, as an argument list (never a shell string)."""
    return ["tunelab", "train", str(yaml_path), *overrides]


def command_text(command: list[str]) -> str:
    """An argument list as a line a user can paste into a shell."""
    return shlex.join(command)


def section_keys() -> dict[str, list[FormField]]:
    """The non-common form fields of each section (the accordions), top-bar keys left out."""
    grouped: dict[str, list[FormField]] = {section: [] for section in SECTIONS}
    for field in fields():
        if not field.common and field.key not in TOP_KEYS:
            grouped[field.section].append(field)
    return {section: items for section, items in grouped.items() if items}


def common_fields() -> list[FormField]:
    """The common fields, in COMMON_KEYS order."""
    by_key = fields_by_key()
    return [by_key[key] for key in COMMON_KEYS]

