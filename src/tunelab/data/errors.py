"""DataError: a data problem that names the dataset, file, row and field, and says how to fix it."""

from __future__ import annotations


class DataError(Exception):
    """Bad data or a bad dataset registry entry."""

    def __init__(self, problem: str, *, dataset: str | None = None, file: str | None = None,
                 row: int | None = None, field: str | None = None, fix: str | None = None,
                 kind: str | None = None) -> None:
        self.problem, self.dataset, self.file, self.row, self.field, self.fix = problem, dataset, file, row, field, fix
        self.kind = kind or problem  # the problem without row-specific values: how skipped rows are grouped
        super().__init__(self.render())

    def where(self) -> str:
        """'dataset 'x' (path), row 3, field output' with whatever parts are known."""
        parts = []
        if self.dataset:
            parts.append(f"dataset {self.dataset!r}" + (f" ({self.file})" if self.file else ""))
        elif self.file:
            parts.append(self.file)
        if self.row is not None:
            parts.append(f"row {self.row}")
        if self.field:
            parts.append(f"field {self.field}")
        return ", ".join(parts)

    def render(self) -> str:
        """The message the user sees."""
        where = self.where()
        text = f"{where}: {self.problem}" if where else self.problem
        return text + (f"; {self.fix}" if self.fix else "")
