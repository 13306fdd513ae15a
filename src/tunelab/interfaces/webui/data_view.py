"""What the Data tab shows, on the `tunelab data` code paths: the registry of a folder, rows as the model sees
them (HTML, trained spans highlighted), the length histogram, validation and convert + register.

Every function takes form values and returns what the components show; errors come back as the CLI's own text.
The dataset folder follows the web UI's path rule (safe_paths.checked_path): a relative folder is inside the working
folder, an absolute one is taken as typed.
"""

from __future__ import annotations

import argparse
import html
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING

from tunelab.config.errors import ConfigError
from tunelab.interfaces.data_cli import add_convert_args, cmd_convert, cmd_stats, cmd_validate
from tunelab.interfaces.webui.cli_capture import Captured, Handler, capture, run_cli
from tunelab.interfaces.webui.safe_paths import checked_path
from tunelab.interfaces.webui.top_config import blank, existing_folder

if TYPE_CHECKING:
    from rich.text import Text

REGISTRY_HEADERS = ["name", "file", "formatting", "ranking", "columns", "file_sha1"]
PREVIEW_STYLE = ("<style>.tl-preview pre{white-space:pre-wrap;word-break:break-word;font-size:13px}"
                 ".tl-preview .tl-trained{background:#c8f7c5;color:#0b4f0b;font-weight:bold}</style>")


@dataclass(frozen=True)
class DataForm:
    """The top bar and Data tab values a data command needs."""

    model: str
    template: str | None
    stage: str
    dataset: list[str]
    dataset_dir: str
    cutoff_len: int
    workdir: Path = field(default_factory=Path.cwd)  # a relative dataset folder is inside it
    system: str | None = None  # the top bar's system prompt (default_system), for rows without one

    def overrides(self) -> list[str]:
        """The form as `tunelab data ... key=value` overrides (no YAML: the CLI accepts a config of overrides); a
        dataset folder outside the working folder is a ConfigError."""
        folder = checked_path("dataset_dir", self.dataset_dir, self.workdir)
        keys = {"model_name_or_path": self.model, "template": blank(self.template), "stage": self.stage,
                "dataset": ",".join(self.dataset), "dataset_dir": str(folder), "cutoff_len": self.cutoff_len,
                "default_system": blank(self.system)}
        return [f"{key}={value}" for key, value in keys.items() if value not in (None, "")]

    def args(self, **extra: object) -> argparse.Namespace:
        """The Namespace `tunelab data preview|stats|validate` builds: no config file, the form as overrides."""
        return argparse.Namespace(config=None, overrides=self.overrides(), **extra)


def run_data(handler: Handler, form: DataForm, **extra: object) -> Captured:
    """A `tunelab data` handler run on the form's values, captured; a bad dataset folder is its error too."""
    return capture(lambda _: handler(form.args(**extra)), argparse.Namespace())


def registry_rows(dataset_dir: str, workdir: Path) -> tuple[list[list[str]], list[str], str]:
    """The entries of a folder's dataset_info.json as table rows, their names, and a message (the CLI's error)."""
    from tunelab.data.registry import read_registry

    found: list[tuple[str, object]] = []
    folders: list[Path] = []

    def handler(_: argparse.Namespace) -> int:
        folders.append(checked_path("dataset_dir", dataset_dir, workdir))
        found.extend(read_registry(folders[0]).items())
        return 0

    done = capture(handler, argparse.Namespace())
    rows = [registry_row(name, entry) for name, entry in found]
    message = done.text() if not done.ok else f"{len(rows)} datasets in {folders[0] / 'dataset_info.json'}"
    return rows, [name for name, _ in found], message


def registry_row(name: str, entry: object) -> list[str]:
    """One dataset_info.json entry as a table row (an entry that is not an object shows as such)."""
    if not isinstance(entry, dict):
        return [name, f"(not an object: {entry!r})", "", "", "", ""]
    columns = entry.get("columns")
    shown = ", ".join(f"{k}={v}" for k, v in columns.items()) if isinstance(columns, dict) else ""
    source = entry.get("file_name") or entry.get("hf_hub_url") or entry.get("ms_hub_url") or ""
    return [name, str(source), str(entry.get("formatting", "alpaca")), str(bool(entry.get("ranking", False))),
            shown, str(entry.get("file_sha1") or "")]


def rich_html(title: str, text: str) -> str:
    """A preview's rich markup (trained spans bold green) as HTML, trained spans marked with a class."""
    from rich.text import Text

    parts = []
    for span_text, trained in split_by_style(Text.from_markup(text)):
        escaped = html.escape(span_text)
        parts.append(f"<span class='tl-trained'>{escaped}</span>" if trained else escaped)
    return f"<h4>{html.escape(title)}</h4><pre>{''.join(parts)}</pre>"


def split_by_style(text: Text) -> list[tuple[str, bool]]:
    """(text, trained) pieces of a rich Text: trained where the preview's green style applies."""
    plain = text.plain
    trained = [False] * len(plain)
    for span in text.spans:
        if "green" in str(span.style):
            trained[span.start:span.end] = [True] * (span.end - span.start)
    pieces: list[tuple[str, bool]] = []
    for char, flag in zip(plain, trained):
        if pieces and pieces[-1][1] == flag:
            pieces[-1] = (pieces[-1][0] + char, flag)
        else:
            pieces.append((char, flag))
    return pieces


def preview(form: DataForm, rows: int) -> tuple[str, str]:
    """The first rows as `tunelab data preview` shows them (HTML) and its report lines, or the CLI's error."""
    from tunelab.data.kinds import kind_of
    from tunelab.data.tools.inspect import build, report_lines
    from tunelab.data.tools.preview import preview_row
    from tunelab.interfaces.data_cli import run_config, run_tokenizer

    shown: list[str] = []
    lines: list[str] = []

    def handler(args: argparse.Namespace) -> int:
        config = run_config(args)
        tokenizer = run_tokenizer(config)
        bundle = build(config, tokenizer)
        kind = kind_of(config.method.stage).name
        for index, row in enumerate(islice(bundle.train, rows)):
            item = preview_row(tokenizer, kind, row, index + 1, True)
            shown.append(rich_html(item.title, item.text))
        lines.extend(report_lines(bundle.report))
        return 0

    done = run_data(handler, form)
    if not done.ok:
        return "", done.text()
    return PREVIEW_STYLE + "<div class='tl-preview'>" + "".join(shown) + "</div>", "\n".join(lines)


def stats(form: DataForm, png: Path) -> tuple[str | None, str]:
    """`tunelab data stats`: the histogram PNG (None on an error) and the printed summary."""
    png.parent.mkdir(parents=True, exist_ok=True)
    done = run_data(cmd_stats, form, png=str(png))
    return (str(png) if done.ok and png.is_file() else None), done.text()


def validate(form: DataForm) -> Captured:
    """`tunelab data validate`: every bad row with its file, row and field (exit code 2 when any)."""
    return run_data(cmd_validate, form)


@dataclass(frozen=True)
class ConvertForm:
    """The convert panel: the uploaded file, its column mapping and where the output goes."""

    upload: str
    to: str
    mapping: str
    out_name: str
    dataset_dir: str
    sheet: str | None = None
    register_as: str | None = None
    keep_empty: bool = False
    workdir: Path = field(default_factory=Path.cwd)  # a relative dataset folder is inside it

    def argv(self, folder: Path) -> list[str]:
        """`tunelab data convert` arguments writing into the dataset folder (a list: no shell ever sees form
        values)."""
        argv = [self.upload, "--to", self.to, "--out", str(folder / self.out_name)]
        argv += ["--map", self.mapping] if blank(self.mapping) else []
        argv += ["--sheet", self.sheet] if blank(self.sheet) else []
        argv += ["--name", self.register_as] if blank(self.register_as) else ["--register"]
        return argv + (["--keep-empty"] if self.keep_empty else [])


def convert(form: ConvertForm) -> Captured:
    """Convert and register with the CLI's own parser and handler; a bad name or folder is refused first."""
    name = Path(form.out_name)
    if not blank(form.out_name) or name.name != form.out_name or name.suffix not in (".json", ".jsonl"):
        return Captured(2, "", "tunelab: error: output file name: give a file name ending .json or .jsonl, "
                               "without a folder (it is written into the dataset folder)")
    try:
        folder = existing_folder("dataset_dir", form.dataset_dir, form.workdir, "give the dataset folder")
    except ConfigError as exc:
        return Captured(2, "", f"tunelab: {exc.render()}")
    return run_cli(add_convert_args, cmd_convert, form.argv(folder), "tunelab data convert")


def upload_columns(upload: str | None, sheet: str | None) -> str:
    """The columns of an uploaded table and its row count (to write the mapping against), or the CLI's error."""
    from tunelab.data.tools.convert import read_table

    if not upload:
        return ""
    found: list[str] = []

    def handler(_: argparse.Namespace) -> int:
        table = read_table(Path(upload), blank(sheet))
        found.append(f"{len(table.rows)} rows; columns: {', '.join(table.columns)}")
        return 0

    done = capture(handler, argparse.Namespace())
    return found[0] if done.ok else done.text()
