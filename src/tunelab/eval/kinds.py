"""Task kinds: which metrics fit each, its default metrics and extractor, what it needs."""

from __future__ import annotations

from dataclasses import dataclass

from tunelab.eval.metrics.rank import RANK_METRIC
from tunelab.eval.metrics.text import LF_METRICS, STANDARD_METRICS

SET_METRICS = ("micro-f1", "micro-precision", "micro-recall", "macro-f1", "macro-precision", "macro-recall")


@dataclass(frozen=True)
class TaskKind:
    """What a task type scores and how, by default."""

    name: str
    metrics: tuple[str, ...]
    defaults: tuple[str, ...]
    extractor: str | None
    generates: bool = True
    ranked: bool = False  # metrics are ndcg@k / dcg@k / hit@k / hits@k / mrr
    description: str = ""

    def fits(self, metric: str) -> bool:
        """Whether a metric name applies to this kind."""
        if self.ranked:
            return metric == "mrr" or bool(RANK_METRIC.match(metric))
        return metric in self.metrics

    def allowed(self) -> str:
        """The metric names for a message."""
        return "ndcg@k, dcg@k, hit@k, hits@k (k a number), mrr" if self.ranked else ", ".join(self.metrics)


KINDS: dict[str, TaskKind] = {kind.name: kind for kind in (
    TaskKind("generation", LF_METRICS + STANDARD_METRICS + ("exact-match",), LF_METRICS, "text",
             description="free text against a reference: BLEU/ROUGE as LLaMA-Factory, sacrebleu, rouge-score"),
    TaskKind("classification", ("accuracy", "macro-f1", "micro-f1"), ("accuracy", "macro-f1"), "text",
             description="one label per row; labels normalised (case, width, punctuation) and aliased"),
    TaskKind("choice", ("accuracy",), ("accuracy",), "choice",
             description="multiple choice answered in free text; the letter(s) extracted"),
    TaskKind("extraction", SET_METRICS, ("micro-f1", "macro-f1"), "list",
             description="sets of items (entities, relations, keywords, JSON fields): precision/recall/F1"),
    TaskKind("ranking", (), ("ndcg@5", "mrr"), "list", ranked=True,
             description="the reference is the ideal order (graded relevance)"),
    TaskKind("retrieval", (), ("hit@5", "mrr"), "list", ranked=True,
             description="the reference is a set of relevant items (binary relevance)"),
    TaskKind("choice_logits", ("accuracy",), ("accuracy",), None, generates=False,
             description="MMLU / C-Eval / CMMLU folders: the option letter with the highest logit"),
    TaskKind("perplexity", ("perplexity",), ("perplexity",), None, generates=False,
             description="perplexity of the model on a text dataset"),
)}
