"""`tunelab api --adapters`: a malformed list or one that clashes with the config stops before anything loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from tunelab.interfaces.cli import build_parser, main


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("API_HOST", "API_PORT", "API_KEY"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "c.yaml"
    path.write_text("model_name_or_path: smollm2-135m-instruct\n")
    return path


def test_flag_is_registered() -> None:
    args = build_parser().parse_args(["api", "c.yaml", "--adapters", "a=x,b=y"])
    assert args.adapters == "a=x,b=y"


@pytest.mark.parametrize("flags, message", [
    (["--adapters", "saves/sql"], "--adapters: 'saves/sql' is not name=path"),
    (["--adapters", "smollm2-135m-instruct=saves/sql"], "is the base model's id"),
    (["--adapters", "a=x", "adapter_name_or_path=saves/a"], "adapter_name_or_path (saves/a) and --adapters"),
    (["--adapters", "a=x", "stage=rm"], "a reward model (stage: rm) is served alone"),
])
def test_bad_adapters_exit_cleanly(config: Path, capsys: pytest.CaptureFixture[str], flags: list[str],
                                   message: str) -> None:
    assert main(["api", str(config), *flags]) != 0
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
