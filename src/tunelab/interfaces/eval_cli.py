"""`tunelab eval CONFIG`, `tunelab eval score FILE` and `tunelab eval extract`: thin wrappers over tunelab.eval."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from tunelab.text.extract import JSON, ExtractorSpec

SUBCOMMANDS = {"score": "eval-score", "extract": "eval-extract"}
COMMANDS = ("tunelab eval CONFIG.yaml [key=value ...] [--compare]", "tunelab eval score PREDICTIONS.jsonl",
            "tunelab eval extract --extractor NAME --text TEXT")
NOT_YET = {"judge": "LLM-judge evaluation is a task kind, not a command: add a task with type: judge to eval_tasks "
                   "and run tunelab eval CONFIG.yaml (see docs/judge.md and examples/judge_task.yaml)"}


def route(argv: list[str]) -> list[str]:
    """`eval score ...` -> the hidden `eval-score` command (so `eval CONFIG` keeps its plain form)."""
    if len(argv) >= 2 and argv[0] == "eval" and argv[1] in SUBCOMMANDS:
        return [SUBCOMMANDS[argv[1]]] + argv[2:]
    return argv


def unknown_command(word: str) -> str | None:
    """The message for `tunelab eval WORD` when WORD is a command name rather than a config path (judge, scor)."""
    path = Path(word)
    if path.exists() or path.suffix or "/" in word or "\\" in word:
        return None
    from tunelab.runtime.suggest import suggest

    head = NOT_YET.get(word) or f"there is no eval command {word!r} and no config file of that name" + suggest(
        word, SUBCOMMANDS)
    return f"{head}; the eval commands are: {'; '.join(COMMANDS)}"


def cmd_eval(args: argparse.Namespace) -> int:
    """`tunelab eval CONFIG`: score the model on the config's eval_tasks and write the report."""
    from tunelab.config.load import load_config
    from tunelab.eval.errors import EvalError
    from tunelab.eval.run import evaluate
    from tunelab.runtime.logging import info, quiet_libraries

    message = unknown_command(args.config)
    if message:
        raise EvalError(f"eval {args.config}: {message}")
    quiet_libraries()
    config = load_config(args.config, args.overrides, purpose="eval")
    evaluate(config, compare=args.compare)
    info(f"report: {Path(config.train.output_dir) / 'eval_results.md'} (also .json, .png; per-row: rows/)")
    return 0


def inline_json(text: str | None, flag: str, fix: str) -> JSON:
    """A flag's value that is a JSON object when it starts with '{', else the text itself (a name or a path)."""
    if text is None or not text.lstrip().startswith("{"):
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SystemExit(f"tunelab: {flag} is not valid JSON ({exc.msg}); {fix}") from None


def parse_spec(text: str | None) -> ExtractorSpec | None:
    """An extractor given on the command line: a name, or a JSON object."""
    return inline_json(text, "--extractor", "e.g. '{\"name\": \"regex\", \"pattern\": \"答案[:：](?P<answer>.+)\"}'")


def cmd_eval_score(args: argparse.Namespace) -> int:
    from tunelab.config.eval_checks import task_problems
    from tunelab.config.errors import ConfigError
    from tunelab.config.eval_tasks import task_spec
    from tunelab.eval.predictions import file_answers, read_predictions
    from tunelab.eval.score import score_task

    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None
    fields: dict[str, object] = {"name": Path(args.predictions).stem, "type": args.type, "dataset": "-",
                                 "metrics": metrics, "extractor": parse_spec(args.extractor)}
    if args.labels:
        fields["labels"] = args.labels.split(",")
    layout = {"format_regex": args.format_regex, "format_items": args.format_items,
              "format_schema": inline_json(args.format_schema, "--format-schema", "give a schema object or the path of a .json file")}
    fields.update({key: value for key, value in layout.items() if value is not None})
    task = task_spec(**fields)
    problems = task_problems("command line", task, fields)
    if problems:
        raise ConfigError(problems)
    score = score_task(task, file_answers(read_predictions(args.predictions)))
    summary = score.to_dict()
    for name, value in score.metrics.items():
        print(f"{name}: {value:.4f}")
    print(f"rows: {score.scored} scored, {len(score.unextracted)} unextracted"
          + (f" ({', '.join(score.unextracted[:10])}{' ...' if len(score.unextracted) > 10 else ''})"
             if score.unextracted else ""))
    print_format_failures(score.details.get("format"), score.scored)
    if "hint" in score.details:
        print(f"hint: {score.details['hint']}")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
    if args.rows:
        with Path(args.rows).open("w", encoding="utf-8") as handle:
            for row in score.rows:
                handle.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
    return 0


def positive_int(text: str) -> int:
    """An argparse type: a whole number above 0."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number above 0")
    return int(text)


def print_format_failures(details: object, scored: int, shown: int = 10) -> None:
    """The answers not in the expected layout: id and reason, the first few (--json/--rows list them all)."""
    if not isinstance(details, dict) or not details.get("failed"):
        return
    failed = details["failed"]
    print(f"format: {len(failed)} of {scored} answers not in the layout")
    for entry in failed[:shown]:
        print(f"  {entry['id']}: {entry['why']}")
    if len(failed) > shown:
        print(f"  ... {len(failed) - shown} more (--json or --rows lists them all)")


def cmd_eval_extract(args: argparse.Namespace) -> int:
    from tunelab.config.errors import ConfigError, Problem
    from tunelab.text.extract import ExtractorError, build_extractor

    try:
        extractor = build_extractor(parse_spec(args.extractor))
    except ExtractorError as exc:
        raise ConfigError([Problem("--extractor", str(exc))]) from None
    text = sys.stdin.read() if args.text == "-" else args.text
    value = extractor(text, args.prompt or "")
    print(json.dumps(value, ensure_ascii=False) if value is not None else "(nothing extracted)")
    return 0 if value is not None else 1


class GeneratingKinds:
    """The kinds `eval score` can score, read from the kind table only when argparse checks a value or prints
    help (importing the table at startup would slow every tunelab command down by about a second)."""

    def names(self) -> list[str]:
        """The generating kinds, in table order."""
        from tunelab.eval.kinds import KINDS

        return [name for name, kind in KINDS.items() if kind.generates]

    def __contains__(self, name: object) -> bool:
        return name in self.names()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


class Subcommands(Protocol):
    """argparse's subparsers action (its class is private)."""

    def add_parser(self, name: str, **kwargs: str) -> argparse.ArgumentParser:
        """A new subcommand's parser."""


def add_eval_parsers(commands: Subcommands, add_config_args: Callable[[argparse.ArgumentParser], None]) -> None:
    """The eval command and its two helpers."""
    evaluate = commands.add_parser("eval", help="score a model (or --compare several) on eval_tasks; also "
                                   "`eval score FILE` and `eval extract`", description="tunelab eval CONFIG "
                                   "[key=value ...] [--compare] | tunelab eval score PREDICTIONS.jsonl --metrics "
                                   "... | tunelab eval extract --extractor NAME --text ...")
    add_config_args(evaluate)
    evaluate.add_argument("--compare", action="store_true", help="evaluate eval_models (default: the base model "
                          "and base + adapter_name_or_path) side by side")
    evaluate.set_defaults(func=cmd_eval)

    score = commands.add_parser("eval-score", help="(tunelab eval score) score a generated_predictions.jsonl")
    score.add_argument("predictions", help="generated_predictions.jsonl (tunelab's or LLaMA-Factory's)")
    score.add_argument("--metrics", help="comma list, e.g. bleu-4,rouge-1,rouge-2,rouge-l (default: the type's)")
    kind = score.add_argument("--type", default="generation")
    kind.choices = GeneratingKinds()  # set after add_argument, which would format (and so import) the choices
    score.add_argument("--extractor", help="extractor name or JSON object (default: the type's)")
    score.add_argument("--labels", help="classification: comma list of allowed labels")
    score.add_argument("--format-regex", help="generation, metric format: the answer's layout, a regex with "
                       "named groups, e.g. '(?P<question>.+)\\nA\\. (?P<a>.+)...'")
    score.add_argument("--format-items", type=positive_int, help="generation: the answer holds this many items, each "
                       "matching --format-regex")
    score.add_argument("--format-schema", help="generation, metric format: a JSON schema (inline or a .json file) "
                       "the answer must satisfy (needs jsonschema)")
    score.add_argument("--json", help="write the scores to this JSON file")
    score.add_argument("--rows", help="write per-row scores to this JSONL file")
    score.set_defaults(func=cmd_eval_score)

    extract = commands.add_parser("eval-extract", help="(tunelab eval extract) try an extractor on a text")
    extract.add_argument("--extractor", required=True, help="name (text, first_line, regex, choice, number, json, "
                         "list, letter_list, letter_set) or JSON object with parameters")
    extract.add_argument("--text", required=True, help="the generated text ('-' reads standard input)")
    extract.add_argument("--prompt", help="the prompt (the choice extractor reads option texts from it)")
    extract.set_defaults(func=cmd_eval_extract)
