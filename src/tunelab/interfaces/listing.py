"""`tunelab models`: the aliases, where their weights come from, and their install/cache state."""

from __future__ import annotations

import json

from tunelab.model import registry


def model_rows() -> list[dict[str, str]]:
    """One row per alias."""
    rows = []
    for alias in registry.aliases().values():
        cached = registry.is_converted(alias.cache_path())
        rows.append({
            "alias": alias.name, "architecture": alias.architecture, "parameters": alias.parameters,
            "source": f"PyPI {alias.distribution} ({alias.file})",
            "installed": "yes" if alias.gguf_path() else f"no: {alias.install_hint()}",
            "cached": f"yes ({registry.folder_size(alias.cache_path()) / 2**20:,.0f} MiB, {alias.cache_path()})"
            if cached else "no (converted on first use)",
            "hub_id": alias.hub_id,
        })
    return rows


def print_models(as_json: bool = False) -> None:
    """Print the alias table (or JSON)."""
    rows = model_rows()
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="tunelab model aliases (model_name_or_path: ALIAS)")
    for column in ("alias", "architecture", "parameters", "source", "installed", "cached"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(row[c] for c in ("alias", "architecture", "parameters", "source", "installed", "cached")))
    Console().print(table)
    print("Also accepted: a local Hugging Face folder, a local .gguf file, or a hub id (needs network).")
