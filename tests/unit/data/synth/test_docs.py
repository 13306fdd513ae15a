"""The synthesis configs users copy load: examples/synth.yaml and the hosted-model example in docs/synthesis.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tunelab.data.tools.synth.config import load_synth_config
from tunelab.data.tools.synth.seeds import Prompter, load_seeds

REPO = Path(__file__).resolve().parents[4]


def test_the_example_loads_and_its_template_fits_its_seeds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    config = load_synth_config(REPO / "examples" / "synth.yaml")
    seeds, where = load_seeds(config.seeds)
    assert len(seeds) == 4
    request = Prompter(config.prompt).render(seeds[0], 1, where)
    assert request.messages[0]["role"] == "system" and "insulated stainless steel" in request.prompt


def test_the_hosted_example_in_the_docs_loads(tmp_path: Path) -> None:
    text = (REPO / "docs" / "synthesis.md").read_text(encoding="utf-8")
    blocks = [block for block in re.findall(r"```yaml\n(.*?)```", text, re.DOTALL) if block.startswith("endpoint:")]
    assert len(blocks) == 1
    path = tmp_path / "hosted.yaml"
    path.write_text(blocks[0], encoding="utf-8")
    config = load_synth_config(path)
    assert config.reply.mode == "pairs" and config.endpoint.api_key_env == "DEEPSEEK_API_KEY"
    assert "商品名" in Prompter(config.prompt).names()
