"""Multiple choice by logits, the MMLU / C-Eval / CMMLU way: read the CSV folders, prompt, pick A-D.

The recipe (prompt strings, few-shot choice, option tokens, batching, averages) and how it compares
with LLaMA-Factory's and lm-evaluation-harness's numbers are in docs/eval_choice.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypedDict

from tunelab.eval.choice_data import (  # noqa: F401 - re-exported: the public API of multiple choice
    LETTERS, ChoiceError, Question, load_questions, load_shots,
)
from tunelab.data.render import generation_prompt
from tunelab.model.load import ModelBundle
from tunelab.runtime.suggest import suggest

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

# lang -> (text opening the first user message, text closing every question), as in LLaMA-Factory 0.9.5
PROMPTS = {
    "en": ("The following are multiple choice questions (with answers) about {subject}.\n\n", "\nAnswer:"),
    "zh": ("以下是中国关于{subject}考试的单项选择题，请选出其中的正确答案。\n\n", "\n答案："),
}

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ChoicePrompt:
    """A question's token ids and how many few-shot examples they hold (too_long: even 0-shot did not fit)."""

    question: Question
    input_ids: list[int]
    shots_used: int
    shots_wanted: int = 0
    too_long: bool = False


class ChoiceRecord(TypedDict):
    """The outcome of one question, as written to rows.jsonl."""

    id: str
    subject: str
    category: str
    answer: str
    predict: str | None
    correct: bool
    probs: dict[str, float]
    shots: int


@dataclass
class ChoiceResult:
    """Per-question records and accuracies in percent: per subject, per category, and 'Average' (micro)."""

    records: list[ChoiceRecord]
    subjects: dict[str, float]
    categories: dict[str, float]  # "Average" first: all questions together, like LLaMA-Factory's table
    questions: int
    too_long: list[str]
    fewer_shots: int
    settings: dict[str, object] = field(default_factory=dict)

    @property
    def average(self) -> float:
        """Accuracy over all questions, in percent."""
        return self.categories["Average"]

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready form (records last, as they are long)."""
        return {"average": self.average, "categories": self.categories, "subjects": self.subjects,
                "questions": self.questions, "too_long": self.too_long, "fewer_shots": self.fewer_shots,
                "settings": self.settings, "records": self.records}


# ---------------------------------------------------------------------------------------------- prompts

def check_settings(n_shot: int, lang: str, cutoff_len: int, batch_size: int = 1) -> None:
    """Reject settings that cannot work, before anything is read or run."""
    if lang not in PROMPTS:
        raise ChoiceError(f"lang: {lang!r} is not one of {', '.join(PROMPTS)}{suggest(lang, list(PROMPTS))}")
    for name, value, least in (("n_shot", n_shot, 0), ("cutoff_len", cutoff_len, 1), ("batch_size", batch_size, 1)):
        if not isinstance(value, int) or value < least:
            raise ChoiceError(f"{name}: {value!r} must be a whole number >= {least}")


def check_shots(questions: list[Question], shots: dict[str, list[Question]], n_shot: int) -> None:
    """Every evaluated subject needs n_shot dev rows."""
    for subject in dict.fromkeys(q.subject for q in questions):
        have = len(shots.get(subject, []))
        if have < n_shot:
            raise ChoiceError(f"subject {subject!r}: {have} dev rows (few-shot examples) but n_shot is {n_shot}; "
                              f"set n_shot: {have} or add rows to its file in dev/")


def user_text(question: Question, suffix: str) -> str:
    """A question, its options one per line ('\\nA. text'), and the answer cue."""
    options = "".join(f"\n{letter}. {question.options[letter]}" for letter in LETTERS)
    return question.question + options + suffix


def choice_messages(question: Question, shots: list[Question], lang: str) -> list[dict[str, str]]:
    """Chat messages: a user/assistant pair per shot, then the question; the system text opens the first one."""
    system, suffix = PROMPTS[lang]
    messages = []
    for shot in shots:
        messages.append({"role": "user", "content": user_text(shot, suffix)})
        messages.append({"role": "assistant", "content": shot.answer})
    messages.append({"role": "user", "content": user_text(question, suffix)})
    # a system *role* would change what many chat templates render; LLaMA-Factory prepends the text instead
    messages[0]["content"] = system.format(subject=question.display_name) + messages[0]["content"]
    return messages


def render_ids(tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, str]]) -> list[int]:
    """Token ids of the messages through the model's own chat template, ending with the generation prompt."""
    return generation_prompt(tokenizer, messages)[1]


def fitted_prompt(question: Question, shots: list[Question], tokenizer: PreTrainedTokenizerBase, lang: str,
                  cutoff_len: int) -> ChoicePrompt:
    """The prompt with as many of the shots as fit in cutoff_len, dropping from the front."""
    for start in range(len(shots) + 1):
        ids = render_ids(tokenizer, choice_messages(question, shots[start:], lang))
        if len(ids) <= cutoff_len:
            return ChoicePrompt(question, ids, len(shots) - start, len(shots))
    return ChoicePrompt(question, [], 0, len(shots), too_long=True)


def choice_prompts(questions: list[Question], shots: dict[str, list[Question]], tokenizer: PreTrainedTokenizerBase,
                   n_shot: int, lang: str, cutoff_len: int) -> list[ChoicePrompt]:
    """One prompt per question with the first n_shot dev rows of its subject (fewer if cutoff_len demands)."""
    check_settings(n_shot, lang, cutoff_len)
    check_shots(questions, shots, n_shot)
    return [fitted_prompt(q, shots.get(q.subject, [])[:n_shot], tokenizer, lang, cutoff_len) for q in questions]


# ---------------------------------------------------------------------------------------------- scoring

def option_token_ids(tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """The token a model would start each letter's answer with (the last id of encoding the bare letter)."""
    ids = [tokenizer.encode(letter, add_special_tokens=False)[-1] for letter in LETTERS]
    if len(set(ids)) != len(ids):
        raise ChoiceError(f"the tokenizer gives the letters A-D the tokens {ids}, not four different ones; "
                          "this model cannot be evaluated by option logits")
    return ids


def forward_options(model: PreTrainedModel) -> tuple[bool, bool]:
    """(takes position_ids, takes logits_to_keep), read from the underlying model's forward signature."""
    import inspect

    from tunelab.model.adapters import base_model

    params = inspect.signature(base_model(model).forward).parameters
    return "position_ids" in params, "logits_to_keep" in params


def left_padded(rows: list[list[int]], pad_id: int, device: torch.device,
                with_positions: bool) -> dict[str, torch.Tensor]:
    """A batch padded on the left, so every row's last position is its own last token."""
    import torch

    width = max(len(row) for row in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        input_ids[i, width - len(row):] = torch.tensor(row, dtype=torch.long)
        attention_mask[i, width - len(row):] = 1
    batch = {"input_ids": input_ids.to(device), "attention_mask": attention_mask.to(device)}
    if with_positions:
        # positions count real tokens only, so a padded row sees exactly what it would see alone
        batch["position_ids"] = (attention_mask.cumsum(-1) - 1).clamp(min=0).to(device)
    return batch


def option_probs(model: PreTrainedModel, batch: dict[str, torch.Tensor], option_ids: list[int],
                 keep_last: bool) -> list[list[float]]:
    """Softmax over the four option tokens' logits at each row's last position."""
    import torch

    output = model(**batch, logits_to_keep=1) if keep_last else model(**batch)
    logits = output.logits if hasattr(output, "logits") else output[0]
    last = logits[:, -1, :].float()
    return torch.softmax(last[:, option_ids], dim=-1).tolist()


def run_batches(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, prompts: list[ChoicePrompt],
                batch_size: int, progress: Progress | None) -> dict[int, list[float]]:
    """Prompt index -> option probabilities, longest prompts first, batch_size at a time."""
    import torch

    option_ids = option_token_ids(tokenizer)
    pad_id = next((i for i in (tokenizer.pad_token_id, tokenizer.eos_token_id) if i is not None), 0)
    with_positions, keep_last = forward_options(model)
    device = next(iter(model.parameters())).device
    # longest first: similar lengths share a batch (little padding), and a batch too big fails at once
    order = sorted((i for i, p in enumerate(prompts) if not p.too_long), key=lambda i: -len(prompts[i].input_ids))
    probs: dict[int, list[float]] = {}
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            batch = left_padded([prompts[i].input_ids for i in chunk], pad_id, device, with_positions)
            probs.update(zip(chunk, option_probs(model, batch, option_ids, keep_last)))
            if progress is not None:
                progress(start + len(chunk), len(order))
    return probs


def record(prompt: ChoicePrompt, probs: list[float] | None) -> ChoiceRecord:
    """The JSON-ready outcome of one question (a too-long one has no prediction and counts as wrong)."""
    q = prompt.question
    predict = None if probs is None else LETTERS[max(range(len(LETTERS)), key=probs.__getitem__)]
    return {"id": q.id, "subject": q.subject, "category": q.category, "answer": q.answer, "predict": predict,
            "correct": predict == q.answer, "probs": dict(zip(LETTERS, probs or [])), "shots": prompt.shots_used}


def accuracy_by(records: list[ChoiceRecord], key: Literal["subject", "category"]) -> dict[str, float]:
    """Accuracy in percent per value of records[key], sorted by that value."""
    groups: dict[str, list[bool]] = {}
    for row in records:
        groups.setdefault(row[key], []).append(row["correct"])
    return {name: 100.0 * sum(hits) / len(hits) for name, hits in sorted(groups.items())}


def summarise(prompts: list[ChoicePrompt], probs: dict[int, list[float]]) -> ChoiceResult:
    """Records and accuracies of scored prompts."""
    records = [record(p, probs.get(i)) for i, p in enumerate(prompts)]
    average = 100.0 * sum(r["correct"] for r in records) / len(records) if records else 0.0
    return ChoiceResult(records=records, subjects=accuracy_by(records, "subject"),
                        categories={"Average": average, **accuracy_by(records, "category")},
                        questions=len(records), too_long=[p.question.id for p in prompts if p.too_long],
                        fewer_shots=sum(p.shots_used < p.shots_wanted for p in prompts if not p.too_long))


def score_choices(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, prompts: list[ChoicePrompt],
                  batch_size: int, progress: Progress | None = None) -> ChoiceResult:
    """Predict each prompt's option by the largest next-token logit among A-D; batched, in eval mode."""
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ChoiceError(f"batch_size: {batch_size!r} must be a whole number >= 1")
    training = bool(getattr(model, "training", False))
    if training:
        model.eval()  # dropout would make the scores random
    try:
        probs = run_batches(model, tokenizer, prompts, batch_size, progress)
    finally:
        if training:
            model.train()
    return summarise(prompts, probs)


def read_choice_task(task_dir: str | Path, split: str, n_shot: int,
                     subjects: list[str] | None) -> tuple[list[Question], dict[str, list[Question]]]:
    """A split's questions and their subjects' dev rows, checked (enough shots per subject) before a model runs."""
    questions = load_questions(task_dir, split, subjects)
    keys = list(dict.fromkeys(q.subject for q in questions))
    shots = load_shots(task_dir, keys) if n_shot > 0 else {}
    check_shots(questions, shots, n_shot)
    return questions, shots


def evaluate_choice(bundle: ModelBundle, task_dir: str | Path, split: str = "test", n_shot: int = 5, lang: str = "en",
                    batch_size: int = 8, cutoff_len: int = 2048, subjects: list[str] | None = None,
                    progress: Progress | None = None,
                    loaded: tuple[list[Question], dict[str, list[Question]]] | None = None) -> ChoiceResult:
    """Read a benchmark folder (unless `loaded` holds read_choice_task's result), prompt each question
    n_shot-shot and score it with bundle.model."""
    check_settings(n_shot, lang, cutoff_len, batch_size)
    questions, shots = loaded or read_choice_task(task_dir, split, n_shot, subjects)
    prompts = choice_prompts(questions, shots, bundle.tokenizer, n_shot, lang, cutoff_len)
    result = score_choices(bundle.model, bundle.tokenizer, prompts, batch_size, progress)
    settings = {"task_dir": str(task_dir), "split": split, "n_shot": n_shot, "lang": lang,
                "batch_size": batch_size, "cutoff_len": cutoff_len}
    return replace(result, settings=settings)
