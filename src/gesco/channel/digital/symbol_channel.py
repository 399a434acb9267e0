"""The complex baseband channel of the digital link: AWGN or Rayleigh block fading with
perfect-CSI equalisation.

The noise is drawn here, from the caller's ``torch.Generator``: Sionna's channel blocks draw
from Sionna's own global generator, which a per-call generator cannot reach.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from gesco.channel.digital.config import FADINGS
from gesco.constants import DEFAULT_COHERENCE_SYMBOLS


@dataclass(frozen=True)
class EqualizedSymbols:
    """Attributes:
    symbols: complex (B, S): received symbols after equalisation, y / h (y under AWGN).
    n0: float (B, S): noise variance per complex symbol after equalisation, N0 / |h|^2; the
        demapper's LLRs need it per symbol.
    """

    symbols: torch.Tensor
    n0: torch.Tensor


def complex_gaussian(
    shape: tuple[int, ...], variance: float, *, dtype: torch.dtype, generator: torch.Generator | None
) -> torch.Tensor:
    """CN(0, variance) samples: variance / 2 per real dimension; ``dtype`` is the complex dtype."""
    real_dtype = torch.empty((), dtype=dtype).real.dtype
    parts = torch.randn((*shape, 2), generator=generator, dtype=real_dtype) * math.sqrt(variance / 2)
    return torch.view_as_complex(parts)


class SymbolChannel(nn.Module):
    """y = h x + n, n ~ CN(0, N0), then zero-forcing with the true h (perfect CSI) if ``equalize``.

    For a scalar channel, dividing by the known h and scaling the noise variance to N0 / |h|^2
    keeps all the information, so the APP demapper after it is still exact.

    Args:
        fading: "awgn" (h = 1) or "rayleigh" (h ~ CN(0, 1), E|h|^2 = 1).
        coherence_symbols: consecutive symbols of a row that share one h (the coherence length);
            None = the whole row. Default ``DEFAULT_COHERENCE_SYMBOLS``.
        equalize: divide by the true h (perfect CSI); False returns h x + n as received.

    >>> import torch
    >>> x = torch.ones(2, 8, dtype=torch.complex64)
    >>> channel = SymbolChannel(fading="rayleigh", coherence_symbols=4)
    >>> out = channel(x, n0=0.0, generator=torch.Generator().manual_seed(0))
    >>> bool(torch.allclose(out.symbols, x)), tuple(out.n0.shape)
    (True, (2, 8))
    """

    def __init__(
        self, *, fading: str = "awgn", coherence_symbols: int | None = DEFAULT_COHERENCE_SYMBOLS, equalize: bool = True
    ):
        super().__init__()
        if fading not in FADINGS:
            raise ValueError(f"fading={fading!r} is not supported; choose one of {list(FADINGS)}")
        if coherence_symbols is not None and (isinstance(coherence_symbols, bool) or coherence_symbols < 1):
            raise ValueError(f"coherence_symbols={coherence_symbols} must be a positive number of symbols or None")
        self.fading = fading
        self.coherence_symbols = coherence_symbols
        self.equalize = equalize

    def forward(self, x: torch.Tensor, *, n0: float, generator: torch.Generator | None = None) -> EqualizedSymbols:
        """x: complex (B, S) unit-energy symbols; n0: noise variance per complex symbol (>= 0)."""
        if not x.is_complex() or x.dim() != 2:
            raise ValueError(f"x must be a complex (B, S) tensor, got {x.dtype} {tuple(x.shape)}")
        if not (n0 >= 0 and math.isfinite(n0)):
            raise ValueError(f"n0={n0} must be a finite noise variance >= 0")
        rows, length = x.shape
        n0_per_symbol = torch.full((rows, length), n0, dtype=x.real.dtype)
        if self.fading == "awgn":
            y = x + complex_gaussian((rows, length), n0, dtype=x.dtype, generator=generator)
            return EqualizedSymbols(y, n0_per_symbol)
        block = self.coherence_symbols or length
        n_blocks = math.ceil(length / block)
        h = complex_gaussian((rows, n_blocks), 1.0, dtype=x.dtype, generator=generator)
        h = h.repeat_interleave(block, dim=1)[:, :length]
        y = h * x + complex_gaussian((rows, length), n0, dtype=x.dtype, generator=generator)
        if not self.equalize:
            return EqualizedSymbols(y, n0_per_symbol)
        return EqualizedSymbols(y / h, n0_per_symbol / h.abs().square())
