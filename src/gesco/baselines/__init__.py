"""Baselines that share GESCO's channel-use budget: GESCO over the digital link, JPEG over the
digital link, and the channel-use accounting that puts every method on the same bandwidth.

Running them needs the ``digital`` extra (Sionna); coding and accounting do not.
"""

from gesco.baselines.accounting import (
    GESCO_ANALOG,
    GESCO_DIGITAL,
    JPEG,
    ChannelUses,
    channel_use_budget,
    channel_use_report,
    complex_channel_uses,
    gesco_analog_uses,
    gesco_digital_uses,
    jpeg_uses,
)
from gesco.baselines.digital_gesco import DigitalGesco, DigitalReceived
from gesco.baselines.jpeg_ldpc import MID_GREY, JpegChoice, JpegOutput, JpegOverDigital, choose_jpeg_quality
from gesco.baselines.map_bands import BandLayout, UnpackedMap, pack_map_bands, unpack_map_bands

__all__ = [
    "GESCO_ANALOG",
    "GESCO_DIGITAL",
    "JPEG",
    "MID_GREY",
    "BandLayout",
    "ChannelUses",
    "DigitalGesco",
    "DigitalReceived",
    "JpegChoice",
    "JpegOutput",
    "JpegOverDigital",
    "UnpackedMap",
    "channel_use_budget",
    "channel_use_report",
    "choose_jpeg_quality",
    "complex_channel_uses",
    "gesco_analog_uses",
    "gesco_digital_uses",
    "jpeg_uses",
    "pack_map_bands",
    "unpack_map_bands",
]
