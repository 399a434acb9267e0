"""GESCO-analog on a radio's terms: the map values as unit-power complex symbols at an Es/N0.

The paper adds noise of a fixed standard deviation to the 0/1 map values (``AWGNChannel``).
To compare it with digital links and Deep JSCC at one SNR, the transmitter must obey the same
average power constraint as they do: each map's transmitted values (present channels, then
edge, row-major) are paired into complex symbols and scaled by one amplitude a per map so that
their mean power E|s|^2 is 1. The channel (``SymbolChannel``: AWGN, or Rayleigh block fading
with perfect-CSI zero forcing) runs at Es/N0 = ``snr_db``; the receiver divides by a, which it
gets as side information (one float, ``SCALE_BITS``).

On the map's own scale the noise then has standard deviation sqrt(N0 / 2) / a per real value:
a one-hot map of k + 1 channels carries about one unit of energy per pixel spread over
(k + 1) / 2 channel uses, so a^2 ~ (k + 1) / 2 and the map enjoys that much processing gain.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from gesco.channel.awgn import Received, check_finite
from gesco.channel.digital.symbol_channel import SymbolChannel
from gesco.channel.digital.theory import esn0_db_to_n0
from gesco.semantics.payload import Payload

#: Side information per map: the amplitude a, as a float32.
SCALE_BITS = 32


class UnitPowerAnalogChannel(nn.Module):
    """The transmitted map values as unit-power complex symbols through AWGN or Rayleigh block fading.

    Args:
        fading: "awgn" or "rayleigh" (perfect CSI, zero forcing).
        block_symbols: symbols sharing one fading coefficient (None: one per map).

    >>> import torch
    >>> from gesco.semantics import SemanticMap, Transmitter
    >>> payload = Transmitter()(SemanticMap(torch.tensor([[7, 26]]), "cityscapes"))
    >>> received = UnitPowerAnalogChannel()(payload, snr_db=math.inf)
    >>> bool(torch.equal(received.payload.values, payload.values)), float(received.sigma[0])
    (True, 0.0)
    """

    def __init__(self, *, fading: str = "awgn", block_symbols: int | None = None):
        super().__init__()
        self.channel = SymbolChannel(fading=fading, block_symbols=block_symbols)

    def forward(self, payload: Payload, *, snr_db: float, generator: torch.Generator | None = None) -> Received:
        """Send every map of ``payload`` at Es/N0 ``snr_db`` (dB, +inf = noiseless); ``sigma`` is the
        noise per real value on the map's scale, before equalisation."""
        check_finite("transmitted payload", payload.values)
        if math.isnan(snr_db):
            raise ValueError("snr_db is NaN; give an Es/N0 in dB (math.inf for a noiseless channel)")
        n0 = 0.0 if snr_db == math.inf else esn0_db_to_n0(snr_db)
        values = payload.values.clone()
        sigmas = torch.zeros(payload.batch_size)
        for b in range(payload.batch_size):
            sent = payload.compact(b).flatten().double()
            symbols = torch.view_as_complex(nn.functional.pad(sent, (0, sent.numel() % 2)).reshape(-1, 2).contiguous())
            power = float(symbols.abs().square().mean())
            if power == 0:
                raise ValueError(f"map {b} transmits only zeros: nothing to normalise")
            amplitude = 1 / math.sqrt(power)
            received = self.channel(symbols[None] * amplitude, n0=n0, generator=generator).symbols[0] / amplitude
            out = torch.view_as_real(received).flatten()[: sent.numel()]
            values[b, payload.transmitted[b]] = out.reshape(payload.compact(b).shape).to(values.dtype)
            sigmas[b] = math.sqrt(n0 / 2) / amplitude
        return Received(payload.with_values(values), sigmas)
