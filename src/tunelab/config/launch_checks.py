"""Checks of the launch section (multi-process, DeepSpeed, FSDP); filled in by the launch work."""

from __future__ import annotations

from typing import Any

from tunelab.config.errors import Problem


def launch_checks(config: Any) -> list[Problem]:
    return []
