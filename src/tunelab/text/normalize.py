"""Answer normalisation shared by the metrics: width, case, punctuation and spacing never decide a match."""

from __future__ import annotations

import unicodedata

# Unicode categories P* (punctuation) and S* (symbols) are dropped; letters, digits and CJK stay.
DROPPED = ("P", "S")


def normalize(text: object) -> str:
    """NFKC (full-width -> half-width), casefold, punctuation and symbols removed, whitespace collapsed."""
    folded = unicodedata.normalize("NFKC", str(text)).casefold()
    kept = "".join(" " if unicodedata.category(ch)[0] in DROPPED else ch for ch in folded)
    return " ".join(kept.split())


def alias_table(aliases: dict[str, str] | None) -> dict[str, str]:
    """Normalised alias -> normalised canonical label."""
    return {normalize(alias): normalize(label) for alias, label in (aliases or {}).items()}


def canonical(text: object, aliases: dict[str, str]) -> str:
    """The normalised label a text stands for, after aliases."""
    key = normalize(text)
    return aliases.get(key, key)
