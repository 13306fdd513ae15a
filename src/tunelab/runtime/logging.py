"""Console output: one rich console on stderr, quiet third-party loggers.

In a multi-process (torchrun) run only the main process (RANK 0) prints status lines and warnings, so the
console reads as for one process; errors are printed by every process, since any one of them may fail.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping

from rich.console import Console
from tunelab.runtime import env

console = Console(stderr=True, highlight=False, soft_wrap=True)


def quiet_libraries() -> None:
    """Silence the progress bars and warnings of transformers/datasets that would interleave with ours."""
    import datasets
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    logging.getLogger("torch.distributed").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="torch")


def is_main_process(environ: Mapping[str, str] | None = None) -> bool:
    """True in a single-process run and in the process of global RANK 0 of a distributed one."""
    rank = (env.variables() if environ is None else environ).get("RANK", "").strip()
    return rank in ("", "0")


def info(message: str) -> None:
    """One status line for the user (main process only)."""
    if is_main_process():
        console.print(f"[bold cyan]tunelab[/]: {message}")


def warn(message: str) -> None:
    """A warning the user should read (main process only)."""
    if is_main_process():
        console.print(f"[bold yellow]tunelab warning[/]: {message}")
