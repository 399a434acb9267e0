"""Markdown tables of the evaluation reports."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def table_section(title: str, header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """The lines of a report section: a blank line, ``## title``, a blank line, then a table of ``header`` and
    ``rows`` (every cell already formatted)."""
    lines = ["", f"## {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]
