"""Markdown tables of repeated measurements: each cell is the median of the repeats and,
when there were several, the slowest of them in brackets (the lowest rate, the highest
latency), so that figures can be pasted into docs as they are."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Column:
    title: str
    fmt: str = "{:,.0f}"
    #: True: a rate (slowest = lowest); False: a time or a size (slowest = highest);
    #: None: the cell is a label, printed as it is
    higher_is_better: bool | None = True


Cell = str | list[float]


@dataclass
class Table:
    title: str
    columns: list[Column]
    rows: list[list[Cell]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *cells: Cell) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"{self.title}: {len(cells)} cells for {len(self.columns)} columns")
        self.rows.append(list(cells))

    def render(self) -> str:
        lines = [f"#### {self.title}", ""]
        lines += [f"{note}" for note in self.notes]
        if self.notes:
            lines.append("")
        lines.append("| " + " | ".join(c.title for c in self.columns) + " |")
        lines.append("|" + "|".join("---" if c.higher_is_better is None else "---:"
                                    for c in self.columns) + "|")
        for row in self.rows:
            lines.append("| " + " | ".join(_cell(c, v) for c, v in zip(self.columns, row,
                                                                        strict=True)) + " |")
        return "\n".join(lines) + "\n"


def _cell(column: Column, value: Cell) -> str:
    if isinstance(value, str):
        return value
    if not value:
        return "n/a"
    text = column.fmt.format(statistics.median(value))
    if len(value) > 1 and column.higher_is_better is not None:
        worst = min(value) if column.higher_is_better else max(value)
        text += f" ({column.fmt.format(worst)})"
    return text


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest rank: the smallest value with at least q of the values at or below it."""
    if not sorted_values:
        raise ValueError("no values")
    rank = max(1, min(len(sorted_values), -(-q * len(sorted_values) // 1)))
    return sorted_values[int(rank) - 1]
