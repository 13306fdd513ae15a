"""Every generated malformed dataset, through `tunelab data validate` (strict and with on_bad_row: skip) and, for a
sample, `tunelab train` before the model loads: a non-zero exit, no traceback, the file/row/field named, and the
skipped rows counted."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.malformed.cases import FORMATS, WRITERS, Case, Format, all_cases, readers_for
from tests.unit.malformed.conftest import Run, register, write_config

CASES = all_cases()
MODEL = "smollm2-135m-instruct"  # named, never loaded: validate reads no model


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda fmt: fmt.name)
def test_the_seeds_are_valid(fmt: Format, tmp_path: Path, run_cli: Run) -> None:
    """Each mutation is of a valid file: every format's seed validates in every reader that can hold it."""
    for reader in readers_for(fmt):
        folder = tmp_path / reader
        folder.mkdir()
        WRITERS[reader](fmt.rows, folder / f"demo.{reader}")
        register(folder, "demo", f"demo.{reader}", fmt.entry)
        config = write_config(folder, model_name_or_path=MODEL, dataset="demo", dataset_dir=str(folder),
                              stage=fmt.stage)
        outcome = run_cli("data", "validate", config)
        assert outcome.code == 0 and "valid: every row converts" in outcome.out, (reader, outcome)


def params(cases: list[Case]) -> list[object]:
    return [pytest.param(case, id=case.id) for case in cases]


def dataset(tmp_path: Path, case: Case) -> tuple[Path, Path]:
    """The malformed file, registered as 'demo'; returns (data folder, file)."""
    folder = tmp_path / "data"
    folder.mkdir()
    path = folder / f"demo.{case.reader}"
    case.make(path)
    register(folder, "demo", path.name, case.fmt.entry)
    return folder, path


@pytest.mark.parametrize("case", params(CASES))
def test_validate_names_the_place(case: Case, tmp_path: Path, run_cli: Run) -> None:
    folder, path = dataset(tmp_path, case)
    config = write_config(tmp_path, model_name_or_path=MODEL, dataset="demo", dataset_dir=str(folder),
                          stage=case.fmt.stage)
    outcome = run_cli("data", "validate", config)
    outcome.check_refused(path.name, *case.names)


@pytest.mark.parametrize("case", params([case for case in CASES if case.row_level]))
def test_skipped_rows_are_counted(case: Case, tmp_path: Path, run_cli: Run) -> None:
    """Under on_bad_row: skip the bad row is skipped, counted once, and the others convert."""
    folder, path = dataset(tmp_path, case)
    config = write_config(tmp_path, model_name_or_path=MODEL, dataset="demo", dataset_dir=str(folder),
                          stage=case.fmt.stage, on_bad_row="skip")
    outcome = run_cli("data", "validate", config)
    outcome.check_refused(*case.names)
    rows = len(case.fmt.rows)
    assert f"converted {rows - case.skip_count}, skipped {case.skip_count}," in outcome.out, outcome.text


TRAIN_SAMPLE = [case for case in CASES if case.id.endswith(("-delete-field", "-truncate", "-extra-cell"))]


@pytest.mark.parametrize("case", params(TRAIN_SAMPLE))
def test_train_refuses_before_the_model_loads(case: Case, tmp_path: Path, run_cli: Run, tiny_model_dir: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """`tunelab train` stops on the data before any weights load."""
    import tunelab.train.run as run

    def no_weights(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model's weights were loaded before the data was checked")

    monkeypatch.setattr(run, "load_model", no_weights)
    folder, path = dataset(tmp_path, case)
    config = write_config(tmp_path, model_name_or_path=str(tiny_model_dir), dataset="demo", dataset_dir=str(folder),
                          stage=case.fmt.stage, output_dir=str(tmp_path / "out"), max_steps=1)
    run_cli("train", config).check_refused(path.name, *case.names)
