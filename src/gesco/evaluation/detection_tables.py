"""Per-class detection in the reports of ``gesco evaluate`` and ``gesco compare``: AP50 and recall of every thing
class at every channel quality, as a CSV, Markdown tables and one recall plot.

The mean AP50 of a cell hides which objects a receiver loses (a receiver can keep its cars and lose every pole),
so each report also writes ``per_class_detection.csv``, a per-method table and ``plots/recall_per_class.png``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from gesco.evaluation.figures import FIGURE_DPI  # noqa: E402
from gesco.evaluation.geometry_scoring import GeometryScores  # noqa: E402
from gesco.evaluation.markdown import table_section  # noqa: E402
from gesco.evaluation.objects_depth import ClassDetection  # noqa: E402
from gesco.io import atomic_save  # noqa: E402

#: Columns of ``per_class_detection.csv`` after the row and channel-quality columns.
CSV_COLUMNS = ("class", "ap50", "recall", "ground_truth_boxes", "predictions")
#: The channel quality of a row that does not cross the channel (the real images, in ``gesco compare``).
NO_CHANNEL = ""


@dataclass(frozen=True)
class DetectionCell:
    """The detection scores of one (row, channel quality) cell of a report.

    Attributes:
        row: the method's key (or a reference's, e.g. the real images).
        label: the row's title in tables and legends.
        quality: the channel quality as the report writes it (a PSNR label, or Es/N0 in dB), or
            :data:`NO_CHANNEL`.
        geometry: the cell's scores (None, or without detection, where no detector ran).
    """

    row: str
    label: str
    quality: str
    geometry: GeometryScores | None


def _per_class(cell: DetectionCell) -> dict[int, ClassDetection]:
    if cell.geometry is None or cell.geometry.detection is None:
        return {}
    return cell.geometry.detection.per_class


def _number(value: float | None) -> float | str:
    return "" if value is None or not math.isfinite(value) else value


def has_detection(cells: Sequence[DetectionCell]) -> bool:
    """Whether a detector scored any of ``cells`` (the per-class files are written only then)."""
    return any(c.geometry is not None and c.geometry.detection is not None for c in cells)


def csv_rows(cells: Sequence[DetectionCell], class_names: dict[int, str], *, quality_column: str) -> list[list]:
    """Header and one row per (cell, class): AP50 and recall (empty without ground truth), and the box counts."""
    rows: list[list] = [["method", quality_column, *CSV_COLUMNS]]
    for cell in cells:
        for label, scores in sorted(_per_class(cell).items()):
            rows.append(
                [
                    cell.row,
                    cell.quality,
                    class_names.get(label, str(label)),
                    _number(scores.ap50),
                    _number(scores.recall),
                    scores.num_targets,
                    scores.num_predictions,
                ]
            )
    return rows


def _classes(cells: Sequence[DetectionCell]) -> list[int]:
    """The classes with a ground-truth box in some cell (a detector's class absent from the data has no score)."""
    return sorted({label for cell in cells for label, scores in _per_class(cell).items() if scores.num_targets})


def _pair(scores: ClassDetection | None) -> str:
    if scores is None or scores.ap50 is None:
        return "–"
    return f"{scores.ap50:.2f} / {scores.recall:.2f}"


def markdown_lines(
    cells: Sequence[DetectionCell], qualities: Sequence[str], class_names: dict[int, str], *, quality_title: str
) -> list[str]:
    """Per row with detection scores: a table of classes against channel qualities (one "no channel" column for a
    row of :data:`NO_CHANNEL`), "AP50 / recall" in each cell ("–": the class has no ground-truth box there)."""
    classes = _classes(cells)
    by_row: dict[str, list[DetectionCell]] = {}
    for cell in cells:
        if _per_class(cell):
            by_row.setdefault(cell.row, []).append(cell)
    lines: list[str] = []
    for row_cells in by_row.values():
        at = {c.quality: _per_class(c) for c in row_cells}
        columns = [q for q in (*qualities, NO_CHANNEL) if q in at]
        titles = ["no channel" if q == NO_CHANNEL else f"{quality_title} {q}" for q in columns]
        rows = [[class_names.get(label, str(label)), *(_pair(at[q].get(label)) for q in columns)] for label in classes]
        lines += table_section(f"Per-class detection, AP50 / recall: {row_cells[0].label}", ["Class", *titles], rows)
    return lines


def recall_plot(
    cells: Sequence[DetectionCell],
    qualities: Sequence[str],
    class_names: dict[int, str],
    path: Path,
    *,
    positions: Sequence[float],
    xlabel: str,
    references: Sequence[str] = (),
) -> Path | None:
    """``path``: one panel per class with ground truth, recall against channel quality, one line per row;
    ``references`` (rows that do not depend on the channel, e.g. the real images; one cell of :data:`NO_CHANNEL`
    or one per quality) as dashed lines. None (nothing written) without detection scores."""
    classes = _classes(cells)
    if not classes:
        return None
    columns = min(4, len(classes))
    panel_rows = math.ceil(len(classes) / columns)
    fig, axes = plt.subplots(panel_rows, columns, figsize=(3.2 * columns, 2.6 * panel_rows), squeeze=False)
    rows: dict[str, list[DetectionCell]] = {}
    for cell in cells:
        rows.setdefault(cell.row, []).append(cell)
    for ax, label in zip(axes.flat, classes, strict=False):
        for row, row_cells in rows.items():
            at = {c.quality: _per_class(c).get(label) for c in row_cells}
            if NO_CHANNEL in at:
                at = dict.fromkeys(qualities, at[NO_CHANNEL])
            values = [at[q].recall if q in at and at[q] is not None else None for q in qualities]
            if all(v is None for v in values):
                continue
            style = "--" if row in references else "-o"
            ax.plot(positions, [math.nan if v is None else v for v in values], style, label=row_cells[0].label)
        ax.set_title(class_names.get(label, str(label)), fontsize=9)
        ax.set_xticks(list(positions), list(qualities), fontsize=7)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(classes) :]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel("recall", fontsize=8)
    for index, ax in enumerate(axes.flat[: len(classes)]):
        if index + columns >= len(classes):  # the lowest panel of its column
            ax.set_xlabel(xlabel, fontsize=8)
    # Every row is drawn in a panel where it has a value; the legend lists the rows of all panels once.
    legend: dict[str, object] = {}
    for ax in axes.flat:
        for handle, name in zip(*ax.get_legend_handles_labels(), strict=True):
            legend.setdefault(name, handle)
    handles, labels = list(legend.values()), list(legend)
    fig.legend(handles, labels, loc="lower center", ncol=min(3, max(len(labels), 1)), fontsize=7)
    fig.tight_layout(rect=(0, 0.06 + 0.03 * math.ceil(len(labels) / 3), 1, 1))
    atomic_save(path, lambda tmp: fig.savefig(tmp, format="png", dpi=FIGURE_DPI))
    plt.close(fig)
    return path
