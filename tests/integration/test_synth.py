"""`tunelab data synth` with the embedded SmolLM2 behind `tunelab api` as the generator: examples/synth.yaml (its
endpoint and paths pointed at the test's server and folder) writes, registers and reports a dataset that
`tunelab data validate` accepts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tunelab.data.registry import sha1_of

from .clirun import QUICKSTART, REPO, tunelab
from .conftest import API_KEY


def test_synth_against_the_api_server(api_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = yaml.safe_load((REPO / "examples" / "synth.yaml").read_text(encoding="utf-8"))
    # one batch of all six requests; a long timeout, as the server may be slow on a busy CPU (a timed-out request
    # keeps the server busy while its retry waits in line)
    config["endpoint"].update(base_url=f"{api_server}/v1", api_key_env="SYNTH_TEST_KEY", concurrency=6, timeout=400,
                              retries=1)
    config["generation"]["max_tokens"] = 24
    config["seeds"]["limit"] = 3
    config["output"].update(file=str(tmp_path / "shopping.json"), dataset_dir=str(tmp_path))
    path = tmp_path / "synth.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("SYNTH_TEST_KEY", API_KEY)

    result = tunelab("data", "synth", str(path), timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "accepted 6/6 ids" in result.stdout and "synth_shopping: added in" in result.stdout

    rows = json.loads((tmp_path / "shopping.json").read_text(encoding="utf-8"))
    report = json.loads((tmp_path / "shopping.report.json").read_text(encoding="utf-8"))
    log = (tmp_path / "shopping.synth.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(log) == report["requests"] - report["retries"] == 6
    assert len(rows) == report["written"] == 6 - report["duplicates"]
    assert report["prompt_tokens"] > 0 and report["completion_tokens"] > 0 and report["missing"] == 0
    assert all(row["output"].strip() and row["instruction"].startswith("Write one") for row in rows)
    assert {row["seed"]["task"] for row in rows} == {"question answering", "product classification",
                                                    "multiple-choice question"}
    entry = json.loads((tmp_path / "dataset_info.json").read_text(encoding="utf-8"))["synth_shopping"]
    assert entry["file_sha1"] == sha1_of(tmp_path / "shopping.json")

    again = tunelab("data", "synth", str(path), timeout=120)  # complete: nothing asked, the same file rebuilt
    assert again.returncode == 0 and "requests 0" in again.stdout and "asked this run: 0" in again.stdout

    check = tunelab("data", "validate", QUICKSTART, "dataset=synth_shopping", f"dataset_dir={tmp_path}",
                    "val_size=0")
    assert check.returncode == 0, check.stdout + check.stderr[-3000:]
