"""The Evaluate & Predict tab's logic: tasks from the form or a YAML, the eval config checked as `tunelab eval`
checks it, the command as an argument list, and the report read back (table, charts, rows side by side)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from tests.unit.interfaces.webui.tab_helpers import blocks_with
from tunelab.config.errors import ConfigError
from tunelab.eval.report import write_report
from tunelab.eval.results import TaskScore
from tunelab.interfaces.webui import eval_job
from tunelab.interfaces.webui.command_run import shown_command
from tunelab.interfaces.webui.strings import LANGS, entry
from tunelab.interfaces.webui.tabs import evaluate as evaluate_tab


def test_tasks_from_the_form() -> None:
    first = eval_job.task_entry("", "generation", "identity", "bleu-4, rouge-l", "")
    assert first == {"name": "identity", "type": "generation", "dataset": "identity", "metrics": ["bleu-4", "rouge-l"]}
    box = eval_job.add_task("", first)
    regex = eval_job.task_entry("q", "choice", "quiz", "", '{"name": "regex", "pattern": "(?P<answer>[A-D])"}')
    box = eval_job.add_task(box, regex)
    box = eval_job.add_task(box, {**first, "metrics": ["rouge-1"]})  # same name: replaced, moved last
    assert [t["name"] for t in yaml.safe_load(box)] == ["q", "identity"]
    assert yaml.safe_load(box)[0]["extractor"] == {"name": "regex", "pattern": "(?P<answer>[A-D])"}


def test_bad_task_text_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="extractor: not valid JSON"):
        eval_job.task_entry("q", "choice", "quiz", "", "{bad")
    with pytest.raises(ConfigError, match="must be a YAML list"):
        eval_job.parse_tasks("name: x")
    assert evaluate_tab.add_task("", "q", "choice", "quiz", "", "{bad")[1].startswith("tunelab: the config has 1")


def test_tasks_from_a_yaml_file(tmp_path: Path) -> None:
    config = tmp_path / "eval.yaml"
    config.write_text("model_name_or_path: m\neval_tasks:\n  - {name: a, type: generation, dataset: d}\n")
    text, done = eval_job.tasks_from_file("eval.yaml", tmp_path)
    assert done.ok and yaml.safe_load(text) == [{"name": "a", "type": "generation", "dataset": "d"}]
    config.write_text("model_name_or_path: m\n")
    text, done = eval_job.tasks_from_file(str(config), tmp_path)
    assert text == "" and "the file lists no eval_tasks" in done.err
    text, done = eval_job.tasks_from_file(str(tmp_path / "none.yaml"), tmp_path)
    assert f"{tmp_path / 'none.yaml'}: no such file" in done.err


def form(run: Path, out: Path, tasks: str) -> eval_job.EvalForm:
    """An eval form over a run folder (its dataset folder `data` inside the run's parent, the working folder)."""
    return eval_job.EvalForm("m", None, "lora", str(run), "data", str(out), tasks, 16, workdir=run.parent)


def test_base_vs_the_run_adapter_or_its_whole_model(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (tmp_path / "data").mkdir()
    keys = form(run, tmp_path / "out", "").keys()
    assert keys["eval_models"] == [{"name": "base"}, {"name": "fine-tuned", "model_name_or_path": str(run)}]
    (run / "adapter_config.json").write_text("{}")
    keys = form(run, tmp_path / "out", "").keys()
    assert keys["adapter_name_or_path"] == str(run) and "eval_models" not in keys
    assert keys["dataset_dir"] == str(tmp_path.resolve() / "data")
    with pytest.raises(ConfigError, match="no run folder chosen"):
        eval_job.EvalForm("m", None, "lora", "", "data", "o", "", 8, workdir=tmp_path).keys()


def test_the_folders_follow_the_path_rule_and_are_reported_together(tmp_path: Path) -> None:
    work = tmp_path / "work"
    (work / "run").mkdir(parents=True)
    (tmp_path / "elsewhere.yaml").write_text("eval_tasks: [{name: a, type: generation, dataset: d}]\n")
    bad = eval_job.EvalForm("m", None, "lora", "run", "../data", "../../report", "", 8, workdir=work)
    with pytest.raises(ConfigError) as caught:
        bad.keys()
    assert [str(p) for p in caught.value.problems] == [
        f"dataset_dir: ../data leads outside the working folder {work.resolve()}; give a path inside it, or an "
        "absolute path",
        f"output_dir: ../../report leads outside the working folder {work.resolve()}; give a path inside it, or an "
        "absolute path"]
    path, done = eval_job.write_config(bad)
    assert path is None and done.err.startswith("tunelab: the config has 2 problems\n  dataset_dir: ../data leads")
    assert not (tmp_path / "report").exists()
    missing = eval_job.EvalForm("m", None, "lora", "run", "data", "report", "", 8, workdir=work)
    with pytest.raises(ConfigError, match="dataset_dir: data does not exist"):
        missing.keys()
    text, done = eval_job.tasks_from_file("../elsewhere.yaml", work)
    assert text == "" and done.err.startswith("tunelab: the config has 1 problem\n  tasks YAML file: "
                                              "../elsewhere.yaml leads outside the working folder")
    assert eval_job.tasks_from_file(str(tmp_path / "elsewhere.yaml"), work)[1].ok  # absolute: taken as typed
    status, *shown = evaluate_tab.show_report("../../report", work)
    assert status.startswith("tunelab: the config has 1 problem\n  output_dir: ../../report leads outside")
    assert shown[0] == "" and shown[3]["choices"] == []
    assert evaluate_tab.browse_rows("../../report", work, "quiz", False)["value"] is None


def test_the_config_is_written_and_checked_as_tunelab_eval_checks_it(tmp_path: Path, data_dir: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    data_dir.mkdir()
    good = eval_job.EvalForm("m", None, "lora", str(run), str(data_dir), str(tmp_path / "out"),
                             "- {name: a, type: generation, dataset: demo}\n", 16)
    path, done = eval_job.write_config(good)
    assert done.ok, done.text()
    assert path == tmp_path / "out" / eval_job.CONFIG_NAME
    assert yaml.safe_load(path.read_text())["eval_tasks"] == [{"name": "a", "type": "generation", "dataset": "demo"}]
    system = eval_job.EvalForm("m", None, "lora", str(run), str(data_dir), str(tmp_path / "sys"),
                               "- {name: a, type: generation, dataset: demo}\n", 16, system="Answer briefly.")
    path, done = eval_job.write_config(system)
    assert done.ok, done.text()
    assert yaml.safe_load(path.read_text())["default_system"] == "Answer briefly."  # the top bar's system prompt
    assert "default_system" not in good.keys()
    bad = eval_job.EvalForm("m", None, "lora", str(run), str(data_dir), str(tmp_path / "out2"),
                            "- {name: a, type: nokind}\n", 16)
    path, done = eval_job.write_config(bad)
    assert path is None and done.code == 2
    assert "eval_tasks[0].type: input should be 'generation'" in done.err


def test_the_command_is_an_argument_list(tmp_path: Path) -> None:
    argv = eval_job.eval_argv(tmp_path / "a b.yaml")
    assert argv == [sys.executable, "-u", "-m", "tunelab", "eval", str(tmp_path / "a b.yaml"), "--compare"]
    assert shown_command(argv) == f"tunelab eval '{tmp_path / 'a b.yaml'}' --compare"


def scores(model: str, answers: list[str], correct: list[bool]) -> TaskScore:
    """A task score as eval/run.py makes one: a row per answer."""
    rows = [{"id": str(i), "label": "yes", "predict": a, "extracted": a, "correct": c}
            for i, (a, c) in enumerate(zip(answers, correct))]
    return TaskScore("quiz", "classification", {"accuracy": 100.0 * sum(correct) / len(correct)}, len(rows),
                     rows=rows)


def test_the_report_is_read_back_with_changed_rows(tmp_path: Path) -> None:
    from tunelab.config.eval_tasks import task_spec

    import tunelab.eval  # noqa: F401 - registers the task kinds

    results = {"base": {"quiz": scores("base", ["no", "yes"], [False, True])},
               "fine-tuned": {"quiz": scores("fine-tuned", ["yes", "yes"], [True, True])}}
    write_report(tmp_path, results, [task_spec(name="quiz", type="classification", dataset="d", labels=["yes", "no"])])
    assert "| fine-tuned | 100.00 |" in eval_job.results_markdown(tmp_path)
    assert eval_job.figures(tmp_path)[0].endswith("eval_results.png")
    assert eval_job.row_tasks(tmp_path) == ["quiz"]
    headers, rows = eval_job.row_table(tmp_path, "quiz", changed_only=False)
    assert headers == ["id", "changed", "label", "base answer", "base outcome", "fine-tuned answer",
                       "fine-tuned outcome"]
    assert rows == [["0", "●", "yes", "no", "✗", "yes", "✓"], ["1", "", "yes", "yes", "✓", "yes", "✓"]]
    assert eval_job.row_table(tmp_path, "quiz", changed_only=True)[1] == rows[:1]
    assert eval_job.row_table(tmp_path / "none", "quiz", changed_only=False) == (["id", "changed", "label"], [])
    status, table, chart, more, picker = evaluate_tab.show_report(tmp_path.name, tmp_path.parent)
    assert status == str(tmp_path.resolve()) and "| fine-tuned | 100.00 |" in table
    assert chart == str(tmp_path.resolve() / "eval_results.png") and more["visible"] is False
    assert picker["value"] == "quiz"
    shown = evaluate_tab.browse_rows(str(tmp_path), tmp_path, "quiz", True)
    assert shown["value"] == rows[:1] and len(shown["column_widths"]) == len(headers)


def test_the_tab_builds_with_every_string_in_both_languages() -> None:
    _, ui = blocks_with(evaluate_tab.build)
    keys = [key for key, _ in ui.registered] + ["evaluate.running", "evaluate.done", "evaluate.failed"]
    assert all(key.startswith("evaluate.") for key in keys)
    assert all(entry(key, lang)["label"] for key in keys for lang in LANGS)
