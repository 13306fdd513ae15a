"""Console output: one rich console on stderr, quiet third-party loggers."""

from __future__ import annotations

import logging
import warnings

from rich.console import Console

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


def info(message: str) -> None:
    """One status line for the user."""
    console.print(f"[bold cyan]tunelab[/]: {message}")


def warn(message: str) -> None:
    """A warning the user should read."""
    console.print(f"[bold yellow]tunelab warning[/]: {message}")
