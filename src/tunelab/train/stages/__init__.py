"""Training stages: each module exposes build_trainer(model_bundle, data_bundle, args, callbacks)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tunelab.train.stages import sft

BUILDERS: dict[str, Callable[..., Any]] = {"pt": sft.build_trainer, "sft": sft.build_trainer}
