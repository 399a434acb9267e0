"""Channels: every one maps ``payload + ChannelQuality -> Received`` (``gesco.channel.base``).

- ``AWGNChannel``: the paper's noise on the 0/1 map values (PSNR label, peak SNR or sigma);
- ``RayleighBlockFading``: the same values as complex symbols under block fading;
- ``UnitPowerAnalogChannel``: the map as unit-power symbols at an Es/N0 (AWGN or fading);
- ``DigitalGesco`` (``gesco.channel.digital``): the map coded losslessly over 5G LDPC + QAM at an Es/N0.
- ``OfdmAnalogChannel``, ``OfdmDigitalGesco`` (``gesco.channel.ofdm``): those two over OFDM through 3GPP TDL/CDL
  channels with LS-estimated or perfect CSI; ``OfficialOfdmBits``: the official OFDM bit channel.

``gesco.channel.registry`` builds them by name.
"""

from gesco.channel.awgn import AWGNChannel
from gesco.channel.base import Channel, Generators, Received
from gesco.channel.fading import RayleighBlockFading
from gesco.channel.quality import (
    NOISE_AWARE_TRAINING_SIGMAS,
    PAPER_PSNR_SIGMA,
    ChannelQuality,
    UnsupportedQualityError,
    esn0_db_to_sigma,
    paper_sigma,
    peak_snr_db_of_sigma,
    peak_snr_db_to_sigma,
)
from gesco.channel.registry import CHANNELS, build_channel
from gesco.channel.unit_power import UnitPowerAnalogChannel
from gesco.constants import DEFAULT_COHERENCE_SYMBOLS

__all__ = [
    "CHANNELS",
    "DEFAULT_COHERENCE_SYMBOLS",
    "NOISE_AWARE_TRAINING_SIGMAS",
    "PAPER_PSNR_SIGMA",
    "AWGNChannel",
    "Channel",
    "ChannelQuality",
    "Generators",
    "RayleighBlockFading",
    "Received",
    "UnitPowerAnalogChannel",
    "UnsupportedQualityError",
    "build_channel",
    "esn0_db_to_sigma",
    "paper_sigma",
    "peak_snr_db_of_sigma",
    "peak_snr_db_to_sigma",
]
