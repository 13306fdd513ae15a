"""Text similarity: BLEU-4 and ROUGE exactly as LLaMA-Factory scores them, plus sacrebleu / rouge-score.

LLaMA-Factory's recipe (train/sft/metric.py, scripts/eval_bleu_rouge.py), per row:
- bleu-4: nltk `sentence_bleu([list(label)], list(predict), smoothing_function=method3)` on characters;
- rouge-1/2/l: `rouge_chinese.Rouge().get_scores(" ".join(jieba.cut(predict)), " ".join(jieba.cut(label)))`
  F-scores; 0 when either side has no word;
- each times 100 rounded to 4 decimals, then averaged over rows (an empty answer scores 0).

The same numbers come out of plain Python here, faster: n-gram counts instead of nltk's Fractions, and
a bit-parallel longest common subsequence instead of rouge_chinese's dictionary table (its ROUGE-L is
the LCS of the two whole word lists). The tests check equality with the libraries row by row. jieba
is the one library call left (segmentation must be jieba's own), spread over worker processes.
"""

from __future__ import annotations

import math
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache
from multiprocessing import get_context

LF_METRICS = ("bleu-4", "rouge-1", "rouge-2", "rouge-l")
STANDARD_METRICS = ("sacrebleu", "sacrebleu-zh", "rouge-score-1", "rouge-score-2", "rouge-score-l")
PARALLEL_FROM = 2000  # rows; below this, starting worker processes costs more than it saves
CHUNK = 500


def char_ngrams(text: str, n: int) -> Counter[str]:
    """Counts of the character n-grams of a text (none when it is shorter than n)."""
    return Counter(text[i:i + n] for i in range(len(text) - n + 1))


def lf_bleu4(predict: str, label: str) -> float:
    """Character BLEU-4 with smoothing method 3, x100, rounded to 4 places (nltk's sentence_bleu)."""
    numerators, denominators = [], []
    for n in range(1, 5):
        counts, reference = char_ngrams(predict, n), char_ngrams(label, n)
        numerators.append(sum(min(count, reference[gram]) for gram, count in counts.items()))
        denominators.append(max(1, sum(counts.values())))
    if numerators[0] == 0:
        return 0.0
    precisions, missing = [], 1
    for numerator, denominator in zip(numerators, denominators):
        if numerator == 0:  # method 3: 1 / (2^k * denominator) for the k-th order without a match
            precisions.append(1 / (2 ** missing * denominator))
            missing += 1
        else:
            precisions.append(numerator / denominator)
    hyp_len, ref_len = len(predict), len(label)
    penalty = 1 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)
    score = penalty * math.exp(math.fsum(0.25 * math.log(p) for p in precisions))
    return round(score * 100, 4)


SENTENCE_ENDS = (
    (re.compile("([。！？\\?])([^”’])"), r"\1\n\2"),
    (re.compile("(\\.{6})([^”’])"), r"\1\n\2"),
    (re.compile("(\\…{2})([^”’])"), r"\1\n\2"),
    (re.compile("([。！？\\?][”’])([^，。！？\\?])"), r"\1\n\2"),
)


def rouge_words(segmented: str) -> list[str]:
    """The word list rouge_chinese scores: sentence split, whitespace normalised per sentence, split on spaces."""
    for pattern, repl in SENTENCE_ENDS:
        segmented = pattern.sub(repl, segmented)
    sentences = [" ".join(s.split()) for s in segmented.rstrip().split("\n") if len(s) > 0]
    return [word for sentence in sentences for word in sentence.split(" ")]


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence, bit-parallel (one big-int step per item of b)."""
    if not a or not b:
        return 0
    masks: dict[str, int] = {}
    for i, item in enumerate(a):
        masks[item] = masks.get(item, 0) | (1 << i)
    full = (1 << len(a)) - 1
    v = full
    for item in b:
        u = v & masks.get(item, 0)
        v = ((v + u) | (v - u)) & full
    return len(a) - v.bit_count()


def f_score(overlap: int, hyp_count: int, ref_count: int) -> float:
    """rouge_chinese's F: 2PR / (P + R + 1e-8), with P or R 0 on an empty side."""
    precision = overlap / hyp_count if hyp_count else 0.0
    recall = overlap / ref_count if ref_count else 0.0
    return 2.0 * ((precision * recall) / (precision + recall + 1e-8))


def word_ngrams(words: list[str], n: int) -> set[tuple[str, ...]]:
    """The set of word n-grams (rouge_chinese counts distinct n-grams)."""
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def lf_rouge(hyp_words: list[str], ref_words: list[str]) -> dict[str, float]:
    """ROUGE-1/2/L F-scores of jieba word lists, x100 and rounded, as LLaMA-Factory computes them."""
    if not " ".join(hyp_words).split() or not " ".join(ref_words).split():
        return {"rouge-1": 0.0, "rouge-2": 0.0, "rouge-l": 0.0}
    hyp, ref = rouge_words(" ".join(hyp_words)), rouge_words(" ".join(ref_words))
    scores = {}
    for n in (1, 2):
        hyp_grams, ref_grams = word_ngrams(hyp, n), word_ngrams(ref, n)
        scores[f"rouge-{n}"] = f_score(len(hyp_grams & ref_grams), len(hyp_grams), len(ref_grams))
    llcs = lcs_length(ref, hyp)
    recall, precision = llcs / len(ref), llcs / len(hyp)
    scores["rouge-l"] = 2.0 * ((precision * recall) / (precision + recall + 1e-8))
    return {name: round(value * 100, 4) for name, value in scores.items()}


@lru_cache(maxsize=1)
def jieba_tokenizer():  # noqa: ANN201 - jieba has no types
    """jieba's default tokenizer, initialised once per process, without its start-up chatter."""
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba.dt


def segment(text: str) -> list[str]:
    """jieba's words of a text (default mode, HMM on), as LLaMA-Factory segments it."""
    return list(jieba_tokenizer().cut(text))


def lf_row(predict: str, label: str, names: Sequence[str] = LF_METRICS) -> dict[str, float]:
    """The LLaMA-Factory scores of one row, for the metric names asked."""
    row: dict[str, float] = {}
    if any(name.startswith("rouge-") for name in names):
        rouge = lf_rouge(segment(predict), segment(label))
        row.update({name: rouge[name] for name in names if name in rouge})
    if "bleu-4" in names:
        row["bleu-4"] = lf_bleu4(predict, label)
    return row


def _score_chunk(args: tuple[list[str], list[str], tuple[str, ...]]) -> list[dict[str, float]]:
    predicts, labels, names = args
    return [lf_row(p, l, names) for p, l in zip(predicts, labels)]


def worker_count(rows: int, workers: int | None) -> int:
    """Processes to use: the cores, from PARALLEL_FROM rows on (one below)."""
    if workers is not None:
        return max(1, workers)
    return max(1, min(os.cpu_count() or 1, 8)) if rows >= PARALLEL_FROM else 1


def lf_scores(predicts: Sequence[str], labels: Sequence[str], names: Iterable[str] = LF_METRICS,
              workers: int | None = None) -> list[dict[str, float]]:
    """Per-row LLaMA-Factory scores for many rows, in row order, over worker processes when it pays."""
    names = tuple(n for n in names if n in LF_METRICS)
    chunks = [(list(predicts[i:i + CHUNK]), list(labels[i:i + CHUNK]), names)
              for i in range(0, len(predicts), CHUNK)]
    count = worker_count(len(predicts), workers)
    if count == 1 or len(chunks) == 1:
        return [row for chunk in chunks for row in _score_chunk(chunk)]
    # spawn, not fork: the caller may hold torch's thread pools, which do not survive a fork
    with ProcessPoolExecutor(count, mp_context=get_context("spawn"), initializer=jieba_tokenizer) as pool:
        return [row for part in pool.map(_score_chunk, chunks) for row in part]


SACREBLEU_TOKENIZE = {"sacrebleu": "13a", "sacrebleu-zh": "zh"}


def sacrebleu_corpus(predicts: Sequence[str], labels: Sequence[str], name: str = "sacrebleu") -> float:
    """Standard corpus BLEU with sacrebleu's defaults; tokenisation 13a (English) or zh (sacrebleu-zh)."""
    import sacrebleu

    score = sacrebleu.corpus_bleu(list(predicts), [list(labels)], tokenize=SACREBLEU_TOKENIZE[name])
    return round(score.score, 4)


def sacrebleu_rows(predicts: Sequence[str], labels: Sequence[str], name: str = "sacrebleu") -> list[float]:
    """Sentence BLEU per row (for the per-row file; the task's figure is the corpus BLEU)."""
    import sacrebleu

    return [round(sacrebleu.sentence_bleu(p, [l], tokenize=SACREBLEU_TOKENIZE[name]).score, 4)
            for p, l in zip(predicts, labels)]


def rouge_score_rows(predicts: Sequence[str], labels: Sequence[str]) -> list[dict[str, float]]:
    """Google rouge-score F-measures x100 (English tokeniser, Porter stemming) per row."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    rows = []
    for predict, label in zip(predicts, labels):
        result = scorer.score(label, predict)
        rows.append({f"rouge-score-{key[-1].lower()}": round(result[key].fmeasure * 100, 4)
                     for key in ("rouge1", "rouge2", "rougeL")})
    return rows
