"""Export folders that never look complete when they are not: written under a temporary sibling name and renamed
into place at the end; an error or Ctrl-C removes the temporary folder."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tunelab.export.errors import ExportError
from tunelab.runtime.atomic import atomic_folder, temporary_sibling


def refuse_existing(dest: Path, overwrite: bool) -> None:
    """A file, or a non-empty folder without overwrite_output_dir, is refused; nothing is deleted."""
    if dest.exists() and not dest.is_dir():
        raise ExportError(f"export_dir: {dest} is a file; give a folder")
    if dest.is_dir() and not overwrite:
        entries = sorted(entry.name for entry in dest.iterdir())
        if entries:
            shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
            raise ExportError(f"export_dir: {dest} is not empty ({len(entries)} entries: {shown}); choose an empty "
                              "or new folder, or set overwrite_output_dir: true to replace it")


def staging_path(dest: Path) -> Path:
    """The temporary sibling an export of dest is written to (hidden, named after dest and this process)."""
    return temporary_sibling(dest)


@contextmanager
def staged_folder(dest: Path, overwrite: bool) -> Iterator[Path]:
    """Yield an empty temporary folder; on success it becomes dest (replacing it with overwrite), on any error or
    interrupt it is removed and dest is left as it was."""
    refuse_existing(dest, overwrite)
    with atomic_folder(dest) as stage:
        yield stage
