"""The `format` metric: the share of answers in the expected layout, and per field the share that fill it.

`format` is 100 for an answer in the layout, 0 otherwise; `format:FIELD` is 100 when the field is filled (in
every item). Each failing row is listed with its id and the reason, so a user sees which answers to look at
before reading BLEU/ROUGE on them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from tunelab.text.layout import Layout

FORMAT_METRIC = re.compile(r"^format(?::(?P<field>.+))?$")


def is_format_metric(name: str) -> bool:
    """`format` or `format:FIELD`."""
    return bool(FORMAT_METRIC.match(name))


def metric_field(name: str) -> str | None:
    """The field of `format:FIELD` (None for `format` itself or another metric)."""
    match = FORMAT_METRIC.match(name)
    return match.group("field") if match else None


def format_rows(layout: Layout, ids: Sequence[str], texts: Sequence[str], names: Sequence[str],
                ) -> tuple[list[dict[str, float]], list[str], dict[str, object]]:
    """Per row the format metrics asked and the reason it fails ('' when it does not); the summary details."""
    rows: list[dict[str, float]] = []
    reasons: list[str] = []
    failed: list[dict[str, str]] = []
    counts = dict.fromkeys(layout.fields, 0)
    for row_id, text in zip(ids, texts):
        verdict = layout.check(text)
        row = {"format": 100.0 * verdict.ok} if "format" in names else {}
        for name in names:
            field = metric_field(name)
            if field is not None:
                row[name] = 100.0 * verdict.fields.get(field, False)
        for field, present in verdict.fields.items():
            counts[field] += present
        rows.append(row)
        reasons.append(verdict.why)
        if not verdict.ok:
            failed.append({"id": row_id, "why": verdict.why})
    total = len(rows)
    details: dict[str, object] = {
        "matched": total - len(failed), "failed": failed,
        "fields": {field: round(100.0 * n / total, 4) if total else 0.0 for field, n in counts.items()},
    }
    return rows, reasons, details
