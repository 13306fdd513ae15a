"""The Export tab's logic: the form generated from ExportSection, its values as the CLI's overrides, the config
checked as `tunelab export` checks it, and the command as an argument list."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from tests.unit.interfaces.webui.tab_helpers import blocks_with
from tunelab.config.schema import GGUF_TYPES, ExportSection
from tunelab.interfaces import cli
from tunelab.interfaces.webui import export_job
from tunelab.interfaces.webui import strings
from tunelab.interfaces.webui.strings import LANGS, entry
from tunelab.interfaces.webui.tabs import export as export_tab


def test_every_export_key_is_a_field_of_the_right_kind() -> None:
    specs = {spec.key: spec for spec in export_job.field_specs()}
    assert list(specs) == list(ExportSection.model_fields)
    assert specs["export_format"].choices == ("hf", "gguf", "ollama") and specs["export_format"].default == "hf"
    assert specs["gguf_type"].choices == ("", *GGUF_TYPES)
    assert specs["export_dtype"].choices[0] == export_job.UNSET
    assert specs["export_quantization_bit"].choices == ("", "2", "3", "4", "8")
    assert (specs["export_verify"].widget, specs["export_verify"].default) == ("checkbox", True)
    assert (specs["export_size"].widget, specs["export_size"].integer) == ("number", False)
    assert (specs["export_quantization_nsamples"].widget, specs["export_quantization_nsamples"].integer) == \
        ("number", True)
    assert specs["export_dir"].widget == "text"


def test_only_changed_values_become_overrides() -> None:
    values = {"export_dir": "out dir", "export_format": "gguf", "gguf_type": "q8_0", "export_dtype": "",
              "export_size": 5, "export_quantization_nsamples": 64.0, "export_verify": False,
              "overwrite_output_dir": False}
    assert export_job.overrides(values) == ["export_dir=out dir", "export_format=gguf", "gguf_type=q8_0",
                                            "export_quantization_nsamples=64", "export_verify=false"]
    assert export_job.overrides({"overwrite_output_dir": True}) == ["overwrite_output_dir=true"]


def test_the_config_is_checked_as_tunelab_export_checks_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    run.mkdir()
    form = export_job.ExportForm("m", None, "lora", str(run), {"export_format": "hf", "gguf_type": "q8_0",
                                                               "export_dir": str(tmp_path / "x")})
    path, keys, done = export_job.write_config(form)
    assert path is None and done.code == 2
    code = cli.main(["export", str(run / export_job.CONFIG_NAME), *keys])
    assert (code, done.err) == (2, capsys.readouterr().err)
    assert "gguf_type: only used with export_format gguf or ollama" in done.err
    good = export_job.ExportForm("m", "chatml", "lora", str(run), {"export_dir": str(tmp_path / "x")})
    path, keys, done = export_job.write_config(good)
    assert done.ok, done.text()
    assert path == run / export_job.CONFIG_NAME and keys == [f"export_dir={tmp_path / 'x'}"]
    assert "default_system" not in yaml.safe_load(path.read_text())
    system = export_job.ExportForm("m", "chatml", "lora", str(run), {"export_dir": str(tmp_path / "x")},
                                   system="Answer briefly.")
    assert export_job.write_config(system)[2].ok
    assert yaml.safe_load(path.read_text())["default_system"] == "Answer briefly."  # the top bar's system prompt
    assert export_job.export_argv(path, keys) == [sys.executable, "-u", "-m", "tunelab", "export", str(path),
                                                  f"export_dir={tmp_path / 'x'}"]


def test_a_missing_run_folder_is_refused(tmp_path: Path) -> None:
    form = export_job.ExportForm("m", None, "lora", str(tmp_path / "none"), {"export_dir": "x"})
    path, _, done = export_job.write_config(form)
    assert path is None and "no such folder; pick a run folder that exists" in done.err


def test_export_dir_follows_the_path_rule(tmp_path: Path) -> None:
    work = tmp_path / "work"
    (work / "run").mkdir(parents=True)
    form = export_job.ExportForm("m", None, "lora", "none", {"export_dir": "../out"}, work)
    path, keys, done = export_job.write_config(form)
    assert path is None and keys == []
    assert done.err.startswith(f"tunelab: the config has 2 problems\n  output_dir: none: no such folder; pick a "
                               f"run folder that exists\n  export_dir: ../out leads outside the working folder "
                               f"{work.resolve()}")
    inside = export_job.ExportForm("m", None, "lora", "run", {"export_dir": "exports/m"}, work)
    path, keys, done = export_job.write_config(inside)
    assert done.ok, done.text()
    assert keys == [f"export_dir={work.resolve() / 'exports' / 'm'}"]
    assert inside.export_folder() == work.resolve() / "exports" / "m"
    outside = export_job.ExportForm("m", None, "lora", "run", {"export_dir": str(tmp_path / "out")}, work)
    assert outside.export_folder() == tmp_path / "out"  # absolute: taken as typed


def test_result_files_lists_the_export(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"0" * 2_000_000)
    (tmp_path / "README.md").write_text("card")
    assert export_job.result_files(tmp_path) == "README.md  0.00 MB\nmodel.safetensors  2.00 MB"
    assert export_job.result_files(tmp_path / "none") == ""


def test_the_tab_has_a_field_and_strings_for_every_export_key() -> None:
    _, ui = blocks_with(export_tab.build)
    keys = [key for key, _ in ui.registered]
    assert {f"export.{key}" for key in ExportSection.model_fields} <= set(keys)
    used = keys + ["export.running", "export.done", "export.failed"]
    assert all(key.startswith("export.") for key in used)
    assert all(entry(key, lang)["label"] for key in used for lang in LANGS)


def test_an_export_key_without_strings_is_labelled_from_the_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(strings.table(), "export.export_size")  # as for a key just added to ExportSection
    _, ui = blocks_with(export_tab.build)
    by_key = dict(ui.registered)
    assert "export.export_size" not in by_key
    field = by_key["config:export_size"]
    assert (field.label, field.info) == ("export_size", ExportSection.model_fields["export_size"].description)
    assert field.elem_id == "export-export_size"
