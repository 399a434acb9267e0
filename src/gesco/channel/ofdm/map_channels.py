"""GESCO over the OFDM link, behind the channel contract: the analog map and the coded map.

- ``OfdmAnalogChannel`` (GESCO-analog): each map's transmitted values as unit-power complex symbols
  (``UnitPowerAnalogChannel``'s normalisation) on the data resource elements, LS-estimated or perfect CSI,
  LMMSE or ZF equalisation; ``Received.sigma`` is the noise per real value on the map's scale before
  equalisation, as for the other analog channels.
- ``OfdmDigitalGesco`` (GESCO-digital): the lossless band code over 5G LDPC + QAM on the same OFDM link.

Both return an ``OfdmReceived``: channel uses count data symbols only, and ``overhead`` says what the pilots,
the cyclic prefix and the last slot's padding cost on top.
"""

from __future__ import annotations

import dataclasses

import torch

from gesco.channel.base import Received
from gesco.channel.digital.config import DigitalConfig
from gesco.channel.digital.map_channel import DEFAULT_BAND_ROWS, DigitalGesco, DigitalReceived
from gesco.channel.digital.phy import DigitalLink
from gesco.channel.ofdm.config import OfdmConfig, OfdmOverhead
from gesco.channel.ofdm.link import OfdmChannel
from gesco.channel.quality import ChannelQuality
from gesco.channel.unit_power import UnitPowerAnalogChannel
from gesco.semantics.payload import Payload


@dataclasses.dataclass(frozen=True)
class OfdmReceived(DigitalReceived):
    """A ``Received`` (for the digital map also its band and block verdicts) plus the OFDM overhead.

    Attributes:
        overhead: one :class:`~gesco.channel.ofdm.config.OfdmOverhead` per map.
    """

    overhead: tuple[OfdmOverhead, ...] = ()


def with_overhead(received: Received, config: OfdmConfig) -> OfdmReceived:
    """``received`` with each map's OFDM overhead for its ``complex_channel_uses`` data symbols."""
    fields = {f.name: getattr(received, f.name) for f in dataclasses.fields(received)}
    overhead = tuple(config.overhead_for(int(n)) for n in received.complex_channel_uses)
    return OfdmReceived(**fields, overhead=overhead)


def ofdm_config(**options) -> OfdmConfig:
    """An ``OfdmConfig`` from the options given (None: the config's default)."""
    return OfdmConfig(**{k: v for k, v in options.items() if v is not None})


class OfdmAnalogChannel(UnitPowerAnalogChannel):
    """GESCO-analog over OFDM: the map values as unit-power symbols on the subcarriers, at an Es/N0.

    Args:
        model, delay_spread_ns, carrier_frequency_ghz, speed_kmh, csi, equalizer, antennas: the
            :class:`~gesco.channel.ofdm.config.OfdmConfig` fields (None: its default); or
        config: a whole ``OfdmConfig`` instead.

    >>> import math, torch
    >>> from gesco.semantics import SemanticMap, Transmitter
    >>> payload = Transmitter()(SemanticMap(torch.tensor([[7, 26]]), "cityscapes"))
    >>> received = OfdmAnalogChannel(csi="perfect")(payload, ChannelQuality.esn0_db(math.inf))
    >>> bool(torch.allclose(received.payload.values, payload.values, atol=1e-4)), received.overhead[0].slots
    (True, 1)
    """

    def __init__(
        self,
        *,
        model: str | None = None,
        delay_spread_ns: float | None = None,
        carrier_frequency_ghz: float | None = None,
        speed_kmh: float | None = None,
        csi: str | None = None,
        equalizer: str | None = None,
        antennas: int | None = None,
        config: OfdmConfig | None = None,
    ):
        super().__init__(fading="awgn")
        self.config = config or ofdm_config(
            model=model,
            delay_spread_ns=delay_spread_ns,
            carrier_frequency_ghz=carrier_frequency_ghz,
            speed_kmh=speed_kmh,
            csi=csi,
            equalizer=equalizer,
            antennas=antennas,
        )
        self.symbol_channel = OfdmChannel(self.config)

    def quality_hint(self) -> str:
        return "; an OFDM link is driven by the Es/N0 of its unit-power symbols"

    def describe(self) -> str:
        """The link for plots and reports, e.g. "analog map, TDL-A 100 ns 3 km/h, LS CSI (lin)"."""
        return f"analog map, {self.config.describe()}"

    def transmit(self, payload: Payload, quality: ChannelQuality, generators: list[torch.Generator | None]) -> Received:
        return with_overhead(super().transmit(payload, quality, generators), self.config)


class OfdmDigitalGesco(DigitalGesco):
    """GESCO-digital over OFDM: the lossless map code over 5G LDPC + QAM on the OFDM link, at an Es/N0.

    Args:
        model, delay_spread_ns, carrier_frequency_ghz, speed_kmh, csi, equalizer, antennas: the
            :class:`~gesco.channel.ofdm.config.OfdmConfig` fields (None: its default), or ``config``;
        digital: modulation, code rate and block length of the coded link (default ``DigitalConfig()``).
        band_rows: rows per independently coded band.
    """

    def __init__(
        self,
        *,
        model: str | None = None,
        delay_spread_ns: float | None = None,
        carrier_frequency_ghz: float | None = None,
        speed_kmh: float | None = None,
        csi: str | None = None,
        equalizer: str | None = None,
        antennas: int | None = None,
        config: OfdmConfig | None = None,
        digital: DigitalConfig | None = None,
        band_rows: int = DEFAULT_BAND_ROWS,
    ):
        config = config or ofdm_config(
            model=model,
            delay_spread_ns=delay_spread_ns,
            carrier_frequency_ghz=carrier_frequency_ghz,
            speed_kmh=speed_kmh,
            csi=csi,
            equalizer=equalizer,
            antennas=antennas,
        )
        super().__init__(DigitalLink(digital, channel=OfdmChannel(config)), band_rows=band_rows)
        self.config = config

    def quality_hint(self) -> str:
        return "; PSNR labels, peak SNRs and sigma name the analog map's noise, which a digital link does not have"

    def describe(self) -> str:
        """The link for plots and reports, e.g. "QPSK r=0.50 LDPC, TDL-A 100 ns 3 km/h, LS CSI (lin)"."""
        digital = self.link.config
        return f"{digital.modulation.upper()} r={digital.actual_code_rate:.2f} LDPC, {self.config.describe()}"

    def transmit(
        self, payload: Payload, quality: ChannelQuality, generators: list[torch.Generator | None]
    ) -> OfdmReceived:
        return with_overhead(super().transmit(payload, quality, generators), self.config)
