"""Generated malformed configs: every key of a valid config duplicated, misspelt, typed wrong, set twice on the
command line; names checkable without loading anything (template, stage, dataset) wrong; the file's bytes broken.
Each is refused by `tunelab config` with a non-zero exit, no traceback, and the key (or file and line) named."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.malformed.conftest import Run

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "data"
VALID = {"model_name_or_path": "smollm2-135m-instruct", "stage": "sft", "finetuning_type": "lora",
         "dataset": "identity", "dataset_dir": str(EXAMPLES), "template": "smollm2", "cutoff_len": 256,
         "learning_rate": 0.0001, "num_train_epochs": 1.0, "per_device_train_batch_size": 2, "lora_rank": 8,
         "logging_steps": 5, "bf16": False, "output_dir": "saves/demo"}
TYPED = {"cutoff_len": "long", "learning_rate": "fast", "num_train_epochs": [1], "per_device_train_batch_size": 2.5,
         "lora_rank": "eight", "logging_steps": {"every": 5}, "bf16": "maybe", "finetuning_type": "lora2"}
NAMES = {"template": "smollm3", "stage": "sft2", "dataset": "identiti", "eval_dataset": "identity,nope"}


def yaml_lines(values: dict[str, object]) -> list[str]:
    import json

    return [f"{key}: {json.dumps(value)}" for key, value in values.items()]


def write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def duplicate(key: str) -> list[str]:
    lines = yaml_lines(VALID)
    lines.append(yaml_lines({key: VALID[key]})[0])
    return lines


CASES: list[tuple[str, list[str], list[str], tuple[str, ...]]] = []  # id, yaml lines, overrides, names
for key in VALID:
    CASES.append((f"duplicate-{key}", duplicate(key), [], (key, f"line {list(VALID).index(key) + 1}",
                                                           f"line {len(VALID) + 1}")))
    CASES.append((f"misspelt-{key}", yaml_lines({(k[:-1] if k == key else k): v for k, v in VALID.items()}), [],
                  (key[:-1],)))
    CASES.append((f"override-twice-{key}", yaml_lines(VALID), [f"{key}=1", f"{key}=2"], (key, "twice")))
for key, value in TYPED.items():
    CASES.append((f"type-{key}", yaml_lines({**VALID, key: value}), [], (key,)))
for key, value in NAMES.items():
    CASES.append((f"name-{key}", yaml_lines({**VALID, key: value}), [], (key, value.split(",")[-1])))
CASES.append(("truncated", [*yaml_lines(VALID)[:3], 'template: "smol'], [], ("run.yaml", "line")))
CASES.append(("tab-indent", [*yaml_lines(VALID), "model:", "\tcutoff_len: 5"], [], ("run.yaml", "line")))
CASES.append(("top-level-list", ["- " + line for line in yaml_lines(VALID)], [], ("run.yaml",)))
CASES.append(("section-duplicate", [*yaml_lines(VALID), "train:", "  learning_rate: 0.1", "  learning_rate: 0.2"],
              [], ("learning_rate", "line")))
CASES.append(("bad-override", yaml_lines(VALID), ["learning_rate"], ("learning_rate",)))


@pytest.mark.parametrize(("lines", "overrides", "names"), [pytest.param(lines, overrides, names, id=name)
                                                          for name, lines, overrides, names in CASES])
def test_config_refused(lines: list[str], overrides: list[str], names: tuple[str, ...], tmp_path: Path,
                        run_cli: Run) -> None:
    outcome = run_cli("config", write(tmp_path, lines), *overrides)
    outcome.check_refused(*names)


def test_the_valid_config_is_valid(tmp_path: Path, run_cli: Run) -> None:
    outcome = run_cli("config", write(tmp_path, yaml_lines(VALID)))
    assert outcome.code == 0, outcome


@pytest.mark.parametrize("data", [b"model_name_or_path: \xff\xfe\n", "stage: sft\n".encode("utf-16")],
                         ids=["invalid-bytes", "utf16"])
def test_config_bytes_refused(data: bytes, tmp_path: Path, run_cli: Run) -> None:
    path = tmp_path / "run.yaml"
    path.write_bytes(data)
    run_cli("config", path).check_refused("run.yaml")
