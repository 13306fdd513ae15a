"""Evaluation: task metrics, answer extraction, multiple choice by logits, perplexity, reports."""
