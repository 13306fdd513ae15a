"""Reading MMLU / C-Eval / CMMLU folders: CSV layouts detected per file, subjects, categories, answers checked."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from tunelab.eval.errors import EvalError
from tunelab.runtime.suggest import suggest

LETTERS = ("A", "B", "C", "D")
MMLU_COLUMNS = ("question", "A", "B", "C", "D", "answer")
NO_TEST_ANSWERS = "C-Eval's test split has no answers; evaluate split: val"


class ChoiceError(EvalError):
    """A benchmark folder, file, row or setting that cannot be evaluated; the message says how to fix it."""


@dataclass(frozen=True)
class Question:
    """One multiple-choice question (or few-shot example) read from a benchmark CSV row."""

    id: str  # "{subject}:{row_index}", row_index counting data rows from 0
    subject: str  # the file's subject key, e.g. abstract_algebra
    category: str
    question: str
    options: dict[str, str]
    answer: str
    subject_name: str = ""  # the prompt's subject text; "" means the key with underscores as spaces

    @property
    def display_name(self) -> str:
        """The subject as the prompt names it."""
        return self.subject_name or self.subject.replace("_", " ")


def data_root(task_dir: str | Path) -> Path:
    """The folder holding the split folders: task_dir itself, or its data/ subfolder."""
    root = Path(task_dir).expanduser()
    if not root.is_dir():
        raise ChoiceError(f"task_dir: {root} is not a folder; give the benchmark folder (the one holding "
                          "dev/ and test/ or data/)")
    has_splits = any((root / split).is_dir() for split in ("dev", "val", "test"))
    archives = sorted(root.glob("*.zip"))
    if not has_splits and not (root / "data").is_dir() and len(archives) == 1:
        root = unzipped(archives[0])  # LLaMA-Factory's evaluation/<task>/ folders ship the CSVs zipped
        has_splits = any((root / split).is_dir() for split in ("dev", "val", "test"))
    if not has_splits and (root / "data").is_dir():
        return root / "data"
    return root


def unzipped(archive: Path) -> Path:
    """The archive extracted once into tunelab's cache (keyed by its content), extracted atomically."""
    import hashlib
    import shutil
    import tempfile
    import zipfile

    from tunelab.runtime.env import cache_dir

    digest = hashlib.sha1(archive.read_bytes()).hexdigest()[:12]
    target = cache_dir() / "eval" / f"{archive.stem}-{digest}"
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".partial-", dir=target.parent))
    try:
        with zipfile.ZipFile(archive) as handle:
            handle.extractall(staging)
    except zipfile.BadZipFile:
        shutil.rmtree(staging, ignore_errors=True)
        raise ChoiceError(f"task_dir: {archive} is not a readable zip file; unzip it by hand or download it again") from None
    try:
        staging.rename(target)
    except OSError:  # another process extracted it first
        shutil.rmtree(staging, ignore_errors=True)
    return target


def missing_split_hint(root: Path, split: str) -> str:
    """How to fix a split folder that is not there."""
    found = sorted(p.name for p in root.iterdir() if p.is_dir() and any(p.glob("*.csv")))
    hint = f"; this folder has: {', '.join(found)}" if found else "; it has no folder of .csv files"
    if split == "validation":
        hint += " (LLaMA-Factory's 'validation' is the folder 'val')"
    if split == "dev":
        hint += " (few-shot examples come from dev/; add it or set n_shot: 0)"
    if not found:
        hint += ("; unzip the benchmark's .zip here first (LLaMA-Factory's evaluation folders ship zipped)"
                 if any(root.glob("*.zip")) else "; if this holds several benchmarks, give one, e.g. .../mmlu")
    return hint


def split_files(root: Path, split: str) -> dict[str, Path]:
    """Subject key -> CSV file of one split ({subject}_{split}.csv, or {subject}.csv for CMMLU)."""
    folder = root / split
    if not folder.is_dir():
        raise ChoiceError(f"split {split!r}: no folder {folder}{missing_split_hint(root, split)}")
    files = {path.stem.removesuffix(f"_{split}"): path for path in sorted(folder.glob("*.csv"))}
    if not files:
        raise ChoiceError(f"split {split!r}: {folder} has no .csv files; put one CSV per subject there")
    return files


def pick_subjects(files: dict[str, Path], subjects: list[str] | None, folder: Path) -> list[str]:
    """The requested subjects (all when None), each checked against the files."""
    if subjects is None:
        return list(files)
    for name in subjects:
        if name not in files:
            known = list(files)
            shown = ", ".join(known[:12]) + (", ..." if len(known) > 12 else "")
            raise ChoiceError(f"subjects: {name!r} has no file in {folder}{suggest(name, known)}; "
                              f"available: {shown}")
    return list(dict.fromkeys(subjects))


def load_mapping(task_dir: Path, root: Path) -> dict[str, dict[str, str]] | None:
    """mapping.json (subject -> name, category) from task_dir or its data folder, checked; None if absent."""
    path = next((p / "mapping.json" for p in (task_dir, root) if (p / "mapping.json").is_file()), None)
    if path is None:
        return None
    try:
        mapping = json.loads(path.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ChoiceError(f"{path}: not valid JSON ({exc}); fix it or remove it") from None
    if not isinstance(mapping, dict):
        raise ChoiceError(f"{path}: expected an object of subject -> {{\"name\": ..., \"category\": ...}}")
    for key, entry in mapping.items():
        if not (isinstance(entry, dict) and isinstance(entry.get("name"), str)
                and isinstance(entry.get("category"), str)):
            raise ChoiceError(f"{path}, subject {key!r}: needs string fields name and category, e.g. "
                              '{"name": "abstract algebra", "category": "STEM"}')
    return mapping


def subject_info(key: str, mapping: dict[str, dict[str, str]] | None, path: Path) -> tuple[str, str]:
    """(display name, category) of a subject: from mapping.json, else the key with spaces and 'all'."""
    if mapping is None:
        return key.replace("_", " "), "all"
    if key not in mapping:
        raise ChoiceError(f"{path}: subject {key!r} is not in mapping.json{suggest(key, list(mapping))}; "
                          f'add "{key}": {{"name": ..., "category": ...}} there or remove the file')
    return mapping[key]["name"], mapping[key]["category"]


def column_positions(first_row: list[str]) -> tuple[str, dict[str, int]]:
    """(layout, column -> position) from a file's first row: a C-Eval or CMMLU header, or none (MMLU)."""
    names = [cell.strip().lower() for cell in first_row]
    if names[1:6] != ["question", "a", "b", "c", "d"]:
        return "mmlu", {name: i for i, name in enumerate(MMLU_COLUMNS)}
    columns = {"question": 1, "A": 2, "B": 3, "C": 4, "D": 5}
    if "answer" in names:
        columns["answer"] = names.index("answer")
    return ("ceval" if names[0] == "id" else "cmmlu"), columns


def read_csv_rows(path: Path) -> list[tuple[int, list[str]]]:
    """(line number, cells) of every non-blank row; UTF-8 with or without BOM."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f)
            return [(reader.line_num, row) for row in reader if row]
    except UnicodeDecodeError as exc:
        raise ChoiceError(f"{path}: not UTF-8 text ({exc.reason}); re-save it as UTF-8") from None
    except csv.Error as exc:
        raise ChoiceError(f"{path}: unreadable CSV ({exc}); check its quoting") from None


def row_fields(cells: list[str], width: int, columns: dict[str, int], layout: str, where: str) -> dict[str, str]:
    """The question, options and answer of one row, or a ChoiceError naming the row."""
    if len(cells) != width:
        expected = "question,A,B,C,D,answer (no header)" if layout == "mmlu" else "the header's columns"
        raise ChoiceError(f"{where}: {len(cells)} columns, expected {width} ({expected}); fix the row "
                          "(quote cells that contain commas or line breaks)")
    return {name: cells[pos] for name, pos in columns.items()}


def checked_answer(value: str, where: str, split: str) -> str:
    """The answer letter, or a ChoiceError saying what is wrong with it."""
    answer = value.strip()
    if not answer:
        hint = NO_TEST_ANSWERS if split == "test" else "fill in the letter of the right option"
        raise ChoiceError(f"{where}, field answer: empty; {hint}")
    if answer not in LETTERS:
        raise ChoiceError(f"{where}, field answer: {value!r} is not one of A, B, C, D; "
                          "give the letter of the right option")
    return answer


def read_questions(path: Path, subject: str, name: str, category: str, split: str) -> list[Question]:
    """Every row of one subject's CSV as a Question, in file order."""
    rows = read_csv_rows(path)
    if not rows:
        return []
    layout, columns = column_positions(rows[0][1])
    width = len(rows[0][1]) if layout != "mmlu" else len(MMLU_COLUMNS)
    if layout != "mmlu":
        if "answer" not in columns:
            raise ChoiceError(f"{path}: the header has no answer column; {NO_TEST_ANSWERS}")
        rows = rows[1:]
    questions = []
    for index, (line, cells) in enumerate(rows):
        where = f"{path}, row {index} (line {line})"
        values = row_fields(cells, width, columns, layout, where)
        questions.append(Question(id=f"{subject}:{index}", subject=subject, category=category,
                                  question=values["question"], options={k: values[k] for k in LETTERS},
                                  answer=checked_answer(values["answer"], where, split), subject_name=name))
    return questions


def load_split(task_dir: str | Path, split: str, subjects: list[str] | None, strict: bool) -> dict[str, list]:
    """Subject -> questions of one split; strict: every requested subject must have a file."""
    root = data_root(task_dir)
    files = split_files(root, split)
    if not strict and subjects is not None:
        subjects = [s for s in subjects if s in files]
    mapping = load_mapping(Path(task_dir).expanduser(), root)
    return {key: read_questions(files[key], key, *subject_info(key, mapping, files[key]), split)
            for key in pick_subjects(files, subjects, root / split)}


def load_questions(task_dir: str | Path, split: str = "test", subjects: list[str] | None = None) -> list[Question]:
    """All questions of a split (MMLU, C-Eval or CMMLU layout, detected per file), subject by subject."""
    per_subject = load_split(task_dir, split, subjects, strict=True)
    questions = [q for rows in per_subject.values() for q in rows]
    if not questions:
        raise ChoiceError(f"split {split!r} of {task_dir}: the CSV files have no rows")
    return questions


def load_shots(task_dir: str | Path, subjects: list[str] | None) -> dict[str, list[Question]]:
    """Few-shot examples: the dev split per subject, in file order (a subject without a dev file gets [])."""
    per_subject = load_split(task_dir, "dev", subjects, strict=False)
    return {key: per_subject.get(key, []) for key in (subjects if subjects is not None else per_subject)}
