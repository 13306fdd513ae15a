"""Writes that never look complete when they are not: the content goes to a hidden temporary sibling, which is
renamed over the destination only once it is whole. An error (disk full, a file size limit, Ctrl-C) removes the
temporary and leaves the previous file or folder as it was. Used for data-tool outputs, dataset_info.json,
tokenized datasets and predictions; export stages its folder the same way (export/atomic.py)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO


def named(exc: OSError, dest: Path) -> OSError:
    """The error with dest as its path when it names none (a failed write() names no file)."""
    if exc.filename is not None:
        return exc
    return type(exc)(exc.errno, exc.strerror or str(exc), str(dest))


def temporary_sibling(dest: Path, kind: str = "partial") -> Path:
    """The hidden temporary name next to dest (same folder, so the rename stays on one file system)."""
    return dest.parent / f".{dest.name}.{kind}-{os.getpid()}"


@contextmanager
def atomic_file(dest: Path, newline: str | None = None) -> Iterator[TextIO]:
    """A UTF-8 text handle whose content replaces dest only when the block ends without an error."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    temp = temporary_sibling(dest)
    try:
        with temp.open("w", encoding="utf-8", newline=newline) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, dest)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise named(exc, dest) from None
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def write_text_atomic(dest: Path, text: str, newline: str | None = None) -> None:
    """dest's whole new text, or (on any error) its old text."""
    with atomic_file(dest, newline) as handle:
        handle.write(text)


@contextmanager
def atomic_folder(dest: Path) -> Iterator[Path]:
    """An empty temporary folder that becomes dest (replacing an old dest) when the block ends without an error;
    on an error it is removed and dest is left as it was."""
    stage = temporary_sibling(dest)
    if stage.exists():  # left by an earlier process with our pid that was killed outright
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    try:
        yield stage
    except OSError as exc:
        shutil.rmtree(stage, ignore_errors=True)
        raise named(exc, dest) from None
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    if dest.is_dir():
        old = temporary_sibling(dest, "old")
        dest.rename(old)
        stage.rename(dest)
        shutil.rmtree(old, ignore_errors=True)
    else:
        stage.rename(dest)
