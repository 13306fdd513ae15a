"""The tunelab version (pyproject.toml's), for `tunelab --version` and the API; kept at the bottom layer so the
interfaces read it without importing the package root above them."""

from __future__ import annotations

__version__ = "0.1.0"
