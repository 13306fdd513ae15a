"""The Export tab: the export keys as a form generated from ExportSection, `tunelab export` as a detached subprocess
with its output live (it runs on when the tab is closed), and the result's location and files (export_job.py
computes them)."""

from __future__ import annotations

from collections.abc import Iterator

import gradio as gr

from tunelab.interfaces.webui import export_job
from tunelab.interfaces.webui.command_run import run_streamed
from tunelab.interfaces.webui.cli_capture import output_text
from tunelab.interfaces.webui.strings import Lang, label, table
from tunelab.interfaces.webui.ui import UI


def component(spec: export_job.FieldSpec) -> gr.components.Component:
    """The widget of one export key (elem_id export-KEY, for browser tests)."""
    elem_id = f"export-{spec.key}"
    if spec.widget == "dropdown":
        return gr.Dropdown(choices=list(spec.choices), value=spec.default, elem_id=elem_id)
    if spec.widget == "checkbox":
        return gr.Checkbox(value=bool(spec.default), elem_id=elem_id)
    if spec.widget == "number":
        return gr.Number(value=spec.default, precision=0 if spec.integer else None, elem_id=elem_id)
    return gr.Textbox(value=str(spec.default), elem_id=elem_id)


def add_field(ui: UI, spec: export_job.FieldSpec) -> gr.components.Component:
    """The widget of an export key, labelled from strings.yaml's export.KEY, or from the config schema (the key's
    name and description) for a key added to ExportSection without one."""
    key = f"export.{spec.key}"
    return ui.add(key, component(spec)) if key in table() else ui.add_key(spec.key, component(spec))


def run_export(lang: Lang, form: export_job.ExportForm) -> Iterator[tuple[str, str, str]]:
    """Check and write the config, run `tunelab export`, stream its output, then say where the result is."""
    config, keys, checked = export_job.write_config(form)
    if config is None:
        yield label("export.failed", lang), output_text(checked), ""
        return
    folder = form.export_folder()  # checked by write_config
    log_file = config.parent / export_job.LOG_NAME
    for log in run_streamed(export_job.export_argv(config, keys), log_file, form.workdir):
        if log.code is None:
            yield label("export.running", lang), log.text(), ""
        elif log.code == 0 and folder is not None:
            yield f"{label('export.done', lang)}: {folder}", log.text(), export_job.result_files(folder)
        else:
            yield label("export.failed", lang), log.text(), ""


def build(ui: UI) -> None:
    """The Export tab's components and events (inside its gr.Tab)."""
    top = ui.top
    assert top is not None, "the top bar is built before the tabs"
    fields: dict[str, gr.components.Component] = {}
    specs = export_job.field_specs()
    with gr.Row():
        for spec in specs[:4]:
            fields[spec.key] = add_field(ui, spec)
    with gr.Accordion(open=False) as more:
        ui.add("export.more", more)
        with gr.Row():
            for spec in specs[4:]:
                if spec.widget != "checkbox":
                    fields[spec.key] = add_field(ui, spec)
        with gr.Row():  # the switches on a line of their own, where their labels fit
            for spec in specs[4:]:
                if spec.widget == "checkbox":
                    fields[spec.key] = add_field(ui, spec)
            fields["overwrite_output_dir"] = ui.add("export.overwrite_output_dir", gr.Checkbox(value=False))
    start = ui.add("export.start", gr.Button(variant="primary", elem_id="export-start"))
    status = ui.add("export.status", gr.Textbox(interactive=False, elem_id="export-status"))
    log = ui.add("export.log", gr.Textbox(interactive=False, lines=8, max_lines=20, autoscroll=True))
    files = ui.add("export.files", gr.Textbox(interactive=False, lines=4))
    keys = list(fields)

    def on_start(lang: Lang, model: str, template: str | None, method: str | None, run_dir: str | None,
                 system: str | None, *values: object) -> Iterator[tuple[str, str, str]]:
        form = export_job.ExportForm(model, template, method, run_dir, dict(zip(keys, values)), workdir=ui.workdir,
                                     system=system)
        yield from run_export(lang, form)

    top_inputs = [top.lang, top.model, top.template, top.finetuning_type, top.run_dir, top.system]
    start.click(on_start, top_inputs + list(fields.values()), [status, log, files])
