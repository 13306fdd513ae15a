"""The top bar every tab shares: language, model, template, finetuning type, run folder, system prompt."""

from __future__ import annotations

import time
from pathlib import Path

import gradio as gr

from tunelab.config.schema import MethodSection
from tunelab.config.templates import template_names
from tunelab.interfaces.webui.form import UNSET, fields_by_key
from tunelab.interfaces.webui.strings import LANGS
from tunelab.interfaces.webui.ui import UI, TopBar
from tunelab.model.registry import aliases
from tunelab.sweep.runs import find_runs

RUNS_ROOT = "saves"  # where run folders are looked for (relative to the working folder)
LANG_NAMES = {"en": "English", "zh": "中文"}


def run_folders(workdir: Path) -> list[str]:
    """The run folders under saves/ (relative to the working folder), newest first."""
    root = workdir / RUNS_ROOT
    if not root.is_dir():
        return []
    return [str(Path(run.folder).relative_to(workdir)) for run in find_runs(root)]


def new_run_folder(model: str | None) -> str:
    """A fresh run folder name: saves/<model>/<time>."""
    name = Path(model or "model").name.replace(".gguf", "") or "model"
    return f"{RUNS_ROOT}/{name}/run-{time.strftime('%Y%m%d-%H%M%S')}"


def method_choices() -> list[str]:
    """The finetuning types the schema accepts."""
    return [str(choice) for choice in fields_by_key()["finetuning_type"].choices]


def build_topbar(ui: UI) -> TopBar:
    """Create the top bar's components (registered for relabelling) and return them."""
    models = list(aliases())
    with gr.Row(elem_id="topbar"):
        lang = ui.add("topbar.lang", gr.Dropdown(choices=[(LANG_NAMES[code], code) for code in LANGS],
                                                 value=ui.lang, elem_id="topbar-lang", scale=1))
        model = ui.add("topbar.model", gr.Dropdown(choices=models, value=models[0] if models else None,
                                                   allow_custom_value=True, elem_id="topbar-model", scale=2))
        template = ui.add("topbar.template", gr.Dropdown(choices=[UNSET, *template_names()], value=UNSET,
                                                         elem_id="topbar-template", scale=1))
        method = ui.add("topbar.finetuning_type", gr.Dropdown(
            choices=method_choices(), value=MethodSection.model_fields["finetuning_type"].default,
            elem_id="topbar-finetuning-type", scale=1))
        folders = run_folders(ui.workdir)
        run_dir = ui.add("topbar.run_dir", gr.Dropdown(
            choices=folders, value=new_run_folder(models[0] if models else None), allow_custom_value=True,
            elem_id="topbar-run-dir", scale=2))
        refresh = ui.add("topbar.refresh", gr.Button(elem_id="topbar-refresh", scale=0, min_width=80))
    system = ui.add("topbar.system", gr.Textbox(lines=1, elem_id="topbar-system"))
    refresh.click(lambda: gr.update(choices=run_folders(ui.workdir)), outputs=run_dir)
    return TopBar(lang=lang, model=model, template=template, finetuning_type=method, run_dir=run_dir, system=system)
