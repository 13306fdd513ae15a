"""Seeds: any convert-readable file, column selection and limit, stable ids, template fields checked per row."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tunelab.data.errors import DataError
from tunelab.data.tools.synth.config import PromptSection, SeedsSection
from tunelab.data.tools.synth.seeds import load_seeds, requests_of


def test_csv_seeds_with_columns_limit_and_stable_ids(tmp_path: Path) -> None:
    path = tmp_path / "seeds.csv"
    path.write_text("商品,类目,备注\n杯子,厨房,x\n鞋,运动,y\n杯子,厨房,x\n帽子,服饰,z\n", encoding="utf-8")
    seeds, where = load_seeds(SeedsSection(file=str(path), columns=["商品", "类目"], limit=3))
    assert [seed.fields for seed in seeds] == [{"商品": "杯子", "类目": "厨房"}, {"商品": "鞋", "类目": "运动"},
                                               {"商品": "杯子", "类目": "厨房"}]
    assert seeds[2].key == seeds[0].key + "~2" and where == str(path)
    again, _ = load_seeds(SeedsSection(file=str(path), columns=["类目", "商品"]))
    assert again[1].key == seeds[1].key  # content keys: the same row, the same id, whatever the column order
    with pytest.raises(DataError, match=re.escape("seeds.columns names '商品名', which the seeds lack; did you mean "
                                                  "商品?; the seed fields are: 商品, 类目, 备注")):
        load_seeds(SeedsSection(file=str(path), columns=["商品名"]))


def test_a_later_row_without_a_template_field_names_its_row(tmp_path: Path) -> None:
    path = tmp_path / "seeds.jsonl"
    path.write_text("\n".join(json.dumps(row) for row in [{"q": "a"}, {"q": "b"}, {"x": "c"}]) + "\n")
    seeds, where = load_seeds(SeedsSection(file=str(path)))
    with pytest.raises(DataError, match=r"seeds.jsonl, row 3: prompt.template: 'q' is undefined"):
        requests_of(seeds, PromptSection(template="Q: {{ q }}"), 1, where)


def test_topics_give_one_request_per_index(tmp_path: Path) -> None:
    seeds, where = load_seeds(SeedsSection(topics=["春节", "中秋"]))
    requests = requests_of(seeds, PromptSection(template="{{ topic }} {{ index }}"), 2, where)
    assert [(r.id.endswith(f"-{r.index}"), r.prompt) for r in requests] == [
        (True, "春节 0"), (True, "春节 1"), (True, "中秋 0"), (True, "中秋 1")]
