"""Multiple choice by logits: the three CSV layouts, their errors, the exact prompts, batching and scoring."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tunelab.eval.choice import (
    ChoiceError, ChoicePrompt, Question, choice_messages, choice_prompts, evaluate_choice, load_questions, load_shots,
    score_choices,
)
from tunelab.eval.choice_data import NO_TEST_ANSWERS

EN_SYSTEM = "The following are multiple choice questions (with answers) about {}.\n\n"
ZH_SYSTEM = "以下是中国关于{}考试的单项选择题，请选出其中的正确答案。\n\n"


def row(question: str, answer: str, options: str = "wxyz") -> list[str]:
    """question, A-D (option texts built from letters), answer."""
    return [question, *(f"{o} {question[:6]}" for o in options), answer]


def write_csv(path: Path, rows: list[list[str]], header: list[str] | None = None, encoding: str = "utf-8") -> Path:
    """A CSV file written with the csv module (quoting as the real benchmark files do)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding=encoding, newline="") as f:
        writer = csv.writer(f)
        if header is not None:
            writer.writerow(header)
        writer.writerows(rows)
    return path


DEV = [row("What is one plus one?", "B"), row("Is 7 prime, yes or no?", "A"), row("Pick the third one.", "C")]
TEST = {
    "algebra": [row("What is 2+2?", "C"), row("Solve x, given x + 1 = 3, and say why.", "C"), row("Zero?", "A")],
    "biology": [row("Which cell part holds DNA, in most cells?", "B"), row("Green?", "C")],
    "physics": [row("Is light, in vacuum, fast?", "C")],
}


def write_mmlu(root: Path, test: dict[str, list[list[str]]] = TEST, dev_rows: list[list[str]] = DEV) -> Path:
    """Hendrycks' layout: {dev,test}/{subject}_{split}.csv without header."""
    for subject, rows in test.items():
        write_csv(root / "test" / f"{subject}_test.csv", rows)
        write_csv(root / "dev" / f"{subject}_dev.csv", dev_rows)
    return root


def ceval_rows(rows: list[list[str]], explanation: bool = True) -> list[list[str]]:
    """C-Eval rows: id first, an explanation last."""
    return [[str(i), *r, *(["because"] if explanation else [])] for i, r in enumerate(rows)]


def write_ceval(root: Path) -> Path:
    """C-Eval: header id,question,A,B,C,D,answer,explanation (UTF-8 with BOM); test without answers."""
    header = ["id", "question", "A", "B", "C", "D", "answer", "explanation"]
    write_csv(root / "dev" / "advanced_mathematics_dev.csv", ceval_rows(DEV), header, "utf-8-sig")
    write_csv(root / "val" / "advanced_mathematics_val.csv", ceval_rows(TEST["algebra"], False), header[:7],
              "utf-8-sig")
    write_csv(root / "test" / "advanced_mathematics_test.csv", [[str(i), *r[:5]] for i, r in enumerate(DEV)],
              header[:6])
    (root / "mapping.json").write_text(json.dumps({"advanced_mathematics": {"name": "高等数学", "category": "STEM"}}),
                                       encoding="utf-8")
    return root


def write_cmmlu(root: Path) -> Path:
    """CMMLU: {dev,test}/{subject}.csv with header ,Question,A,B,C,D,Answer."""
    header = ["", "Question", "A", "B", "C", "D", "Answer"]
    write_csv(root / "dev" / "agronomy.csv", [[str(i), *r] for i, r in enumerate(DEV)], header)
    write_csv(root / "test" / "agronomy.csv", [[str(i), *r] for i, r in enumerate(TEST["biology"])], header)
    return root


@pytest.fixture
def mmlu_dir(tmp_path: Path) -> Path:
    return write_mmlu(tmp_path / "mmlu")


def error_of(call: Any, *args: Any, **kwargs: Any) -> str:
    """The ChoiceError message a call raises."""
    with pytest.raises(ChoiceError) as info:
        call(*args, **kwargs)
    return str(info.value)


# ---------------------------------------------------------------------------------------------- reading

def test_mmlu_layout_without_header_or_mapping(mmlu_dir: Path) -> None:
    questions = load_questions(mmlu_dir)
    assert [q.id for q in questions] == ["algebra:0", "algebra:1", "algebra:2", "biology:0", "biology:1", "physics:0"]
    first = questions[1]
    assert first.question == "Solve x, given x + 1 = 3, and say why."
    assert first.options == {"A": "w Solve ", "B": "x Solve ", "C": "y Solve ", "D": "z Solve "}
    assert (first.subject, first.category, first.answer, first.display_name) == ("algebra", "all", "C", "algebra")


def test_subject_name_default_turns_underscores_into_spaces(tmp_path: Path) -> None:
    root = write_mmlu(tmp_path / "m", {"abstract_algebra": TEST["algebra"]})
    assert load_questions(root)[0].display_name == "abstract algebra"


def test_ceval_layout_header_bom_and_mapping(tmp_path: Path) -> None:
    root = write_ceval(tmp_path / "ceval")
    questions = load_questions(root, split="val")
    assert [q.answer for q in questions] == ["C", "C", "A"]
    assert questions[0].question == "What is 2+2?"  # the BOM did not end up in the header or the id column
    assert (questions[0].subject_name, questions[0].category) == ("高等数学", "STEM")
    shots = load_shots(root, ["advanced_mathematics"])["advanced_mathematics"]
    assert [s.answer for s in shots] == ["B", "A", "C"] and shots[2].options["C"] == "y Pick t"


def test_cmmlu_layout_inside_data_folder(tmp_path: Path) -> None:
    root = tmp_path / "cmmlu"
    write_cmmlu(root / "data")
    (root / "mapping.json").write_text(json.dumps({"agronomy": {"name": "农学", "category": "Other"}}),
                                       encoding="utf-8")
    questions = load_questions(root)
    assert [(q.id, q.answer, q.display_name, q.category) for q in questions] == [
        ("agronomy:0", "B", "农学", "Other"), ("agronomy:1", "C", "农学", "Other")]
    assert questions[1].options["C"] == "y Green?"
    assert list(load_shots(root, None)) == ["agronomy"]


def test_subjects_filter_and_shots_of_missing_dev_file(mmlu_dir: Path) -> None:
    (mmlu_dir / "dev" / "physics_dev.csv").unlink()
    assert {q.subject for q in load_questions(mmlu_dir, subjects=["physics", "biology"])} == {"physics", "biology"}
    assert load_shots(mmlu_dir, ["physics", "biology"])["physics"] == []


# ---------------------------------------------------------------------------------------------- errors

def test_missing_folder_and_split(tmp_path: Path, mmlu_dir: Path) -> None:
    assert "is not a folder" in error_of(load_questions, tmp_path / "nowhere")
    message = error_of(load_questions, mmlu_dir, split="validation")
    assert "split 'validation'" in message and "this folder has: dev, test" in message and "'val'" in message
    (mmlu_dir.parent / "bench.zip").write_bytes(b"")
    assert "unzip" in error_of(load_questions, mmlu_dir.parent)


def test_row_with_missing_columns_names_file_and_row(mmlu_dir: Path) -> None:
    path = write_csv(mmlu_dir / "test" / "algebra_test.csv", [row("fine?", "A"), row("short?", "B")[:5]])
    message = error_of(load_questions, mmlu_dir)
    assert f"{path}, row 1 (line 2): 5 columns, expected 6" in message and "quote cells" in message


def test_answer_not_a_letter(mmlu_dir: Path) -> None:
    write_csv(mmlu_dir / "test" / "biology_test.csv", [row("odd?", "E")])
    assert "biology_test.csv, row 0 (line 1), field answer: 'E' is not one of A, B, C, D" in error_of(
        load_questions, mmlu_dir)


def test_empty_answer_in_the_evaluated_split(tmp_path: Path, mmlu_dir: Path) -> None:
    write_csv(mmlu_dir / "test" / "biology_test.csv", [row("odd?", " ")])
    message = error_of(load_questions, mmlu_dir)
    assert "field answer: empty" in message and NO_TEST_ANSWERS in message
    root = write_ceval(tmp_path / "ceval")  # the real C-Eval test split has no answer column at all
    message = error_of(load_questions, root, split="test")
    assert "no answer column" in message and "evaluate split: val" in message


def test_unknown_subject_and_subject_missing_from_mapping(mmlu_dir: Path) -> None:
    assert "did you mean biology?" in error_of(load_questions, mmlu_dir, subjects=["biolgy"])
    (mmlu_dir / "mapping.json").write_text(json.dumps({"algebra": {"name": "algebra", "category": "STEM"}}))
    assert "subject 'biology' is not in mapping.json" in error_of(load_questions, mmlu_dir)
    (mmlu_dir / "mapping.json").write_text(json.dumps({"algebra": {"name": "algebra"}}))
    assert "needs string fields name and category" in error_of(load_questions, mmlu_dir)


def test_too_few_dev_rows_for_n_shot(mmlu_dir: Path, tiny_tokenizer: Any) -> None:
    questions = load_questions(mmlu_dir)
    shots = load_shots(mmlu_dir, ["algebra", "biology", "physics"])
    message = error_of(choice_prompts, questions, shots, tiny_tokenizer, 5, "en", 512)
    assert "subject 'algebra': 3 dev rows" in message and "n_shot is 5" in message and "set n_shot: 3" in message
    shots["algebra"] = []
    assert "subject 'algebra': 0 dev rows" in error_of(choice_prompts, questions, shots, tiny_tokenizer, 1, "en", 512)


def test_bad_settings(mmlu_dir: Path, tiny_tokenizer: Any, tiny_llama: Any) -> None:
    bundle = SimpleNamespace(model=tiny_llama, tokenizer=tiny_tokenizer)
    assert "lang: 'eng' is not one of en, zh; did you mean en?" in error_of(evaluate_choice, bundle, mmlu_dir,
                                                                          lang="eng")
    assert "batch_size: 0 must be" in error_of(evaluate_choice, bundle, mmlu_dir, batch_size=0)


# ---------------------------------------------------------------------------------------------- prompts

def chatml(messages: list[tuple[str, str]]) -> str:
    """What the ChatML template renders, generation prompt included."""
    return "".join(f"<|im_start|>{role}\n{text}<|im_end|>\n" for role, text in messages) + "<|im_start|>assistant\n"


def test_english_two_shot_prompt_exactly(mmlu_dir: Path, tiny_tokenizer: Any) -> None:
    question = load_questions(mmlu_dir, subjects=["algebra"])[0]
    shots = load_shots(mmlu_dir, ["algebra"])
    first = ("What is one plus one?\nA. w What i\nB. x What i\nC. y What i\nD. z What i\nAnswer:")
    second = ("Is 7 prime, yes or no?\nA. w Is 7 p\nB. x Is 7 p\nC. y Is 7 p\nD. z Is 7 p\nAnswer:")
    own = "What is 2+2?\nA. w What i\nB. x What i\nC. y What i\nD. z What i\nAnswer:"
    expected = [("user", EN_SYSTEM.format("algebra") + first), ("assistant", "B"), ("user", second),
                ("assistant", "A"), ("user", own)]
    assert [(m["role"], m["content"]) for m in choice_messages(question, shots["algebra"][:2], "en")] == expected
    [prompt] = choice_prompts([question], shots, tiny_tokenizer, 2, "en", 4096)
    assert prompt.shots_used == 2 and not prompt.too_long
    assert tiny_tokenizer.decode(prompt.input_ids) == chatml(expected)
    assert prompt.input_ids == tiny_tokenizer(chatml(expected), add_special_tokens=False)["input_ids"]


def test_chinese_two_shot_prompt_uses_the_mapping_name(tmp_path: Path, tiny_tokenizer: Any) -> None:
    root = write_ceval(tmp_path / "ceval")
    question = load_questions(root, split="val")[0]
    shots = load_shots(root, ["advanced_mathematics"])
    [prompt] = choice_prompts([question], shots, tiny_tokenizer, 2, "zh", 4096)
    first = "What is one plus one?\nA. w What i\nB. x What i\nC. y What i\nD. z What i\n答案："
    second = "Is 7 prime, yes or no?\nA. w Is 7 p\nB. x Is 7 p\nC. y Is 7 p\nD. z Is 7 p\n答案："
    own = "What is 2+2?\nA. w What i\nB. x What i\nC. y What i\nD. z What i\n答案："
    expected = [("user", ZH_SYSTEM.format("高等数学") + first), ("assistant", "B"), ("user", second),
                ("assistant", "A"), ("user", own)]
    assert tiny_tokenizer.decode(prompt.input_ids) == chatml(expected)


def test_zero_shot_puts_the_system_text_on_the_question(mmlu_dir: Path) -> None:
    question = load_questions(mmlu_dir, subjects=["physics"])[0]
    [message] = choice_messages(question, [], "en")
    assert message["content"].startswith(EN_SYSTEM.format("physics") + "Is light, in vacuum, fast?\nA. ")


def test_shots_are_dropped_from_the_front_until_the_prompt_fits(mmlu_dir: Path, tiny_tokenizer: Any,
                                                                  tiny_llama: Any) -> None:
    question = load_questions(mmlu_dir, subjects=["algebra"])[0]
    shots = load_shots(mmlu_dir, ["algebra"])
    kept = {"algebra": shots["algebra"][1:]}  # the prompt with only the second shot
    lengths = [len(choice_prompts([question], s, tiny_tokenizer, n, "en", 4096)[0].input_ids)
               for s, n in ((shots, 0), (kept, 1), (shots, 2))]
    assert lengths[0] < lengths[1] < lengths[2]
    [fitted] = choice_prompts([question], shots, tiny_tokenizer, 2, "en", lengths[1])
    text = tiny_tokenizer.decode(fitted.input_ids)
    assert (fitted.shots_used, fitted.shots_wanted, len(fitted.input_ids)) == (1, 2, lengths[1])
    assert "Is 7 prime" in text and "one plus one" not in text  # the first shot went, the second stayed
    [too_long] = choice_prompts([question], shots, tiny_tokenizer, 2, "en", lengths[0] - 1)
    assert too_long.too_long and too_long.input_ids == []
    result = score_choices(tiny_llama, tiny_tokenizer, [fitted, too_long], batch_size=2)
    assert (result.fewer_shots, result.too_long, result.questions) == (1, ["algebra:0"], 2)
    assert result.records[1]["predict"] is None and result.records[1]["correct"] is False


# ---------------------------------------------------------------------------------------------- scoring

def test_batched_scores_equal_unbatched(mmlu_dir: Path, tiny_tokenizer: Any, make_tiny_llama: Any) -> None:
    import torch

    questions = load_questions(mmlu_dir)
    prompts = choice_prompts(questions, load_shots(mmlu_dir, None), tiny_tokenizer, 1, "en", 4096)
    assert len({len(p.input_ids) for p in prompts}) > 3  # lengths differ, so a batch of 4 is padded
    model = make_tiny_llama(seed=3)
    calls: list[tuple[int, int]] = []
    one = score_choices(model, tiny_tokenizer, prompts, batch_size=1)
    four = score_choices(model, tiny_tokenizer, prompts, batch_size=4, progress=lambda *a: calls.append(a))
    assert calls == [(4, 6), (6, 6)]
    assert [r["predict"] for r in one.records] == [r["predict"] for r in four.records]
    for a, b in zip(one.records, four.records):
        assert a["id"] == b["id"] and a["probs"] == pytest.approx(b["probs"], abs=1e-5)
    # and batch 1 is the plain unpadded forward pass
    letters = [tiny_tokenizer.encode(x, add_special_tokens=False)[-1] for x in "ABCD"]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([prompts[4].input_ids])).logits[0, -1, letters]
    assert list(one.records[4]["probs"].values()) == pytest.approx(torch.softmax(logits, -1).tolist(), abs=1e-6)
    assert len(set(round(p, 6) for r in four.records for p in r["probs"].values())) > 4  # not constant


class Favouring:
    """A stand-in model whose next-token logits favour one token everywhere."""

    def __init__(self, vocab_size: int, token: int) -> None:
        import torch

        self.vocab_size, self.token, self.widths, self.positions = vocab_size, token, [], []
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def parameters(self) -> Any:
        return iter([self.weight])

    def forward(self, input_ids: Any, attention_mask: Any = None, position_ids: Any = None,
                logits_to_keep: int = 0) -> Any:
        import torch

        self.widths.append((tuple(input_ids.shape), int(attention_mask[:, 0].sum()), logits_to_keep))
        self.positions.append(position_ids)
        logits = torch.zeros(input_ids.shape[0], 1, self.vocab_size)
        logits[..., self.token] = 4.0
        return SimpleNamespace(logits=logits)

    __call__ = forward


def test_forced_logits_give_c_and_the_accuracies(mmlu_dir: Path, tiny_tokenizer: Any) -> None:
    mapping = {"algebra": {"name": "algebra", "category": "STEM"}, "physics": {"name": "physics", "category": "STEM"},
               "biology": {"name": "biology", "category": "Other"}}
    (mmlu_dir / "mapping.json").write_text(json.dumps(mapping))
    model = Favouring(len(tiny_tokenizer), tiny_tokenizer.encode("C", add_special_tokens=False)[-1])
    result = evaluate_choice(SimpleNamespace(model=model, tokenizer=tiny_tokenizer), mmlu_dir, n_shot=2,
                             batch_size=4)
    assert {r["predict"] for r in result.records} == {"C"}
    assert result.records[0]["probs"]["C"] == pytest.approx(2.718281828**4 / (2.718281828**4 + 3), rel=1e-6)
    assert result.subjects == pytest.approx({"algebra": 200 / 3, "biology": 50.0, "physics": 100.0})
    assert result.categories == pytest.approx({"Average": 400 / 6, "Other": 50.0, "STEM": 75.0})
    assert list(result.categories)[0] == "Average" and result.average == pytest.approx(400 / 6)
    assert [r["correct"] for r in result.records] == [True, True, False, False, True, True]
    # longest first, left padded (the shortest row of the first batch starts with padding), last logits only
    assert [w[0][0] for w in model.widths] == [4, 2] and model.widths[0][1] < 4 and model.widths[0][2] == 1
    assert model.widths[0][0][1] > model.widths[1][0][1]
    positions, mask = model.positions[0][-1], (model.positions[0][-1] > 0).sum() + 1  # the shortest row
    assert positions.tolist() == [0] * (len(positions) - int(mask)) + list(range(int(mask)))
    data = json.loads(json.dumps(result.to_dict()))
    assert data["settings"]["n_shot"] == 2 and data["records"][0]["shots"] == 2 and data["questions"] == 6


def test_evaluate_with_a_tiny_llama_restores_train_mode(mmlu_dir: Path, tiny_tokenizer: Any, tiny_llama: Any) -> None:
    tiny_llama.train()
    result = evaluate_choice(SimpleNamespace(model=tiny_llama, tokenizer=tiny_tokenizer), mmlu_dir, n_shot=3,
                             batch_size=8, subjects=["biology"])
    assert tiny_llama.training and result.questions == 2 and result.fewer_shots == 0
    assert all(r["shots"] == 3 and sum(r["probs"].values()) == pytest.approx(1.0) for r in result.records)


def test_a_question_built_by_hand_scores_too(tiny_tokenizer: Any, tiny_llama: Any) -> None:
    question = Question("s:0", "s", "all", "Hello there?", dict(zip("ABCD", "wxyz")), "B")
    ids = tiny_tokenizer("Hello there? Answer:", add_special_tokens=False)["input_ids"]
    result = score_choices(tiny_llama, tiny_tokenizer, [ChoicePrompt(question, ids, 0)], batch_size=8)
    assert result.questions == 1 and result.fewer_shots == 0 and result.records[0]["predict"] in "ABCD"


def test_import_does_not_load_torch() -> None:
    code = "import sys, tunelab.eval.choice; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
