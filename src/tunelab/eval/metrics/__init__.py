"""Metric functions by task kind: text (BLEU/ROUGE), classify, sets, rank."""
