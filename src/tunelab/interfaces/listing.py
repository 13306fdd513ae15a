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
    for row in rows:
        print(row["alias"])
        print(f"  architecture: {row['architecture']}, {row['parameters']} parameters")
        for key in ("source", "installed", "cached"):
            print(f"  {key + ':':<13} {row[key]}")
        print(f"  {'hub id:':<13} {row['hub_id']} (the original weights, where a hub is reachable)")
    print("\nUse one as model_name_or_path: ALIAS. Also accepted: a local Hugging Face folder, a local .gguf "
          "file, or a hub id (needs network).")
