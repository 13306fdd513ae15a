"""What the Export tab computes: its form fields from ExportSection (a key added to the schema appears as a field),
the form's values as `key=value` overrides, the config it writes and checks as `tunelab export` would, the command
it runs, and where the result is. export_dir follows the web UI's path rule (safe_paths.checked_path): a relative
folder is inside the working folder."""

from __future__ import annotations

import argparse
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic.fields import FieldInfo

from tunelab.config.errors import ConfigError, Problem
from tunelab.config.schema import GGUF_TYPES, ExportSection
from tunelab.interfaces.webui.cli_capture import Captured, capture, cli_runner
from tunelab.interfaces.webui.safe_paths import checked_path, collect
from tunelab.interfaces.webui.top_config import blank, model_keys, run_folder
from tunelab.runtime.processes import tunelab_argv

CONFIG_NAME = "webui_export.yaml"
LOG_NAME = "webui_export.log"  # the command's output, next to its config
UNSET = ""  # a dropdown's "leave it to the default" choice
EXTRA_KEYS = ("overwrite_output_dir",)  # export_dir may be replaced only with this train key set


@dataclass(frozen=True)
class FieldSpec:
    """One export key as a form field: its widget kind, choices and default."""

    key: str
    widget: str  # dropdown | checkbox | number | text
    default: object
    choices: tuple[str, ...] = ()
    integer: bool = False


def field_spec(key: str, info: FieldInfo) -> FieldSpec:
    """The widget for a schema field: choices for Literal types (and GGUF types), a checkbox for booleans, a number
    for numbers, else text."""
    annotation = info.annotation
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    optional = typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in \
        typing.get_args(annotation)
    inner = args[0] if optional and len(args) == 1 else annotation
    default = info.get_default(call_default_factory=True)
    if key == "gguf_type":
        return FieldSpec(key, "dropdown", UNSET, (UNSET, *GGUF_TYPES))
    if typing.get_origin(inner) is typing.Literal:
        choices = tuple(str(c) for c in typing.get_args(inner))
        return FieldSpec(key, "dropdown", UNSET if default is None else str(default),
                         ((UNSET,) if optional else ()) + choices)
    scalar = typing.get_args(inner)[0] if typing.get_origin(inner) is typing.Annotated else inner
    if scalar is bool:
        return FieldSpec(key, "checkbox", bool(default))
    if scalar in (int, float):
        return FieldSpec(key, "number", default, integer=scalar is int)
    return FieldSpec(key, "text", UNSET if default is None else str(default))


def field_specs() -> list[FieldSpec]:
    """Every ExportSection key, in schema order."""
    return [field_spec(key, info) for key, info in ExportSection.model_fields.items()]


def overrides(values: dict[str, object]) -> list[str]:
    """The form's values that differ from the schema's defaults, as `key=value` (the CLI's override syntax)."""
    specs = {spec.key: spec for spec in field_specs()}
    items = []
    for key, value in values.items():
        spec = specs.get(key)
        if spec is not None and spec.widget == "number" and value is not None and spec.integer:
            value = int(value)
        if value in (None, UNSET) or (spec is not None and value == spec.default):
            continue
        if key in EXTRA_KEYS and value is False:
            continue
        items.append(f"{key}={str(value).lower() if isinstance(value, bool) else value}")
    return items


@dataclass(frozen=True)
class ExportForm:
    """The top bar and the export fields."""

    model: str
    template: str | None
    finetuning_type: str | None
    run_dir: str | None
    values: dict[str, object]
    workdir: Path = field(default_factory=Path.cwd)  # relative folders are read from here, and may not leave it
    system: str | None = None  # the top bar's system prompt (default_system): an ollama Modelfile's SYSTEM

    def export_folder(self) -> Path | None:
        """export_dir by the path rule (None when it is not given: `tunelab export` says it is required)."""
        text = blank(str(self.values.get("export_dir") or ""))
        return checked_path("export_dir", text, self.workdir) if text else None

    def checked(self) -> tuple[dict[str, object], list[str]]:
        """The config file's keys (the model, the run: its adapter or its whole model, the system prompt) and the
        export keys as overrides, export_dir resolved; every problem of the form is reported together."""
        problems: list[Problem] = []
        model = collect(problems, lambda: model_keys(self.model, self.template, self.finetuning_type))
        run = collect(problems, lambda: run_folder(self.run_dir, required=True, workdir=self.workdir))
        folder = collect(problems, self.export_folder)
        if problems:
            raise ConfigError(problems)
        values = {**self.values, **({"export_dir": str(folder)} if folder else {})}
        system = {"default_system": self.system} if blank(self.system) else {}
        return {**(model or {}), "output_dir": str(run), **system}, overrides(values)


def write_config(form: ExportForm) -> tuple[Path | None, list[str], Captured]:
    """Write the model/run config into the run folder and check it with the export keys as `tunelab export` would."""
    written: list[Path] = []
    keys: list[str] = []

    def handler(_: argparse.Namespace) -> int:
        from tunelab.config.load import load_config

        config, export_keys = form.checked()
        keys.extend(export_keys)
        path = Path(str(config["output_dir"])) / CONFIG_NAME
        path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
        load_config(path, keys, purpose="export")
        written.append(path)
        return 0

    done = capture(handler, argparse.Namespace(), cli_runner)
    return (written[0] if written and done.ok else None), keys, done


def export_argv(config: Path, keys: list[str]) -> list[str]:
    """`tunelab export CONFIG key=value ...` as an argument list."""
    return tunelab_argv("export", str(config), *keys)


def result_files(folder: Path) -> str:
    """What the export folder holds, one file a line with its size."""
    if not folder.is_dir():
        return ""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return "\n".join(f"{p.relative_to(folder)}  {p.stat().st_size / 1e6:,.2f} MB" for p in files)
