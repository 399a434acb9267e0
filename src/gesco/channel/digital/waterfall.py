"""Block error rate of the coded link over SNR (the waterfall), and its plot."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from gesco.channel.digital.config import DigitalConfig  # noqa: E402
from gesco.channel.digital.phy import DigitalLink  # noqa: E402
from gesco.io import atomic_save  # noqa: E402


@dataclass(frozen=True)
class BlerCurve:
    """Attributes:
    config: the link that was measured.
    esn0_db: float64 (P,): Es/N0 points, dB.
    bler: float64 (P,): fraction of blocks whose CRC failed at each point.
    blocks: blocks sent per point.
    medium: what the symbols crossed, for the label (empty: ``config.fading``), e.g. an OFDM link's
        ``OfdmConfig.describe()``.
    """

    config: DigitalConfig
    esn0_db: np.ndarray
    bler: np.ndarray
    blocks: int
    medium: str = ""

    @property
    def label(self) -> str:
        c = self.config
        return f"{c.modulation.upper()} r={c.actual_code_rate:.2f} k={c.block_bits} {self.medium or c.fading}"

    def esn0_db_at(self, bler: float) -> float | None:
        """Es/N0 (dB) where the curve first falls to ``bler``, interpolated linearly in log10(BLER) between
        the points around it; None if it never gets there (or starts below it)."""
        if not 0 < bler < 1:
            raise ValueError(f"bler={bler} must lie in (0, 1)")
        for i in range(len(self.bler) - 1):
            high, low = self.bler[i], self.bler[i + 1]
            if high > bler >= low:
                if low == 0:  # a zero count: the crossing lies at or before this point
                    return float(self.esn0_db[i + 1])
                fraction = (np.log10(high) - np.log10(bler)) / (np.log10(high) - np.log10(low))
                return float(self.esn0_db[i] + fraction * (self.esn0_db[i + 1] - self.esn0_db[i]))
        return None


def bler_waterfall(
    link: DigitalLink,
    esn0_db: Sequence[float],
    *,
    blocks: int,
    generator: torch.Generator | None = None,
    medium: str = "",
) -> BlerCurve:
    """Send ``blocks`` blocks of uniform random bits at each Es/N0 and count CRC failures; ``medium`` labels
    the curve (default: the config's fading)."""
    if blocks < 1:
        raise ValueError(f"blocks={blocks} must be >= 1")
    n_bits = blocks * link.config.payload_bits_per_block
    rates = []
    for snr in esn0_db:
        bits = torch.randint(0, 2, (n_bits,), generator=generator, dtype=torch.uint8)
        out = link(bits, snr_db=float(snr), generator=generator)
        rates.append(1.0 - out.block_ok.double().mean().item())
    return BlerCurve(link.config, np.asarray(esn0_db, dtype=np.float64), np.asarray(rates), blocks, medium)


def plot_bler_waterfall(path: str | Path, curves: Sequence[BlerCurve], *, title: str | None = None) -> Path:
    """Write the BLER-vs-Es/N0 curves as a PNG (log scale; a zero BLER is drawn at the
    resolution floor 1 / (2 * blocks), marked by a hollow dot)."""
    if not curves:
        raise ValueError("plot_bler_waterfall needs at least one BlerCurve")
    fig, ax = plt.subplots(figsize=(6, 4))
    for curve in curves:
        floor = 1 / (2 * curve.blocks)
        shown = np.maximum(curve.bler, floor)
        (line,) = ax.semilogy(curve.esn0_db, shown, marker="o", label=curve.label)
        zero = curve.bler == 0
        ax.semilogy(curve.esn0_db[zero], shown[zero], "o", mfc="white", color=line.get_color())
    ax.set_xlabel("Es/N0 (dB)")
    ax.set_ylabel("block error rate")
    ax.set_ylim(top=1.2)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    path = Path(path)
    atomic_save(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)
    return path
