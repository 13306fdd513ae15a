"""Record LLaMA-Factory's own BLEU-4 / ROUGE scores for fixed rows: tests/fixtures/eval/lf_similarity.json.

Run with the Python of a venv where LLaMA-Factory 0.9.5 is installed (with jieba, nltk, rouge_chinese):

    /path/to/lf-venv/bin/python tools/lf_metric_golden.py

It feeds the rows through LLaMA-Factory's `ComputeSimilarity` (train/sft/metric.py), the class its
`do_predict` uses, via a stand-in tokenizer whose batch_decode returns the texts, and records the
per-row scores and the averages it reports. tests/unit/eval/test_text_metrics.py checks tunelab against them.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "eval" / "lf_similarity.json"

FIXED = [
    ("我喜欢这款手机，价格便宜质量不错。", "这款手机价格便宜，质量很好，我很喜欢。"),
    ("答案是B。", "B"),
    ("", "参考答案不能为空。"),
    ("模型没有给出参考。", ""),
    ("   ", "空白输出"),
    ("The cat sat on the mat.", "The cat is sitting on the mat."),
    ("Paris is the capital of France.", "The capital of France is Paris."),
    ("a", "a"),
    ("ab", "abab"),
    ("你好……世界。。。”好“", "世界你好。"),
    ("今天天气很好！我们去公园吧？好的。", "今天天气不错。我们去公园玩吧！"),
    ("第一行\n\n第二行\n 第三行", "第一行\n第二行"),
    ("1. 苹果\n2. 香蕉\n3. 西瓜", "苹果、香蕉、西瓜"),
    ("GPT-4 scored 86.4% on MMLU.", "GPT-4 reaches 86.4% accuracy on MMLU."),
    ("重复重复重复重复重复", "重复"),
]


def random_rows(count: int, seed: int = 0) -> list[tuple[str, str]]:
    """Mixed Chinese/English rows with punctuation, spaces and newlines, predictions perturbed references."""
    rng = random.Random(seed)
    words = ("商品 购物 用户 推荐 价格 便宜 质量 不错 手机 快递 速度 包装 评价 服务 知识 图谱 报告 "
             "the model answer is good price quality phone 12 3.5").split()
    marks = ["，", "。", "！", "？", " ", "\n", "、", ".", "……"]
    rows = []
    for _ in range(count):
        label = "".join(rng.choice(words) + (rng.choice(marks) if rng.random() < 0.3 else "")
                        for _ in range(rng.randint(1, 40)))
        predict = "".join(ch if rng.random() > 0.25 else rng.choice("的了是在 ，。a") for ch in label)
        if rng.random() < 0.2:
            predict = predict[: rng.randint(0, len(predict))]
        rows.append((predict, label))
    return rows


class TextTokenizer:
    """Stands in for a tokenizer: 'token ids' are row numbers, decoding returns the row's text."""

    pad_token_id = -1

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts

    def batch_decode(self, ids, skip_special_tokens: bool = True):  # noqa: ANN001, ANN201
        return [self.texts[int(row[0])] for row in ids]


def main() -> None:
    from llamafactory.train.sft.metric import ComputeSimilarity
    from transformers import EvalPrediction

    rows = FIXED + random_rows(200)
    predicts, labels = [p for p, _ in rows], [l for _, l in rows]
    index = np.arange(len(rows)).reshape(-1, 1)
    metric = ComputeSimilarity(tokenizer=TextTokenizer(predicts))
    metric.tokenizer.texts = predicts + labels
    result = metric(EvalPrediction(predictions=index, label_ids=index + len(rows)), compute_result=False)
    assert result is None
    per_row = {name: list(map(float, values)) for name, values in metric.score_dict.items()}
    averages = metric._dump()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"source": "LLaMA-Factory 0.9.5 ComputeSimilarity", "rows": [
        {"predict": p, "label": l, **{name: per_row[name][i] for name in per_row}} for i, (p, l) in enumerate(rows)],
        "averages": averages}, ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"wrote {OUT}: {len(rows)} rows, averages {averages}")


if __name__ == "__main__":
    main()
