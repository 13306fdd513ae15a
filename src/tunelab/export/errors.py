"""The export layer's one user error."""

from __future__ import annotations


class ExportError(Exception):
    """An export that cannot be done as asked; the message names the file, module or key and the fix."""
