"""tunelab: a workbench for fine-tuning large language models."""

from tunelab.runtime.version import __version__

__all__ = ["__version__"]
