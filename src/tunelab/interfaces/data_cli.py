"""`tunelab data tokenize | preview | stats | validate | convert | register | dedup | split | length-set |
synth`: thin wrappers over tunelab.data.tools.

Each subcommand is one row of COMMANDS (help, argument adder, handler); a new one (validate, stats, ...) is a new
row. Handlers raise DataError for anything the user can fix; it is printed without a traceback, exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from tunelab.config.schema import RunConfig

EXIT_DATA = 2


@dataclass(frozen=True)
class Command:
    """One `tunelab data` subcommand."""

    help: str
    add_args: Callable[[argparse.ArgumentParser], None]
    handler: Callable[[argparse.Namespace], int]


def say(lines: list[str]) -> None:
    """Print a command's result lines on standard output."""
    for line in lines:
        print(line)


def cmd_convert(args: argparse.Namespace) -> int:
    """`tunelab data convert`: map columns, write alpaca/sharegpt rows, optionally register the output."""
    from tunelab.data.tools import convert as tool
    from tunelab.data.tools.convert_rules import parse_rules
    from tunelab.data.tools.register import describe, register

    rules = parse_rules(args.set or [], args.template or [], args.extract or [], args.where or [], args.keep_unmatched,
                        args.extract_all or [], args.each or [])
    mapping = tool.parse_map(args.map or [], rules.provided())
    out = Path(args.out)
    report = tool.convert(Path(args.input), args.to, mapping, out, args.sheet, args.keep_empty, rules)
    say(tool.describe(report, out, args.to, args.keep_empty, args.keep_unmatched))
    if args.register or args.name:
        # alpaca keeps system/history as fields of those names; sharegpt folds history into the conversation
        used = ("system", "history") if args.to == "alpaca" else ("system",)
        columns = {key: key for key in used if key in mapping or key in rules.provided()}
        say(describe(register(out, args.name or out.stem, formatting=args.to, columns=columns or None, fresh=True,
                              keep_empty=args.keep_empty)))
    return 0


def add_convert_args(parser: argparse.ArgumentParser) -> None:
    """Arguments of `tunelab data convert`."""
    parser.add_argument("input", help="xlsx, csv, json or jsonl file with one example per row")
    parser.add_argument("--to", required=True, choices=["alpaca", "sharegpt"], help="output format")
    parser.add_argument("--map", action="append", metavar="FIELD=COLUMN,...",
                        help="which input column (or --extract field) holds each field: instruction and output "
                             "required unless --set or --template gives them; input, system and history optional "
                             "(e.g. --map instruction=问题,output=答案)")
    parser.add_argument("--set", action="append", metavar="FIELD=TEXT",
                        help="the same text in every row, e.g. --set instruction=\"请根据阅读文本出题\" (\\n is a line "
                             "break); one field per --set")
    parser.add_argument("--template", action="append", metavar="FIELD=TEXT",
                        help="a field built from {COLUMN} and {FIELD} placeholders, e.g. --template "
                             "output=\"{题目}\\n{选项}\" ({{ and }} are braces)")
    parser.add_argument("--extract", action="append", metavar="COLUMN=REGEX",
                        help="search the column with a regex; its named groups (?P<name>...) become fields for "
                             "--map, --template and --where; rows it misses are listed and not written")
    parser.add_argument("--extract-all", action="append", metavar="COLUMN=REGEX",
                        help="find every match of the regex in the column (several questions in one cell); item k "
                             "holds the k-th match of each --extract-all, and its number {n}")
    parser.add_argument("--each", action="append", metavar="FIELD=TEMPLATE",
                        help="lay out each --extract-all item with the template ({group} and {n} placeholders), one "
                             "per line, into FIELD for --map, --template and --where; a row with no match, or "
                             "patterns matching a different number of times, is unmatched")
    parser.add_argument("--where", action="append", metavar="CONDITION",
                        help="keep only rows where COLUMN=VALUE, COLUMN!=VALUE, COLUMN~REGEX or COLUMN!~REGEX "
                             "(several are ANDed); the count filtered out is printed")
    parser.add_argument("--keep-unmatched", action="store_true",
                        help="also write rows an --extract or --extract-all pattern misses (their fields empty)")
    parser.add_argument("--sheet", help="xlsx: sheet name or 1-based number (default: the first sheet)")
    parser.add_argument("--out", required=True, help="output file: .json (pretty) or .jsonl")
    parser.add_argument("--keep-empty", action="store_true", help="also write rows whose output is empty")
    parser.add_argument("--name", help="register the output under this name (implies --register)")
    parser.add_argument("--register", action="store_true",
                        help="add the output to dataset_info.json in its folder (name: --name, else the file stem)")


def cmd_register(args: argparse.Namespace) -> int:
    """`tunelab data register`: validate the file, then add or update its dataset_info.json entry."""
    from tunelab.data.tools.files import parse_pairs
    from tunelab.data.tools.register import column_keys, describe, register, tag_keys

    columns = parse_pairs(args.columns or [], column_keys(), "--columns", "prompt=instruction,response=output",
                          allow_empty=True)
    tags = parse_pairs(args.tags or [], tag_keys(), "--tags", "role_tag=role,content_tag=content", allow_empty=True)
    result = register(Path(args.file), args.name or Path(args.file).stem, formatting=args.formatting,
                      columns=columns or None, tags=tags or None, ranking=args.ranking,
                      dataset_dir=Path(args.dataset_dir) if args.dataset_dir else None, force=args.force)
    say(describe(result))
    return 0


def add_register_args(parser: argparse.ArgumentParser) -> None:
    """Arguments of `tunelab data register`."""
    parser.add_argument("file", help="the data file (json, jsonl, csv, ...)")
    parser.add_argument("--name", help="the dataset name to use in configs (dataset: NAME; default: the file's "
                        "name without its extension)")
    parser.add_argument("--formatting", choices=["alpaca", "sharegpt", "openai"],
                        help="row format (default: the entry's current one, else alpaca)")
    parser.add_argument("--columns", action="append", metavar="KEY=FIELD,...",
                        help="which field holds each part, e.g. prompt=question,response=answer or messages=messages; "
                             "KEY= removes a key")
    parser.add_argument("--tags", action="append", metavar="KEY=VALUE,...",
                        help="sharegpt/openai message keys and roles, e.g. role_tag=role,content_tag=content")
    parser.add_argument("--ranking", action=argparse.BooleanOptionalAction, default=None,
                        help="preference data (chosen/rejected) for rm/dpo")
    parser.add_argument("--dataset-dir", help="folder of dataset_info.json (default: the file's folder)")
    parser.add_argument("--force", action="store_true", help="let NAME point at this file although it is "
                        "registered for another one")


def cmd_dedup(args: argparse.Namespace) -> int:
    """`tunelab data dedup`: print duplicate groups; --out writes the rows without them, --report the JSON."""
    from tunelab.data.tools.dedup import describe, find_duplicates, kept_rows
    from tunelab.data.tools.files import check_writable, load_rows, write_rows

    file = Path(args.file)
    if args.out:
        check_writable(Path(args.out))
    fields = [name.strip() for name in args.key.split(",") if name.strip()] if args.key else None
    rows = load_rows(file)
    report = find_duplicates(rows, file, fields, args.normalize)
    say(describe(report))
    if args.out:
        write_rows(Path(args.out), kept_rows(rows, report))
        say([f"wrote {report.rows - report.dropped} rows to {args.out} (the first row of each group kept)"])
    if args.report:
        write_json(Path(args.report), report.to_dict())
        say([f"report: {args.report}"])
    return 0


def add_dedup_args(parser: argparse.ArgumentParser) -> None:
    """Arguments of `tunelab data dedup`."""
    parser.add_argument("file", help="json, jsonl or csv file")
    parser.add_argument("--out", help="write the rows without duplicates here (may be the input file)")
    parser.add_argument("--key", metavar="FIELDS", help="comma list of fields to compare (default: all text fields)")
    parser.add_argument("--normalize", choices=["none", "whitespace", "punct"], default="punct",
                        help="none: exact matches only; whitespace: also NFKC (full-width = half-width), case and "
                             "whitespace; punct (default): also ignore punctuation, Chinese included")
    parser.add_argument("--report", metavar="JSON", help="write every group and the counts to this JSON file")


def cmd_split(args: argparse.Namespace) -> int:
    """`tunelab data split`: write the seeded parts, print their sizes, optionally register them."""
    from tunelab.data.tools.register import describe
    from tunelab.data.tools.split import split_file

    parts, registrations = split_file(Path(args.file), args.val, args.test, args.seed,
                                      Path(args.out_dir) if args.out_dir else None, args.register)
    say([f"{part.name}: {part.rows} rows -> {part.path}" for part in parts])
    for result in registrations:
        say(describe(result))
    return 0


def add_split_args(parser: argparse.ArgumentParser) -> None:
    """Arguments of `tunelab data split`."""
    parser.add_argument("file", help="json, jsonl or csv file")
    parser.add_argument("--val", required=True, help="validation rows: a fraction (0.1) or a count (100)")
    parser.add_argument("--test", help="test rows: a fraction (0.1) or a count (100); default no test part")
    parser.add_argument("--seed", type=int, default=42, help="shuffle seed (default 42): same seed, same split")
    parser.add_argument("--out-dir", help="folder for NAME_train/NAME_val/NAME_test (default: the file's folder)")
    parser.add_argument("--register", action="store_true", help="register the parts as NAME_train, NAME_val, "
                        "NAME_test in the output folder's dataset_info.json")


def cmd_length_set(args: argparse.Namespace) -> int:
    """`tunelab data length-set`: write a length-control test set and register it."""
    from tunelab.data.tools.length_set import LengthSet, describe as rows_written, read_scenarios, target_lengths, \
        write_length_set
    from tunelab.data.tools.register import describe

    template = Path(args.template_file).read_text(encoding="utf-8").strip() if args.template_file else args.template
    scenarios = read_scenarios(args.scenario or [], [Path(f) for f in args.scenarios_file or []])
    spec = LengthSet(template, target_lengths(args.start, args.stop, args.step), scenarios, args.field)
    out = Path(args.out)
    count, result = write_length_set(spec, out, args.name or out.stem, args.overwrite,
                                     Path(args.dataset_dir) if args.dataset_dir else None, args.force)
    say(rows_written(spec, count, out) + describe(result))
    return 0


def add_length_set_args(parser: argparse.ArgumentParser) -> None:
    """Arguments of `tunelab data length-set`."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--template", help="the prompt, with {N} where the length goes and {scenario} for the "
                        "scenario, e.g. \"请写一段{N}字的{scenario}祝福语。\"")
    source.add_argument("--template-file", help="a text file holding the template")
    parser.add_argument("--scenario", action="append", metavar="TEXT", help="a scenario for {scenario} "
                        "(repeatable); every length is asked for every scenario")
    parser.add_argument("--scenarios-file", action="append", metavar="FILE", help="scenarios, one a line")
    parser.add_argument("--from", dest="start", type=int, default=5, help="shortest length (default 5)")
    parser.add_argument("--to", dest="stop", type=int, default=700, help="longest length, included (default 700)")
    parser.add_argument("--step", type=int, default=5, help="step between lengths (default 5)")
    parser.add_argument("--field", default="target_length", help="the field holding each row's target length "
                        "(default target_length; a length task's target_field)")
    parser.add_argument("--out", required=True, help="output file, .json or .jsonl")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    parser.add_argument("--name", help="register under this name (default: the file name without extension)")
    parser.add_argument("--dataset-dir", help="folder of dataset_info.json (default: the output's folder)")
    parser.add_argument("--force", action="store_true", help="let NAME point at this file although it is "
                        "registered for another one")
def cmd_synth(args: argparse.Namespace) -> int:
    """`tunelab data synth`: generate records through an endpoint; exit 1 when ids are left, 130 on Ctrl-C."""
    from tunelab.data.tools.synth.config import load_synth_config
    from tunelab.data.tools.synth.run import synthesize

    report = synthesize(load_synth_config(Path(args.config)), args.config)
    say(report.lines())
    if report.interrupted:
        say(["interrupted: every reply received is in the log; rerun the same command to go on"])
        return 130
    return 1 if report.missing else 0


def add_synth_args(parser: argparse.ArgumentParser) -> None:
    """Arguments of `tunelab data synth`."""
    parser.add_argument("config", help="synthesis YAML: endpoint, seeds, prompt, output (see docs/synthesis.md)")


def run_config(args: argparse.Namespace) -> RunConfig:
    """The config of a data command (model and data sections; no output_dir needed)."""
    from tunelab.config.load import load_config

    return load_config(args.config, args.overrides, purpose="infer")


def run_tokenizer(config: RunConfig) -> PreTrainedTokenizerBase:
    """The run's tokenizer with its template installed (no model weights are loaded); a config without a dataset
    is refused first, before anything is loaded."""
    from tunelab.data.tools.inspect import require_dataset
    from tunelab.model.load import load_tokenizer, resolve

    require_dataset(config)
    source = resolve(config.model.model_name_or_path, config.model.cache_dir)
    return load_tokenizer(source.path, config.data.template, config.model.trust_remote_code)


def add_config_args(parser: argparse.ArgumentParser) -> None:
    """CONFIG [key=value ...], as `tunelab train` takes them."""
    parser.add_argument("config", help="training YAML (LLaMA-Factory's keys work)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="override config keys")


def cmd_tokenize(args: argparse.Namespace) -> int:
    """`tunelab data tokenize`: the exact columns the trainer receives, one JSON line per example."""
    from tunelab.data.tools.inspect import build, report_lines, write_tokenized

    config = run_config(args)
    bundle = build(config, run_tokenizer(config))
    count = write_tokenized(bundle, Path(args.out))
    say(report_lines(bundle.report) + [f"wrote {count} examples to {args.out} (packing: {bundle.packing})"])
    return 0


def add_tokenize_args(parser: argparse.ArgumentParser) -> None:
    """Arguments of `tunelab data tokenize`."""
    add_config_args(parser)
    parser.add_argument("--out", required=True, help="JSONL file: input_ids, labels (and the packing layout)")


def cmd_preview(args: argparse.Namespace) -> int:
    """`tunelab data preview`: the first examples as text, trained spans highlighted, and the counts."""
    from itertools import islice

    from rich.console import Console

    from tunelab.data.kinds import kind_of
    from tunelab.data.tools.inspect import build, report_lines
    from tunelab.data.tools.preview import preview_row

    config = run_config(args)
    tokenizer = run_tokenizer(config)
    bundle = build(config, tokenizer)
    kind = kind_of(config.method.stage).name
    console = Console(highlight=False)
    markup = console.is_terminal and not args.plain
    for index, row in enumerate(islice(bundle.train, args.rows)):  # a Dataset, or a stream
        shown = preview_row(tokenizer, kind, row, index + 1, markup)
        console.rule(shown.title)
        console.print(shown.text, markup=markup)
    legend = "trained tokens in green" if markup else "trained tokens between ⟦ ⟧"
    say([legend] + report_lines(bundle.report))
    return 0


def add_preview_args(parser: argparse.ArgumentParser) -> None:
    """Arguments of `tunelab data preview`."""
    add_config_args(parser)
    parser.add_argument("--rows", type=int, default=3, help="examples to show (default 3)")
    parser.add_argument("--plain", action="store_true", help="mark trained spans with ⟦ ⟧ instead of colour")


def cmd_stats(args: argparse.Namespace) -> int:
    """`tunelab data stats`: token-length distribution, what cutoff_len cuts, a histogram PNG."""
    from tunelab.data.tools.inspect import length_stats, plot_lengths

    config = run_config(args)
    stats = length_stats(config, run_tokenizer(config))
    say(stats.summary())
    if args.png:
        plot_lengths(stats, Path(args.png))
        say([f"histogram: {args.png}"])
    return 0


def add_stats_args(parser: argparse.ArgumentParser) -> None:
    """Arguments of `tunelab data stats`."""
    add_config_args(parser)
    parser.add_argument("--png", default="data_lengths.png", help="histogram file (default data_lengths.png; "
                        "empty for none)")


def cmd_validate(args: argparse.Namespace) -> int:
    """`tunelab data validate`: every bad row of every dataset, not just the first; exit 2 if any."""
    from tunelab.data.tools.inspect import report_lines, validate, verdict

    report, problems = validate(run_config(args))
    say(problems[:200] + ([f"... and {len(problems) - 200} more"] if len(problems) > 200 else []))
    say(report_lines(report, examples=False))
    say([verdict(report, problems)])
    return 0 if not problems else EXIT_DATA


def add_validate_args(parser: argparse.ArgumentParser) -> None:
    """Arguments of `tunelab data validate`."""
    add_config_args(parser)


COMMANDS: dict[str, Command] = {
    "tokenize": Command("write the exact input_ids/labels the trainer will see, one JSON line per example",
                        add_tokenize_args, cmd_tokenize),
    "preview": Command("show the first examples as text with the trained spans highlighted", add_preview_args,
                       cmd_preview),
    "stats": Command("token-length distribution of prompts and responses, with a histogram PNG", add_stats_args,
                     cmd_stats),
    "validate": Command("check every row of a config's datasets and list every problem", add_validate_args,
                        cmd_validate),
    "convert": Command("spreadsheet/CSV/JSON with any column names -> alpaca or sharegpt file",
                       add_convert_args, cmd_convert),
    "register": Command("check a file and add or update its entry in dataset_info.json", add_register_args,
                        cmd_register),
    "dedup": Command("find exact and normalised duplicate rows; --out writes the file without them",
                     add_dedup_args, cmd_dedup),
    "split": Command("seeded train/val(/test) split into NAME_train/NAME_val/NAME_test", add_split_args, cmd_split),
    "length-set": Command("write a length-control test set (write N characters, N from..to step) and register it",
                          add_length_set_args, cmd_length_set),
    "synth": Command("generate training records from seeds or topics through an OpenAI-compatible endpoint",
                     add_synth_args, cmd_synth),
}


def write_json(path: Path, content: Any) -> None:
    """A report file, pretty and readable for non-ASCII text."""
    from tunelab.runtime.atomic import write_text_atomic

    write_text_atomic(path, json.dumps(content, indent=2, ensure_ascii=False) + "\n")


def run_tool(handler: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a data command; data and file-system errors become one message and exit code 2."""
    from tunelab.data.errors import DataError

    from tunelab.config.errors import ConfigError
    from tunelab.model.load import ModelError

    try:
        return handler(args)
    except (ConfigError, ModelError) as exc:
        print(f"tunelab: {exc}", file=sys.stderr)
    except DataError as exc:
        print(f"tunelab: error: {exc}", file=sys.stderr)
    except OSError as exc:
        from tunelab.runtime.fs_errors import describe

        print(f"tunelab: error: {describe(exc)}", file=sys.stderr)
    return EXIT_DATA


def add_data_parsers(commands: Any) -> None:
    """`tunelab data` with one sub-parser per row of COMMANDS."""
    data = commands.add_parser("data", help="prepare datasets: " + ", ".join(COMMANDS),
                               description="Prepare datasets: " + "; ".join(f"{name}: {c.help}"
                                                                            for name, c in COMMANDS.items()))
    subcommands = data.add_subparsers(dest="data_command", required=True, metavar="DATA_COMMAND")
    for name, command in COMMANDS.items():
        parser = subcommands.add_parser(name, help=command.help, description=command.help)
        command.add_args(parser)
        parser.set_defaults(func=partial(run_tool, command.handler))
