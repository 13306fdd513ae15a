"""The example kinds of the preference and online stages: pairs, KTO examples with their KL partners and prompts,
encoded through the stage table (data/kinds.py) on a tiny tokenizer and checked token by token against the chat
template, as LLaMA-Factory 0.9.5's pairwise, feedback and unsupervised processors build them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tunelab.config.schema import DataSection
from tunelab.data.encode.cutoff import IGNORE_INDEX, infer_seqlen
from tunelab.data.encode.feedback import with_kl_partners
from tunelab.data.examples import Feedback, Message, Pair, PromptOnly, Supervised, TextExample
from tunelab.data.kinds import STAGE_KINDS, kind_of
from tunelab.data.pipeline import build_data
from tunelab.data.report import DataReport, DatasetReport

PROMPT = (Message("user", "What is two plus two?"),)
LONG_PROMPT = (Message("user", "Hi"), Message("assistant", "Hello, how can I help?"), Message("user", "Add 2 and 2."))


def chat_ids(tokenizer: Any, messages: tuple[Message, ...], generation_prompt: bool = False) -> list[int]:
    """What the tokenizer's own chat template gives for these messages (the independent expectation)."""
    dicts = [{"role": m.role, "content": m.content} for m in messages]
    return tokenizer.apply_chat_template(dicts, tokenize=True, return_dict=False,
                                         add_generation_prompt=generation_prompt)


def encoded(stage: str, records: list[Any], tokenizer: Any, **values: Any) -> tuple[Any, DataReport]:
    """The dataset a stage's kind builds from records, and its report."""
    report = DataReport(datasets=[DatasetReport(name="d")])
    return kind_of(stage).build(records, tokenizer, DataSection(**values), report, "train"), report


def test_every_stage_has_one_kind_and_each_kind_its_example_type() -> None:
    assert {stage: kind.example for stage, kind in STAGE_KINDS.items()} == {
        "pt": TextExample, "sft": Supervised, "rm": Pair, "dpo": Pair, "kto": Feedback, "ppo": PromptOnly,
        "grpo": PromptOnly}
    assert {kind.name: kind.columns for kind in STAGE_KINDS.values()} == {
        "text": ("input_ids", "labels"), "supervised": ("input_ids", "labels"),
        "pair": ("chosen_input_ids", "chosen_labels", "rejected_input_ids", "rejected_labels"),
        "feedback": ("input_ids", "labels", "kl_input_ids", "kl_labels", "kto_tags"),
        "prompt": ("input_ids", "labels")}
    with pytest.raises(ValueError, match=r"unknown stage 'sfft'; expected one of pt, sft, .*; did you mean sft\?"):
        kind_of("sfft")


@pytest.mark.parametrize("prompt", [PROMPT, LONG_PROMPT], ids=["one-turn", "multi-turn"])
def test_a_pair_masks_the_prompt_in_both_answers(tiny_tokenizer: Any, prompt: tuple[Message, ...]) -> None:
    chosen, rejected = Message("assistant", "Four."), Message("assistant", "It is five, I think.")
    dataset, report = encoded("dpo", [Pair(prompt=prompt, chosen=chosen, rejected=rejected, dataset="d", row=1)],
                              tiny_tokenizer)
    row = dataset[0]
    assert dataset.column_names == list(kind_of("dpo").columns)
    prompt_len = len(chat_ids(tiny_tokenizer, prompt, generation_prompt=True))
    for name, answer in (("chosen", chosen), ("rejected", rejected)):
        full = chat_ids(tiny_tokenizer, prompt + (answer,))
        assert row[f"{name}_input_ids"] == full
        assert row[f"{name}_labels"] == [IGNORE_INDEX] * prompt_len + full[prompt_len:]
    # the chosen side has sft's tokens for the same conversation; sft also trains earlier answers, a pair never
    sft, _ = encoded("sft", [Supervised(prompt=prompt, response=chosen, dataset="d", row=1)], tiny_tokenizer)
    assert sft[0]["input_ids"] == row["chosen_input_ids"]
    assert sft[0]["labels"][prompt_len:] == row["chosen_labels"][prompt_len:]
    assert (sft[0]["labels"] == row["chosen_labels"]) == (len(prompt) == 1)
    counts = report.datasets[0]
    assert (counts.tokens, counts.tokens_trained, counts.truncated) == (
        len(row["chosen_input_ids"]) + len(row["rejected_input_ids"]),
        len(row["chosen_input_ids"]) + len(row["rejected_input_ids"]) - 2 * prompt_len, 0)


def test_a_pair_is_cut_with_one_budget_sized_by_the_longer_answer(tiny_tokenizer: Any) -> None:
    chosen, rejected = Message("assistant", "Four."), Message("assistant", "It is five, I think, or maybe six.")
    pair = Pair(prompt=LONG_PROMPT, chosen=chosen, rejected=rejected, dataset="d", row=1)
    dataset, report = encoded("rm", [pair], tiny_tokenizer, cutoff_len=12)
    row = dataset[0]
    prompt = chat_ids(tiny_tokenizer, LONG_PROMPT, generation_prompt=True)
    answers = {name: chat_ids(tiny_tokenizer, LONG_PROMPT + (m,))[len(prompt):]
               for name, m in (("chosen", chosen), ("rejected", rejected))}
    source_len, target_len = infer_seqlen(len(prompt), max(map(len, answers.values())), 12)
    for name, answer in answers.items():
        assert row[f"{name}_input_ids"] == prompt[:source_len] + answer[:target_len]
        assert row[f"{name}_labels"] == [IGNORE_INDEX] * source_len + answer[:target_len]
    assert len(row["rejected_input_ids"]) == 12 and report.datasets[0].truncated == 1


def kto_rows() -> list[Feedback]:
    questions = ("What is two plus two?", "Name a colour.", "Say hi.")
    answers = ("Four.", "Loud.", "Hi!")
    return [Feedback(prompt=(Message("user", q),), response=Message("assistant", a), desirable=flag, dataset="d",
                     row=i + 1) for i, (q, a, flag) in enumerate(zip(questions, answers, (True, False, True)))]


def test_kl_partners_are_the_previous_answer_within_each_batch() -> None:
    rows = kto_rows()
    answers = [r.response.content for r in rows]
    assert [r.kl_response.content for r in with_kl_partners(rows, 1000)] == [answers[2], answers[0], answers[1]]
    assert [r.kl_response.content for r in with_kl_partners(rows, 2)] == [answers[1], answers[0], answers[2]]


def test_a_kto_row_and_its_kl_partner(tiny_tokenizer: Any) -> None:
    rows = kto_rows()
    dataset, report = encoded("kto", rows, tiny_tokenizer, preprocessing_batch_size=2)
    assert dataset.column_names == list(kind_of("kto").columns)
    assert dataset["kto_tags"] == [True, False, True]
    for index, partner in enumerate((1, 0, 2)):  # batches [0, 1] and [2]
        row, prompt = dataset[index], rows[index].prompt
        prompt_len = len(chat_ids(tiny_tokenizer, prompt, generation_prompt=True))
        full = chat_ids(tiny_tokenizer, prompt + (rows[index].response,))
        kl_full = chat_ids(tiny_tokenizer, prompt + (rows[partner].response,))
        assert (row["input_ids"], row["labels"]) == (full, [IGNORE_INDEX] * prompt_len + full[prompt_len:])
        assert (row["kl_input_ids"], row["kl_labels"]) == (kl_full,
                                                           [IGNORE_INDEX] * prompt_len + kl_full[prompt_len:])
    assert report.datasets[0].tokens == sum(len(ids) for ids in dataset["input_ids"])


@pytest.mark.parametrize("answer", [Message("assistant", "Four."), None], ids=["with-answer", "without"])
def test_a_prompt_ends_with_the_generation_prompt_and_keeps_its_answer(tiny_tokenizer: Any,
                                                                       answer: Message | None) -> None:
    dataset, report = encoded("grpo", [PromptOnly(prompt=LONG_PROMPT, answer=answer, dataset="d", row=1)],
                              tiny_tokenizer)
    prompt = chat_ids(tiny_tokenizer, LONG_PROMPT, generation_prompt=True)
    reference = chat_ids(tiny_tokenizer, LONG_PROMPT + (answer or Message("assistant", ""),))[len(prompt):]
    assert (dataset[0]["input_ids"], dataset[0]["labels"]) == (prompt, reference)
    assert tiny_tokenizer.decode(reference) == ("Four." if answer else "") + "<|im_end|>\n"
    assert (report.datasets[0].tokens, report.datasets[0].tokens_trained) == (len(prompt), 0)


def test_build_data_reads_a_ranking_dataset_for_dpo(tiny_tokenizer: Any, make_dataset: Any, data_dir: Path) -> None:
    rows = [{"instruction": f"Question {i}?", "chosen": f"Good {i}.", "rejected": f"Bad {i}."} for i in range(4)]
    make_dataset(rows, entry={"ranking": True, "columns": {"prompt": "instruction", "chosen": "chosen",
                                                           "rejected": "rejected"}})
    bundle = build_data(DataSection(dataset="demo", dataset_dir=str(data_dir), val_size=1), tiny_tokenizer, 0, "dpo")
    assert (len(bundle.train), len(bundle.eval), bundle.packing) == (3, 1, "none")
    assert bundle.train.column_names == list(kind_of("dpo").columns)
    first = bundle.train[0]
    assert tiny_tokenizer.decode([t for t in first["chosen_labels"] if t != IGNORE_INDEX]).startswith("Good ")


def test_pair_collator_puts_chosen_rows_before_rejected_ones() -> None:
    collator = kind_of("dpo").collator(0)
    batch = collator([
        {"chosen_input_ids": [5, 6, 7], "chosen_labels": [-100, 6, 7], "rejected_input_ids": [5, 8],
         "rejected_labels": [-100, 8]},
        {"chosen_input_ids": [9], "chosen_labels": [9], "rejected_input_ids": [9, 10, 11, 12],
         "rejected_labels": [-100, -100, 11, 12]}])
    assert batch["input_ids"].tolist() == [[5, 6, 7] + [0] * 5, [9] + [0] * 7, [5, 8] + [0] * 6,
                                           [9, 10, 11, 12] + [0] * 4]
    assert batch["labels"].tolist() == [[-100, 6, 7] + [-100] * 5, [9] + [-100] * 7, [-100, 8] + [-100] * 6,
                                        [-100, -100, 11, 12] + [-100] * 4]
    assert batch["attention_mask"].tolist() == [[1] * 3 + [0] * 5, [1] + [0] * 7, [1] * 2 + [0] * 6,
                                                [1] * 4 + [0] * 4]


def test_feedback_collator_pads_examples_and_kl_partners_apart() -> None:
    batch = kind_of("kto").collator(1)([
        {"input_ids": [5, 6], "labels": [-100, 6], "kl_input_ids": [5, 7, 7], "kl_labels": [-100, 7, 7],
         "kto_tags": True},
        {"input_ids": [8], "labels": [8], "kl_input_ids": [8, 6], "kl_labels": [-100, 6], "kto_tags": False}])
    assert batch["input_ids"].tolist() == [[5, 6] + [1] * 6, [8] + [1] * 7]
    assert batch["labels"].tolist() == [[-100, 6] + [-100] * 6, [8] + [-100] * 7]
    assert batch["attention_mask"].tolist() == [[1, 1] + [0] * 6, [1] + [0] * 7]
    assert batch["kl_input_ids"].tolist() == [[5, 7, 7] + [1] * 5, [8, 6] + [1] * 6]
    assert batch["kl_labels"].tolist() == [[-100, 7, 7] + [-100] * 5, [-100, 6] + [-100] * 6]
    assert batch["kl_attention_mask"].tolist() == [[1] * 3 + [0] * 5, [1] * 2 + [0] * 6]
    assert batch["kto_tags"].tolist() == [True, False]


def test_prompt_collator_pads_prompts_on_the_left() -> None:
    batch = kind_of("ppo").collator(0)([{"input_ids": [5, 6, 7], "labels": [8, 2]},
                                        {"input_ids": [9], "labels": []}])
    assert batch["input_ids"].tolist() == [[0] * 5 + [5, 6, 7], [0] * 7 + [9]]
    assert batch["attention_mask"].tolist() == [[0] * 5 + [1] * 3, [0] * 7 + [1]]
    assert batch["labels"].tolist() == [[8, 2], [-100, -100]]
