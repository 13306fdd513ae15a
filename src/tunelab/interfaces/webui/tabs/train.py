"""Train tab: the form generated from the config schema, YAML preview/save/load, start/abort/resume, live progress."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from tunelab.interfaces.webui import form
from tunelab.interfaces.webui.train_events import TrainEvents, dataset_names
from tunelab.interfaces.webui.ui import UI

POLL_S = 2.0
COLUMNS = 4  # fields per row


def make_component(field: form.FormField, datasets: list[str]) -> gr.components.Component:
    """The Gradio component of one form field, at the schema default."""
    value = form.to_ui(field, field.default)
    elem_id = f"train-key-{field.key}"
    if field.kind == "bool":
        return gr.Checkbox(value=value, elem_id=elem_id)
    if field.kind == "choice":
        return gr.Dropdown(choices=field.choice_labels(), value=value, elem_id=elem_id)
    if field.kind in ("integer", "number"):
        return gr.Number(value=value, precision=0 if field.kind == "integer" else None, elem_id=elem_id)
    if field.kind == "datasets":
        return gr.Dropdown(choices=datasets, value=value, multiselect=True, allow_custom_value=True, elem_id=elem_id)
    return gr.Textbox(value=value, lines=1, elem_id=elem_id)


def add_rows(ui: UI, fields: list[form.FormField], datasets: list[str],
             components: dict[str, gr.components.Component]) -> None:
    """Add fields COLUMNS to a row."""
    for start in range(0, len(fields), COLUMNS):
        with gr.Row():
            for field in fields[start:start + COLUMNS]:
                components[field.key] = ui.add_key(field.key, make_component(field, datasets))


def build_form(ui: UI) -> dict[str, gr.components.Component]:
    """Every non-top-bar key as a component: common ones in rows, the rest in one accordion per section."""
    datasets = dataset_names(str(form.fields_by_key()["dataset_dir"].default), ui.workdir)
    components: dict[str, gr.components.Component] = {}
    add_rows(ui, [field for field in form.common_fields() if field.key not in form.TOP_KEYS], datasets, components)
    for section, section_fields in form.section_keys().items():
        with gr.Accordion(section, open=False, elem_id=f"train-section-{section}"):
            add_rows(ui, section_fields, datasets, components)
    return components


@dataclass
class Controls:
    """The tab's buttons and outputs."""

    yaml_path: gr.Textbox
    preview: gr.Button
    save: gr.Button
    load: gr.Button
    start: gr.Button
    abort: gr.Button
    resume: gr.Button
    message: gr.Markdown
    command: gr.Textbox
    yaml_view: gr.Code
    status: gr.Markdown
    bar: gr.HTML
    plot: gr.LinePlot
    error: gr.Textbox
    log: gr.Textbox


def build_controls(ui: UI) -> Controls:
    """The buttons, the message line, the preview and the run monitor."""
    with gr.Row():
        yaml_path = ui.add("train.yaml_path", gr.Textbox(value="train.yaml", elem_id="train-yaml-path", scale=3))
        preview = ui.add("train.preview", gr.Button(elem_id="train-preview"))
        save = ui.add("train.save", gr.Button(elem_id="train-save"))
        load = ui.add("train.load", gr.Button(elem_id="train-load"))
    with gr.Row():
        start = ui.add("train.start", gr.Button(variant="primary", elem_id="train-start"))
        abort = ui.add("train.abort", gr.Button(variant="stop", elem_id="train-abort"))
        resume = ui.add("train.resume", gr.Button(elem_id="train-resume"))
    return Controls(
        yaml_path=yaml_path, preview=preview, save=save, load=load, start=start, abort=abort, resume=resume,
        message=gr.Markdown(elem_id="train-message"),
        command=ui.add("train.command", gr.Textbox(interactive=False, elem_id="train-command")),
        yaml_view=ui.add("train.yaml", gr.Code(language="yaml", interactive=False, elem_id="train-yaml")),
        status=gr.Markdown(elem_id="train-status"), bar=gr.HTML(elem_id="train-progress"),
        plot=ui.add("train.loss_plot", gr.LinePlot(x="step", y="loss", color="curve", elem_id="train-loss-plot")),
        error=ui.add("train.error", gr.Textbox(lines=6, interactive=False, elem_id="train-error")),
        log=ui.add("train.log", gr.Textbox(lines=12, max_lines=12, interactive=False, autoscroll=True,
                                           elem_id="train-log")))


def build(ui: UI) -> None:
    """The Train tab, inside its gr.Tab."""
    assert ui.top is not None, "the top bar is built before the tabs"
    top = ui.top
    components = build_form(ui)
    inputs = [getattr(top, attribute) for attribute in form.TOP_KEYS.values()] + list(components.values())
    events = TrainEvents(ui, list(form.TOP_KEYS) + list(components))
    c = build_controls(ui)
    c.preview.click(events.preview, inputs=inputs, outputs=[c.message, c.command, c.yaml_view])
    c.start.click(events.start, inputs=[top.lang, *inputs], outputs=c.message)
    c.resume.click(events.resume, inputs=[top.lang, top.run_dir], outputs=c.message)
    c.abort.click(events.abort, inputs=top.lang, outputs=c.message)
    c.save.click(events.save, inputs=[top.lang, c.yaml_path, *inputs], outputs=c.message)
    c.load.click(events.load, inputs=c.yaml_path, outputs=[c.message, *inputs])
    components["dataset_dir"].change(events.datasets, inputs=components["dataset_dir"],
                                     outputs=[components["dataset"], components["eval_dataset"]])
    gr.Timer(POLL_S).tick(events.tick, inputs=[top.lang, top.run_dir],
                          outputs=[c.status, c.bar, c.plot, c.log, c.error], show_progress="hidden")
