"""Analog map values as complex symbols through AWGN or Rayleigh block fading.

Each map's transmitted values are paired into complex symbols (``gesco.channel.symbols``); every block
of ``coherence_symbols`` consecutive symbols sees one coefficient h ~ CN(0, 1) (E|h|^2 = 1), and
y = h s + n with n ~ CN(0, 2 sigma^2), i.e. noise of standard deviation sigma per real value, as in the
AWGN channel. With ``equalize=True`` the receiver knows h (perfect CSI) and divides it out (zero forcing):
s_hat = y / h, whose noise is enhanced where |h| is small.
"""

from __future__ import annotations

import torch

from gesco.channel.awgn import MAP_SCALE_QUALITIES
from gesco.channel.base import Channel, Received, analog_channel_uses
from gesco.channel.digital.symbol_channel import SymbolChannel
from gesco.channel.quality import ChannelQuality
from gesco.channel.symbols import reals_to_symbols, symbols_to_reals
from gesco.constants import DEFAULT_COHERENCE_SYMBOLS
from gesco.semantics.payload import Payload


class AnalogSymbolChannel(Channel):
    """Base of the analog channels that send the map as complex symbols; subclasses fix sigma per map.

    Args:
        fading: "awgn" or "rayleigh" block fading.
        coherence_symbols: complex symbols that share one fading coefficient (None: one per map);
            default ``DEFAULT_COHERENCE_SYMBOLS``.
        equalize: zero-forcing with perfect CSI (without it the receiver reads h s + n as it is).
    """

    def __init__(
        self,
        *,
        fading: str = "rayleigh",
        coherence_symbols: int | None = DEFAULT_COHERENCE_SYMBOLS,
        equalize: bool = True,
    ):
        super().__init__()
        self.symbol_channel = SymbolChannel(fading=fading, coherence_symbols=coherence_symbols, equalize=equalize)

    @property
    def fading(self) -> str:
        return self.symbol_channel.fading

    @property
    def coherence_symbols(self) -> int | None:
        return self.symbol_channel.coherence_symbols

    def map_sigma(self, kind: str, value: float, sent: torch.Tensor) -> float:
        """Noise standard deviation per real value on the map's scale, for a map sending ``sent`` at a
        quality of ``kind`` and ``value``."""
        raise NotImplementedError

    def transmit(self, payload: Payload, quality: ChannelQuality, generators: list[torch.Generator | None]) -> Received:
        values = payload.values.clone()
        sigmas = torch.zeros(payload.batch_size)
        for b, (value, generator) in enumerate(zip(quality.per_map(payload.batch_size), generators, strict=True)):
            sent = payload.compact(b)
            sigmas[b] = self.map_sigma(quality.kind, value, sent)
            symbols = reals_to_symbols(sent)[None]
            received = self.symbol_channel(symbols, n0=2 * float(sigmas[b]) ** 2, generator=generator).symbols[0]
            values[b, payload.transmitted[b]] = symbols_to_reals(received, sent.shape, values.dtype)
        return Received(payload.with_values(values), sigmas, quality, analog_channel_uses(payload))


class RayleighBlockFading(AnalogSymbolChannel):
    """The paper's map values under Rayleigh block fading, at a quality on the map's scale (PSNR label,
    peak SNR or sigma, as ``AWGNChannel``).

    >>> import torch
    >>> from gesco.semantics import SemanticMap, Transmitter
    >>> payload = Transmitter()(SemanticMap(torch.tensor([[7, 26]]), "cityscapes"))
    >>> out = RayleighBlockFading()(payload, ChannelQuality.noise_std(0.0), generator=torch.Generator().manual_seed(0))
    >>> bool(torch.allclose(out.payload.values, payload.values, atol=1e-6))
    True
    """

    accepts = MAP_SCALE_QUALITIES

    def __init__(self, *, coherence_symbols: int | None = DEFAULT_COHERENCE_SYMBOLS, equalize: bool = True):
        super().__init__(fading="rayleigh", coherence_symbols=coherence_symbols, equalize=equalize)

    def quality_hint(self) -> str:
        return "; for an Es/N0 use UnitPowerAnalogChannel(fading='rayleigh')"

    def map_sigma(self, kind: str, value: float, sent: torch.Tensor) -> float:
        return float(ChannelQuality(kind, value).sigmas(1)[0])
