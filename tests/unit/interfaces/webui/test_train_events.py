"""The Train tab's handlers without a browser: preview, one run at a time, the run monitor."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from tunelab.interfaces.webui import form
from tunelab.interfaces.webui.jobs import alive
from tunelab.interfaces.webui.train_events import TrainEvents
from tunelab.interfaces.webui.ui import UI

REPO = Path(__file__).resolve().parents[4]


def events_for(tmp_path: Path) -> TrainEvents:
    shutil.copytree(REPO / "examples" / "data", tmp_path / "data")
    keys = list(form.TOP_KEYS) + [f.key for f in form.fields() if f.key not in form.TOP_KEYS]
    return TrainEvents(UI(lang="en", workdir=tmp_path), keys)


def values(events: TrainEvents, **changes: object) -> tuple[form.UiValue, ...]:
    by_key = form.fields_by_key()
    current = {key: form.to_ui(by_key[key], by_key[key].default) for key in events.keys}
    current.update(changes)
    return tuple(current[key] for key in events.keys)


def test_preview_shows_the_command_or_every_problem(tmp_path: Path) -> None:
    events = events_for(tmp_path)
    message, command, text = events.preview(*values(events, model_name_or_path="smollm2-135m-instruct",
                                                    output_dir="saves/a", dataset=["identity"]))
    assert (message, command) == ("", "tunelab train saves/a/webui_train.yaml") and "dataset: identity" in text
    message, command, _ = events.preview(*values(events, model_name_or_path="smollm2-135m-instruct",
                                                 output_dir="../outside", dataset=["identity"], lora_rank=0))
    assert command == "" and "output_dir: ../outside leads outside" in message and "lora_rank" in message


def test_a_second_start_names_the_active_run(tmp_path: Path) -> None:
    events = events_for(tmp_path)
    running = events.ui.jobs.start(tmp_path / "saves" / "busy", [sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        message = events.start("en", *values(events, model_name_or_path="smollm2-135m-instruct",
                                             output_dir="saves/b", dataset=["identity"]))
        assert "a run is already active" in message and "saves/busy" in message
        assert not (tmp_path / "saves" / "b" / "webui_train.yaml").exists() and alive(running)
    finally:
        events.ui.jobs.abort(running)


def test_the_monitor_shows_a_finished_run(tmp_path: Path) -> None:
    events = events_for(tmp_path)
    run = tmp_path / "saves" / "done"
    run.mkdir(parents=True)
    (run / "run.jsonl").write_text("".join(json.dumps({"step": s, "max_steps": 2, "loss": 2.0 / s}) + "\n"
                                           for s in (1, 2)))
    (run / "run_summary.json").write_text("{}")
    status, bar, frame, _, error = events.tick("zh", "saves/done")
    assert status == "**已完成** · 步 2/2 · `saves/done`" and 'value="2" max="2"' in bar and error == ""
    assert list(frame["loss"]) == [2.0, 1.0]
    assert "leads outside" in events.tick("en", "../x")[0]


def test_loading_a_yaml_fills_the_top_bar_and_the_form(tmp_path: Path) -> None:
    events = events_for(tmp_path)
    (tmp_path / "run.yaml").write_text("model_name_or_path: smollm2-135m-instruct\noutput_dir: saves/y\n"
                                       "learning_rate: 0.002\n", encoding="utf-8")
    message, *updates = events.load("run.yaml")
    by_key = dict(zip(events.keys, updates, strict=True))
    assert message == "" and by_key["template"]["value"] == form.UNSET and by_key["output_dir"]["value"] == "saves/y"
    assert by_key["learning_rate"]["value"] == 0.002 and by_key["lora_rank"]["value"] == 8
    message, *_ = events.load("../elsewhere.yaml")
    assert "leads outside the working folder" in message
