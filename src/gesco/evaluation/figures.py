"""Figures people look at: maps, received maps, FDS outputs and regenerations side by side."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.cm import ScalarMappable  # noqa: E402
from matplotlib.colors import Normalize  # noqa: E402

# image_to_rgb lives in gesco.images (below training, which draws previews); figures re-export it.
from gesco.images import image_to_rgb  # noqa: F401
from gesco.io import atomic_save  # noqa: E402
from gesco.semantics.classes import ClassTable  # noqa: E402

#: Resolution of every saved figure: a grid cell of ``cell_width`` inches holds ``cell_width * FIGURE_DPI`` pixels.
FIGURE_DPI = 110
#: Width (inches) added to the right of a grid for its colour bar and the bar's label.
COLORBAR_INCHES = 1.0


@dataclass(frozen=True)
class Colorbar:
    """A colour scale drawn beside a grid: ``colormap`` (a matplotlib name) from ``low`` to ``high``."""

    colormap: str
    low: float
    high: float
    label: str


def condition_to_rgb(condition: torch.Tensor, table: ClassTable) -> np.ndarray:
    """Colourise a (possibly noisy) map by its strongest class channel (the edge channel is not drawn).

    condition: float (B, C, H, W) -> uint8 (B, H, W, 3).
    """
    palette = torch.tensor(table.colors, dtype=torch.uint8)
    return palette[condition[:, : table.num_classes].argmax(dim=1)].numpy()


#: Column titles' font size (pt) and a character's mean width in ems, for wrapping them to a column's width.
TITLE_FONT_PT = 8
CHAR_WIDTH_EM = 0.55


def save_grid(
    path: str | Path,
    rows: Sequence[Sequence[np.ndarray]],
    column_titles: Sequence[str],
    *,
    row_titles: Sequence[str] | None = None,
    title: str | None = None,
    cell_width: float = 2.2,
    colorbar: Colorbar | None = None,
) -> Path:
    """A grid of uint8 (H, W, 3) pictures with column (and row) titles, saved as PNG atomically; ``colorbar``
    adds a colour scale on the right. The figure is ``cell_width * columns`` (+ ``COLORBAR_INCHES``) inches
    wide at ``FIGURE_DPI``."""
    n_rows, n_cols = len(rows), len(column_titles)
    height, width = rows[0][0].shape[:2]
    cell_height = cell_width * height / width
    grid_width = cell_width * n_cols
    extra = COLORBAR_INCHES if colorbar is not None else 0.0
    # long method names wrap inside their column instead of running into the next one's title
    title_chars = max(12, int(cell_width * 72 / (TITLE_FONT_PT * CHAR_WIDTH_EM)))
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(grid_width + extra, cell_height * n_rows + 0.6), squeeze=False)
    for r, row in enumerate(rows):
        for c, picture in enumerate(row):
            ax = axes[r][c]
            ax.imshow(picture, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(textwrap.fill(column_titles[c], title_chars), fontsize=TITLE_FONT_PT)
            if c == 0 and row_titles:
                ax.set_ylabel(row_titles[r], fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    if colorbar is None:
        fig.tight_layout()
    else:
        share = grid_width / (grid_width + extra)
        fig.tight_layout(rect=(0, 0, share, 1))
        # a thin bar in the middle of the added strip, its ticks and label to its right
        bar = fig.add_axes((share + 0.1 * (1 - share), 0.15, 0.15 * (1 - share), 0.7))
        scale = ScalarMappable(Normalize(colorbar.low, colorbar.high), colorbar.colormap)
        fig.colorbar(scale, cax=bar).set_label(colorbar.label, fontsize=8)
    path = Path(path)
    atomic_save(path, lambda tmp: fig.savefig(tmp, format="png", dpi=FIGURE_DPI))
    plt.close(fig)
    return path


def save_metric_plot(fig, ax, path: Path, *, ylabel: str) -> Path:
    """Label, grid and legend a metric plot, write it as PNG atomically and close it."""
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    atomic_save(path, lambda tmp: fig.savefig(tmp, format="png", dpi=FIGURE_DPI))
    plt.close(fig)
    return path
