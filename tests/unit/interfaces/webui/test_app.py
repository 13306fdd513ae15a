"""`tunelab webui`: the settings from flags and GRADIO_* variables, the exposure warning, the tab table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tunelab.config.errors import ConfigError
from tunelab.interfaces import cli, webui
from tunelab.interfaces.webui.app import TAB_MODULES, exposure_warning, missing_tabs, settings


def test_defaults_bind_loopback_on_7860() -> None:
    chosen = settings(None, None, None, False, "en", {})
    assert (chosen.host, chosen.port, chosen.auth, chosen.share) == ("127.0.0.1", 7860, None, False)
    assert exposure_warning(chosen) is None


def test_gradio_variables_apply_and_flags_win() -> None:
    env = {"host": "0.0.0.0", "port": "8080", "share": "true"}
    chosen = settings(None, None, None, False, "zh", env)
    assert (chosen.host, chosen.port, chosen.share, chosen.lang) == ("0.0.0.0", 8080, True, "zh")
    flagged = settings("127.0.0.1", 9000, "u:p", False, "en", env)
    assert (flagged.host, flagged.port, flagged.auth) == ("127.0.0.1", 9000, ("u", "p"))


def test_open_host_without_auth_warns() -> None:
    open_host = settings("0.0.0.0", None, None, False, "en", {})
    assert "0.0.0.0 without --auth" in exposure_warning(open_host)
    assert exposure_warning(settings("0.0.0.0", None, "a:b", False, "en", {})) is None
    assert "public share link" in exposure_warning(settings(None, None, None, True, "en", {}))


def test_bad_values_are_config_errors_naming_the_flag() -> None:
    with pytest.raises(ConfigError) as caught:
        settings(None, 70000, "nopassword", False, "fr", {})
    rendered = caught.value.render()
    assert "--port" in rendered and "--auth: give USER:PASSWORD" in rendered and "--lang" in rendered
    with pytest.raises(ConfigError, match="GRADIO_SERVER_PORT"):
        settings(None, None, None, False, "en", {"port": "abc"})


def test_cli_parses_the_webui_command() -> None:
    args = cli.build_parser().parse_args(["webui", "--port", "8080", "--auth", "user:pass", "--lang", "zh"])
    assert args.func is cli.cmd_webui
    assert (args.port, args.auth, args.lang, args.host) == (8080, "user:pass", "zh", None)


def test_six_tabs_in_order_and_which_are_missing() -> None:
    assert [name for name, _ in TAB_MODULES] == ["data", "train", "evaluate", "chat", "export", "runs"]
    assert missing_tabs() == []


def test_gradio_variables_are_read_in_runtime_env(monkeypatch: pytest.MonkeyPatch) -> None:
    from tunelab.runtime.env import gradio_env

    monkeypatch.setenv("GRADIO_SERVER_NAME", "0.0.0.0")
    monkeypatch.setenv("GRADIO_SERVER_PORT", "8081")
    monkeypatch.delenv("GRADIO_SHARE", raising=False)
    assert gradio_env() == {"host": "0.0.0.0", "port": "8081"}
    assert settings(None, None, None, False, "en", gradio_env()).port == 8081


def test_architecture_md_names_every_webui_module() -> None:
    line = next(line for line in (Path(__file__).parents[4] / "docs" / "architecture.md").read_text().splitlines()
                if "`webui/`" in line)
    named = set(re.findall(r"`([a-z_]+\.py)`", line.split("`webui/`", 1)[1]))
    folder = Path(webui.__file__).parent
    modules = {p.name for p in [*folder.glob("*.py"), *(folder / "tabs").glob("*.py")] if p.name != "__init__.py"}
    assert sorted(modules - named) == []
