"""tunelab: a workbench for fine-tuning large language models."""

__version__ = "0.1.0"
