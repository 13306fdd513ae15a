"""Evaluation: task kinds, metrics, multiple choice by logits, perplexity, reports.

Importing the package registers the task kinds with the config layer, so an eval config validates its
tasks through them (see tunelab.eval.kinds).
"""

from tunelab.eval import kinds as kinds
