"""The Data tab: browse a folder's dataset_info.json, preview rows as the model sees them, length histogram,
validation, and convert + register an uploaded table (see data_view.py for what each button computes)."""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path
from typing import get_args

import gradio as gr

from tunelab.config.schema import DataSection, MethodSection
from tunelab.interfaces.webui import data_view
from tunelab.interfaces.webui.cli_capture import output_text
from tunelab.interfaces.webui.ui import UI

PNG_DIR = Path(tempfile.gettempdir()) / "tunelab-webui" / "data"


def stage_choices() -> list[str]:
    """The stages the schema accepts."""
    return list(get_args(MethodSection.model_fields["stage"].annotation))


def browse(dataset_dir: str, workdir: Path) -> tuple[list[list[str]], dict[str, object], str]:
    """The registry table, the dataset picker's choices and the message."""
    rows, names, message = data_view.registry_rows(dataset_dir, workdir)
    return rows, gr.update(choices=names), message


def form(ui: UI, model: str, template: str | None, system: str | None, stage: str, datasets: list[str] | None,
         dataset_dir: str, cutoff_len: float) -> data_view.DataForm:
    """The values every data command reads, from the top bar and the tab."""
    return data_view.DataForm(model or "", template, stage, list(datasets or []), dataset_dir, int(cutoff_len),
                              workdir=ui.workdir, system=system)


def build(ui: UI) -> None:
    """The Data tab's components and events (inside its gr.Tab)."""
    top = ui.top
    assert top is not None, "the top bar is built before the tabs"
    with gr.Row():
        dataset_dir = ui.add("data.dataset_dir", gr.Textbox(value="data", scale=3))
        browse_button = ui.add("data.browse", gr.Button(scale=1))
    registry = ui.add("data.registry", gr.Dataframe(headers=data_view.REGISTRY_HEADERS, interactive=False, wrap=True))
    message = ui.add("data.message", gr.Textbox(interactive=False, lines=2))
    with gr.Row():
        datasets = ui.add("data.datasets", gr.Dropdown(multiselect=True, choices=[], allow_custom_value=True))
        stage = ui.add("data.stage", gr.Dropdown(choices=stage_choices(), value="sft"))
        cutoff = ui.add("data.cutoff_len", gr.Number(value=DataSection.model_fields["cutoff_len"].default,
                                                      precision=0, minimum=1))
        rows = ui.add("data.rows", gr.Slider(minimum=1, maximum=20, step=1, value=3))
    with gr.Row():
        preview_button = ui.add("data.preview", gr.Button(variant="primary"))
        stats_button = ui.add("data.stats", gr.Button())
        validate_button = ui.add("data.validate", gr.Button())
    report = ui.add("data.report", gr.Textbox(interactive=False, lines=4))
    shown = ui.add("data.shown", gr.HTML())
    histogram = ui.add("data.histogram", gr.Image(type="filepath", interactive=False))
    inputs = [top.model, top.template, top.system, stage, datasets, dataset_dir, cutoff]

    browse_button.click(lambda folder: browse(folder, ui.workdir), [dataset_dir], [registry, datasets, message])

    def on_preview(model: str, template: str | None, system: str | None, stage_: str, names: list[str] | None,
                   folder: str, cutoff_len: float, count: float) -> tuple[str, str]:
        chosen = form(ui, model, template, system, stage_, names, folder, cutoff_len)
        html, lines = data_view.preview(chosen, int(count))
        return lines, html

    def on_stats(model: str, template: str | None, system: str | None, stage_: str, names: list[str] | None,
                 folder: str, cutoff_len: float) -> tuple[str, str | None]:
        chosen = form(ui, model, template, system, stage_, names, folder, cutoff_len)
        png, text = data_view.stats(chosen, PNG_DIR / f"lengths-{uuid.uuid4().hex[:8]}.png")
        return text, png

    def on_validate(model: str, template: str | None, system: str | None, stage_: str, names: list[str] | None,
                    folder: str, cutoff_len: float) -> str:
        return output_text(data_view.validate(form(ui, model, template, system, stage_, names, folder, cutoff_len)))

    preview_button.click(on_preview, inputs + [rows], [report, shown])
    stats_button.click(on_stats, inputs, [report, histogram])
    validate_button.click(on_validate, inputs, [report])
    build_convert(ui, dataset_dir)


def build_convert(ui: UI, dataset_dir: gr.Textbox) -> None:
    """The convert + register panel."""
    with gr.Accordion(open=False) as panel:
        ui.add("data.convert_panel", panel)
        upload = ui.add("data.upload", gr.File(file_types=[".xlsx", ".csv", ".json", ".jsonl"], type="filepath"))
        columns = ui.add("data.columns", gr.Textbox(interactive=False))
        with gr.Row():
            to = ui.add("data.to", gr.Radio(choices=["alpaca", "sharegpt"], value="alpaca"))
            sheet = ui.add("data.sheet", gr.Textbox())
        mapping = ui.add("data.mapping", gr.Textbox(placeholder="instruction=问题,output=答案"))
        with gr.Row():
            out_name = ui.add("data.out_name", gr.Textbox(placeholder="my_data.json"))
            register_as = ui.add("data.register_as", gr.Textbox())
            keep_empty = ui.add("data.keep_empty", gr.Checkbox(value=False))
        convert_button = ui.add("data.convert", gr.Button(variant="primary"))
        result = ui.add("data.convert_result", gr.Textbox(interactive=False, lines=4))

    upload.change(data_view.upload_columns, [upload, sheet], [columns])

    def on_convert(file: str | None, to_: str, mapping_: str, out: str, folder: str, sheet_: str, name: str,
                   keep: bool) -> str:
        if not file:
            return "tunelab: error: no file uploaded; upload an xlsx, csv, json or jsonl file first"
        done = data_view.convert(data_view.ConvertForm(file, to_, mapping_, out, folder, sheet_, name, keep,
                                                       ui.workdir))
        return output_text(done)

    convert_button.click(on_convert, [upload, to, mapping, out_name, dataset_dir, sheet, register_as, keep_empty],
                         [result])
