"""Every strings.yaml key the UI uses exists in English and Chinese, and a language switch relabels everything."""

from __future__ import annotations

import re
from pathlib import Path

from tests.unit.interfaces.webui.tab_helpers import blocks_with
from tunelab.config.schema import describe_key
from tunelab.interfaces.webui import strings
from tunelab.interfaces.webui.app import TAB_MODULES, build_app
from tunelab.interfaces.webui.tabs import train as train_tab
from tunelab.interfaces.webui.ui import CONFIG_KEY, key_texts

SOURCES = Path(strings.__file__).parent
OWN_PREFIXES = ("app.", "topbar.", "train.", "runs.")


def test_every_entry_has_english_and_chinese() -> None:
    for key, entry in strings.table().items():
        assert set(entry) == set(strings.LANGS), key
        assert all(entry[lang].get("label") for lang in strings.LANGS), key


def test_every_key_the_code_names_exists() -> None:
    named = set()
    for path in SOURCES.rglob("*.py"):
        named |= set(re.findall(r"""["']((?:app|topbar|train|runs)\.[a-z_.]+)["']""", path.read_text()))
    named |= {f"app.tab.{name}" for name, _ in TAB_MODULES}
    named |= {f"train.state.{s}" for s in ("running", "finished", "aborted", "failed", "idle", "unknown")}
    missing = sorted(key for key in named if key not in strings.table() and not key.endswith("."))
    assert missing == []


def test_switching_language_relabels_every_registered_component(tmp_path: Path) -> None:
    _, ui = build_app("en", tmp_path)
    keys = [key for key, _ in ui.registered]
    assert "topbar.lang" in keys and "app.tab.train" in keys and "config:learning_rate" in keys
    updates = ui.relabel("zh")
    assert len(updates) == len(ui.components())
    by_key = dict(zip(keys, updates, strict=True))
    assert by_key["app.tab.train"]["label"] == "训练"
    assert by_key["train.start"]["value"] == "开始训练"
    assert by_key["config:learning_rate"] == {"__type__": "update", "label": "learning_rate", "info": "峰值学习率"}
    english = dict(zip(keys, ui.relabel("en"), strict=True))
    assert english["config:learning_rate"]["info"] == "Peak learning rate."


def test_every_key_the_train_form_shows_has_chinese_help() -> None:
    _, ui = blocks_with(train_tab.build)
    shown = [key.removeprefix(CONFIG_KEY) for key, _ in ui.registered if key.startswith(CONFIG_KEY)]
    assert len(shown) > 100 and "learning_rate" in shown and "grpo_epsilon" in shown
    english = [key for key in shown if key_texts(key, "zh")[1] == describe_key(key)]
    assert english == []  # each falls back to the English description otherwise
    assert all(re.search(r"[\u4e00-\u9fff]", key_texts(key, "zh")[1] or "") for key in shown)
    assert all(key_texts(key, "zh")[0] == key for key in shown)  # the label is the key's name in both languages
