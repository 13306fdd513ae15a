"""An export folder never looks complete when it is not; a non-empty one is refused; the hub push fails cleanly."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tunelab.config.load import build
from tunelab.export import merge
from tunelab.export.errors import ExportError
from tunelab.export.run import REPORT, export


def export_config(base: Path, adapter: Path, out: Path, **keys: object) -> object:
    return build({"model_name_or_path": str(base), "adapter_name_or_path": str(adapter), "export_dir": str(out),
                  "export_verify": False, **keys}, "export")


def test_non_empty_export_dir_is_refused(tiny_model_dir: Path, make_adapter: Callable[..., Path],
                                         tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ExportError) as excinfo:
        export(export_config(tiny_model_dir, make_adapter(), out))
    assert str(excinfo.value) == (f"export_dir: {out} is not empty (1 entries: notes.txt); choose an empty or new "
                                  "folder, or set overwrite_output_dir: true to replace it")
    assert (out / "notes.txt").read_text() == "mine" and [p.name for p in out.iterdir()] == ["notes.txt"]


def test_overwrite_replaces_and_empty_folder_is_used(tiny_model_dir: Path, make_adapter: Callable[..., Path],
                                                    tmp_path: Path) -> None:
    adapter = make_adapter()
    out = tmp_path / "out"
    out.mkdir()
    export(export_config(tiny_model_dir, adapter, out))
    (out / "stale.txt").write_text("old")
    export(export_config(tiny_model_dir, adapter, out, overwrite_output_dir=True))
    assert not (out / "stale.txt").exists() and (out / REPORT).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter", "out"]


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_interrupted_export_leaves_no_folder(tiny_model_dir: Path, make_adapter: Callable[..., Path],
                                             tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             error: BaseException) -> None:
    def broken_save(folder: Path) -> None:
        (folder / "to_be_removed.bin").write_bytes(b"half")
        raise error

    monkeypatch.setattr(merge, "to_legacy_bin", broken_save)  # inside the save, after the weights are written
    out = tmp_path / "out"
    with pytest.raises(type(error)):
        export(export_config(tiny_model_dir, make_adapter(), out, export_legacy_format=True))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter"]


def test_interrupted_overwrite_keeps_the_old_export(tiny_model_dir: Path, make_adapter: Callable[..., Path],
                                                    tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    adapter = make_adapter()
    out = tmp_path / "out"
    export(export_config(tiny_model_dir, adapter, out))
    before = sorted(p.name for p in out.iterdir())

    def broken_save(folder: Path) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(merge, "to_legacy_bin", broken_save)
    with pytest.raises(KeyboardInterrupt):
        export(export_config(tiny_model_dir, adapter, out, export_legacy_format=True, overwrite_output_dir=True))
    assert sorted(p.name for p in out.iterdir()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter", "out"]


def test_hub_push_offline_says_the_local_export_is_complete(tiny_model_dir: Path, make_adapter: Callable[..., Path],
                                                            tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(ExportError) as excinfo:
        export(export_config(tiny_model_dir, make_adapter(), out, export_hub_model_id="someone/tiny-merged"))
    message = str(excinfo.value)
    assert message.startswith(f"the local export is complete at {out}, but pushing it to the hub as "
                              "someone/tiny-merged failed (")
    assert message.endswith(f"push it later with `hf upload someone/tiny-merged {out}`, or remove "
                            "export_hub_model_id")
    assert json.loads((out / REPORT).read_text())["export_dir"] == str(out)
