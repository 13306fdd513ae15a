"""The schema: one owner per key, every field documented, sections closed and frozen."""

from __future__ import annotations

import pydantic
import pytest

from tunelab.config.schema import SECTIONS, DataSection, describe_key, key_owners

ALL_FIELDS = [(name, key) for name, section in SECTIONS.items() for key in section.model_fields]


@pytest.mark.parametrize(("section", "key"), ALL_FIELDS)
def test_every_field_has_a_description(section: str, key: str) -> None:
    description = SECTIONS[section].model_fields[key].description
    assert description and len(description) > 10, f"{section}.{key} has no description"
    assert describe_key(key) == description


def test_every_key_has_exactly_one_owner() -> None:
    owners = key_owners()
    assert len(owners) == len(ALL_FIELDS)
    assert owners["learning_rate"] == "train"
    assert owners["lora_target"] == "lora"
    assert owners["eval_strategy"] == "eval"
    assert owners["template"] == "data"


def test_sections_reject_unknown_keys_and_are_frozen() -> None:
    with pytest.raises(pydantic.ValidationError):
        DataSection(datasett="x")
    data = DataSection()
    with pytest.raises(pydantic.ValidationError):
        data.cutoff_len = 1  # type: ignore[misc]
