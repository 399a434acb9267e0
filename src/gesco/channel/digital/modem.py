"""QAM mapping and APP demapping with Sionna's blocks."""

from __future__ import annotations

import torch
from torch import nn

from gesco.channel.digital.config import BITS_PER_SYMBOL
from gesco.channel.digital.sionna_import import import_sionna


class QamModem(nn.Module):
    """Gray-labelled square QAM with unit average energy (3GPP 38.211 labels, Sionna's
    ``Constellation("qam", m)``), mapped by Sionna's ``Mapper`` and demapped by its APP
    ``Demapper``.

    Args:
        modulation: "qpsk", "16qam" or "64qam".
    """

    def __init__(self, modulation: str = "qpsk"):
        super().__init__()
        if modulation not in BITS_PER_SYMBOL:
            raise ValueError(f"modulation={modulation!r} is not supported; choose one of {list(BITS_PER_SYMBOL)}")
        mapping = import_sionna().mapping
        self.bits_per_symbol = BITS_PER_SYMBOL[modulation]
        self.constellation = mapping.Constellation("qam", self.bits_per_symbol)
        self.mapper = mapping.Mapper(constellation=self.constellation)
        self.demapper = mapping.Demapper("app", constellation=self.constellation)

    def modulate(self, bits: torch.Tensor) -> torch.Tensor:
        """bits: float (B, n) in {0, 1}, n a multiple of the bits per symbol -> complex64 (B, n / m)."""
        if bits.shape[-1] % self.bits_per_symbol:
            raise ValueError(
                f"{bits.shape[-1]} bits per row is not a multiple of {self.bits_per_symbol} bits per symbol"
            )
        return self.mapper(bits)

    def llrs(self, symbols: torch.Tensor, n0: torch.Tensor | float) -> torch.Tensor:
        """APP bit logits log(P(b=1|y) / P(b=0|y)): complex (B, S) and noise variance
        (scalar or (B, S)) -> float32 (B, S * m). Positive means "1"."""
        n0 = torch.as_tensor(n0, dtype=symbols.real.dtype)
        return self.demapper(symbols, n0)

    def hard_bits(self, symbols: torch.Tensor, n0: torch.Tensor | float) -> torch.Tensor:
        """Uncoded bit decisions: uint8 (B, S * m), the sign of the APP logits."""
        return (self.llrs(symbols, n0) > 0).to(torch.uint8)
