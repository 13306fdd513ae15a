"""Run a CLI handler in-process as the CLI runs it, capturing what it prints (results and errors).

The web UI shows the very text the CLI prints: a `tunelab data` handler runs under data_cli.run_tool, any other
under cli.run; both turn ConfigError, ModelError, DataError, ... into the CLI's messages. Standard output and error
are captured.
"""

from __future__ import annotations

import argparse
import io
import threading
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass

from tunelab.interfaces.data_cli import run_tool

# sys.stdout is process-wide: one captured command at a time
CAPTURE_LOCK = threading.Lock()


@dataclass(frozen=True)
class Captured:
    """A command's exit code and the text it printed."""

    code: int
    out: str
    err: str

    @property
    def ok(self) -> bool:
        """True when the command succeeded."""
        return self.code == 0

    def text(self) -> str:
        """What a terminal would show: the output, then the errors."""
        return "\n".join(part for part in (self.out.rstrip(), self.err.rstrip()) if part)


def output_text(done: Captured) -> str:
    """A captured command's text for a textbox (what the terminal would show, or its exit code if it printed
    nothing)."""
    return done.text() or ("done" if done.ok else f"failed (exit code {done.code})")


Handler = Callable[[argparse.Namespace], int]


def capture(handler: Handler, args: argparse.Namespace,
            runner: Callable[[Handler, argparse.Namespace], int] = run_tool) -> Captured:
    """Run handler(args) through the CLI's runner with its output captured. A SystemExit (a parser's usage error) is
    its exit code; an error the CLI would show as a traceback is one line here (a web page shows no tracebacks)."""
    out, err = io.StringIO(), io.StringIO()
    with CAPTURE_LOCK, redirect_stdout(out), redirect_stderr(err):
        try:
            code = runner(handler, args)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 2
        except Exception as exc:  # noqa: BLE001 - shown to the user as the CLI's last line would be
            print(f"tunelab: error: {type(exc).__name__}: {exc}", file=err)
            code = 1
    return Captured(code, out.getvalue(), err.getvalue())


def cli_runner(handler: Handler, args: argparse.Namespace) -> int:
    """The main CLI's runner (tunelab chat, eval, export): ConfigError as its problem list, exit code 2."""
    from tunelab.interfaces.cli import run

    return run(handler, args)


def parse(add_args: Callable[[argparse.ArgumentParser], None], argv: list[str], prog: str) -> argparse.Namespace:
    """The Namespace the CLI would build from argv with the command's own argument adder (SystemExit on bad flags)."""
    parser = argparse.ArgumentParser(prog=prog)
    add_args(parser)
    return parser.parse_args(argv)


def run_cli(add_args: Callable[[argparse.ArgumentParser], None], handler: Handler,
            argv: list[str], prog: str) -> Captured:
    """Parse argv as the CLI does and run the handler, both captured."""
    out, err = io.StringIO(), io.StringIO()
    with CAPTURE_LOCK, redirect_stdout(out), redirect_stderr(err):
        try:
            args = parse(add_args, argv, prog)
        except SystemExit as exc:
            return Captured(exc.code if isinstance(exc.code, int) else 2, out.getvalue(), err.getvalue())
    done = capture(handler, args)
    return Captured(done.code, out.getvalue() + done.out, err.getvalue() + done.err)
