"""GESCO-analog on a radio's terms: the map values as unit-power complex symbols at an Es/N0.

The paper adds noise of a fixed standard deviation to the 0/1 map values (``AWGNChannel``).
To compare it with digital links and Deep JSCC at one SNR, the transmitter must obey the same
average power constraint as they do: each map's transmitted values are paired into complex symbols
(``gesco.channel.symbols``) and scaled by one amplitude a per map so that their mean power E|s|^2 is 1.
The symbols cross AWGN or Rayleigh block fading (perfect-CSI zero forcing) at Es/N0; the receiver
divides by a, which it gets as side information (one float, ``SCALE_BITS``).

On the map's own scale the noise then has standard deviation sqrt(N0 / 2) / a per real value
(``gesco.channel.quality.esn0_db_to_sigma``): a one-hot map of k + 1 channels carries about one unit of
energy per pixel spread over (k + 1) / 2 channel uses, so a^2 ~ (k + 1) / 2 and the map enjoys that much
processing gain.
"""

from __future__ import annotations

import torch

from gesco.channel.fading import AnalogSymbolChannel
from gesco.channel.quality import esn0_db_to_sigma
from gesco.channel.symbols import reals_to_symbols
from gesco.constants import DEFAULT_COHERENCE_SYMBOLS

#: Side information per map: the amplitude a, as a float32.
SCALE_BITS = 32


class UnitPowerAnalogChannel(AnalogSymbolChannel):
    """The transmitted map values as unit-power complex symbols through AWGN or Rayleigh block fading.

    Quality: Es/N0 in dB only (+inf: noiseless); ``Received.sigma`` is the noise per real value on the
    map's scale, before equalisation.

    Args:
        fading: "awgn" or "rayleigh" (perfect CSI, zero forcing).
        coherence_symbols: symbols sharing one fading coefficient (None: one per map).

    >>> import math, torch
    >>> from gesco.channel.quality import ChannelQuality
    >>> from gesco.semantics import SemanticMap, Transmitter
    >>> payload = Transmitter()(SemanticMap(torch.tensor([[7, 26]]), "cityscapes"))
    >>> received = UnitPowerAnalogChannel()(payload, ChannelQuality.esn0_db(math.inf))
    >>> bool(torch.equal(received.payload.values, payload.values)), float(received.sigma[0])
    (True, 0.0)
    """

    accepts = ("esn0_db",)

    def __init__(self, *, fading: str = "awgn", coherence_symbols: int | None = DEFAULT_COHERENCE_SYMBOLS):
        super().__init__(fading=fading, coherence_symbols=coherence_symbols, equalize=True)

    def quality_hint(self) -> str:
        return "; PSNR labels, peak SNRs and sigma are on the map's own scale: use AWGNChannel or RayleighBlockFading"

    def map_sigma(self, kind: str, value: float, sent: torch.Tensor) -> float:
        # E|s|^2 / 2 over the paired symbols (an odd count's zero padding is sent too).
        mean_square = float(reals_to_symbols(sent).abs().square().mean()) / 2
        if mean_square == 0:
            raise ValueError("the map transmits only zeros: there is nothing to normalise to unit power")
        return esn0_db_to_sigma(value, mean_square=mean_square)
