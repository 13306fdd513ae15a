"""Helpers of the synthesis tests: a config file written from a dict, seeds in a folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml


def write_config(folder: Path, base_url: str, **sections: object) -> Path:
    """A synthesis YAML in folder: fast retries against base_url, three seeds, n=2, alpaca output; sections
    replace (or, with None, remove) the defaults."""
    seeds = folder / "seeds.json"
    if not seeds.exists():
        seeds.write_text(json.dumps([{"product": "保温杯", "task": "问答"}, {"product": "跑鞋", "task": "分类"},
                                     {"product": "耳机", "task": "摘要"}], ensure_ascii=False), encoding="utf-8")
    config: dict[str, object] = {
        "endpoint": {"base_url": base_url, "model": "m", "timeout": 2, "backoff": 0.01, "concurrency": 4},
        "seeds": {"file": str(seeds)},
        "prompt": {"template": "为{{ product }}写一个{{ task }}任务，第{{ index }}个"},
        "generation": {"n": 2, "max_tokens": 64},
        "output": {"file": str(folder / "out" / "synth.json")},
    }
    for key, value in sections.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    path = folder / "synth.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary working folder (relative paths in configs start there)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path
