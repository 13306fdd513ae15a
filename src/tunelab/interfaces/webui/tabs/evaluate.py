"""The Evaluate & Predict tab: eval tasks from a YAML or the form, `tunelab eval --compare` (base vs the run) as a
detached subprocess with its output live (it runs on when the tab is closed), then the CLI's table and charts and a
row browser (eval_job.py computes them)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import gradio as gr

from tunelab.config.errors import ConfigError
from tunelab.interfaces.webui import eval_job
from tunelab.interfaces.webui.command_run import run_streamed
from tunelab.interfaces.webui.cli_capture import output_text
from tunelab.interfaces.webui.strings import Lang, label
from tunelab.interfaces.webui.ui import UI

# table, bar chart, other figures, row-task picker
Results = tuple[str, str | None, dict[str, object], dict[str, object]]
Report = tuple[str, str, str | None, dict[str, object], dict[str, object]]  # the status line, then Results


def add_task(tasks: str, name: str, kind: str, dataset: str | None, metrics: str | None,
             extractor: str | None) -> tuple[str, str]:
    """The tasks box with the form's task added, and a message."""
    try:
        entry = eval_job.task_entry(name, kind, dataset, metrics, extractor)
        return eval_job.add_task(tasks, entry), f"added {entry['name']}"
    except ConfigError as exc:
        return tasks, f"tunelab: {exc.render()}"


def results(folder: Path) -> Results:
    """What the CLI left in the report folder: the table, the bar chart, the kinds' other figures and the tasks
    with rows."""
    tasks = eval_job.row_tasks(folder)
    charts = eval_job.figures(folder)
    return (eval_job.results_markdown(folder), charts[0] if charts else None,
            gr.update(value=charts[1:], visible=len(charts) > 1),
            gr.update(choices=tasks, value=tasks[0] if tasks else None))


def show_report(output_dir: str, workdir: Path) -> Report:
    """The status line (the folder, or why it is refused) and the report already in a report folder."""
    try:
        folder = eval_job.report_folder(output_dir, workdir)
    except ConfigError as exc:
        return f"tunelab: {exc.render()}", "", None, gr.update(value=[], visible=False), gr.update(choices=[],
                                                                                                  value=None)
    return (str(folder), *results(folder))


def browse_rows(output_dir: str, workdir: Path, task: str | None, changed_only: bool) -> dict[str, object]:
    """The row browser's table for a task of the report folder (empty when the folder is refused)."""
    try:
        folder: Path | None = eval_job.report_folder(output_dir, workdir)
    except ConfigError:  # show_report says why
        folder = None
    headers, rows = eval_job.row_table(folder, task, changed_only) if task and folder else ([], [])
    widths = column_widths((len(headers) - 3) // 2) if headers else None
    return gr.update(value=rows or None, headers=headers or None, column_widths=widths)


def column_widths(models: int) -> list[str]:
    """id and the changed mark narrow, the reference a fifth, each model's answer and outcome an equal share of the
    rest."""
    answer = max(64 // max(models, 1) - 9, 10)
    return ["6%", "4%", "22%"] + [f"{answer}%", "9%"] * models


Progress = tuple[str, str, str, str | None, object, object]  # status, log, then what `results` shows


def run_eval(lang: Lang, form: eval_job.EvalForm, compare: bool) -> Iterator[Progress]:
    """Check and write the config, run `tunelab eval`, stream its output, then show its report (or, when it
    failed, the status and the output only)."""
    config, checked = eval_job.write_config(form)
    if config is None:
        yield label("evaluate.failed", lang), output_text(checked), "", None, [], gr.update(choices=[], value=None)
        return
    running = label("evaluate.running", lang)
    log_file = config.parent / eval_job.LOG_NAME
    for log in run_streamed(eval_job.eval_argv(config, compare), log_file, form.workdir):
        if log.code is None:
            yield running, log.text(), "", None, [], gr.update()
        elif log.code == 0:
            yield (f"{label('evaluate.done', lang)}: {form.output_dir}", log.text(), *results(form.report_dir()))
        else:
            yield label("evaluate.failed", lang), log.text(), "", None, [], gr.update(choices=[], value=None)


def build(ui: UI) -> None:
    """The Evaluate & Predict tab's components and events (inside its gr.Tab)."""
    top = ui.top
    assert top is not None, "the top bar is built before the tabs"
    with gr.Row():
        dataset_dir = ui.add("evaluate.dataset_dir", gr.Textbox(value="data"))
        output_dir = ui.add("evaluate.output_dir", gr.Textbox(value="saves/eval/webui"))
        max_new = ui.add("evaluate.max_new_tokens", gr.Number(value=128, precision=0, minimum=1))
        compare = ui.add("evaluate.compare", gr.Checkbox(value=True))
    connect_task_form = build_task_form(ui)
    tasks = ui.add("evaluate.tasks", gr.Code(language="yaml", interactive=True))
    with gr.Row():
        start = ui.add("evaluate.start", gr.Button(variant="primary", elem_id="evaluate-start"))
        show = ui.add("evaluate.show", gr.Button())
    status = ui.add("evaluate.status", gr.Textbox(interactive=False, elem_id="evaluate-status"))
    log = ui.add("evaluate.log", gr.Textbox(interactive=False, lines=8, max_lines=20, autoscroll=True))
    table = gr.Markdown()  # the CLI's eval_results.md; not registered (a relabel would replace it)
    chart = ui.add("evaluate.chart", gr.Image(type="filepath", interactive=False))
    charts = ui.add("evaluate.charts", gr.Gallery(columns=2, visible=False))
    with gr.Row():
        row_task = ui.add("evaluate.row_task", gr.Dropdown(choices=[]))
        changed = ui.add("evaluate.changed_only", gr.Checkbox(value=False))
    rows = ui.add("evaluate.rows", gr.Dataframe(interactive=False, wrap=True))
    connect_task_form(tasks, status)

    def on_start(lang: Lang, model: str, template: str | None, method: str | None, run_dir: str | None,
                 system: str | None, folder: str, out: str, tasks_text: str, new: float,
                 both: bool) -> Iterator[Progress]:
        form = eval_job.EvalForm(model, template, method, run_dir, folder, out, tasks_text, int(new or 1),
                                 workdir=ui.workdir, system=system)
        yield from run_eval(lang, form, both)

    start.click(on_start, [top.lang, top.model, top.template, top.finetuning_type, top.run_dir, top.system,
                           dataset_dir, output_dir, tasks, max_new, compare],
                [status, log, table, chart, charts, row_task])
    show.click(lambda out: show_report(out, ui.workdir), [output_dir], [status, table, chart, charts, row_task])
    for trigger in (row_task, changed):
        trigger.change(lambda out, task, only: browse_rows(out, ui.workdir, task, only),
                       [output_dir, row_task, changed], [rows])


def build_task_form(ui: UI) -> Callable[[gr.Code, gr.Textbox], None]:
    """Tasks from a YAML file or built in a form; returns what connects its buttons to the tasks box and the status
    line (created after it)."""
    with gr.Accordion(open=True) as form_panel:
        ui.add("evaluate.task_form", form_panel)
        with gr.Row():
            yaml_path = ui.add("evaluate.yaml_path", gr.Textbox(scale=3))
            load_yaml = ui.add("evaluate.load_yaml", gr.Button(scale=1))
        with gr.Row():
            name = ui.add("evaluate.task_name", gr.Textbox())
            kind = ui.add("evaluate.kind", gr.Dropdown(choices=eval_job.kind_names(), value="generation"))
            dataset = ui.add("evaluate.dataset", gr.Textbox())
            metrics = ui.add("evaluate.metrics", gr.Textbox(placeholder="bleu-4,rouge-l"))
            extractor = ui.add("evaluate.extractor", gr.Textbox())
        add = ui.add("evaluate.add_task", gr.Button())

    def on_load_yaml(path: str) -> tuple[str, str]:
        text, done = eval_job.tasks_from_file(path, ui.workdir)
        return text, output_text(done) if not done.ok else f"{path}: eval_tasks loaded"

    def connect(tasks: gr.Code, status: gr.Textbox) -> None:
        add.click(add_task, [tasks, name, kind, dataset, metrics, extractor], [tasks, status])
        load_yaml.click(on_load_yaml, [yaml_path], [tasks, status])

    return connect
