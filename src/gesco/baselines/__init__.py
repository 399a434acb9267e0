"""What GESCO is compared with at equal channel uses (JPEG over the digital link, Deep JSCC), and the one
payload accounting module (real values, complex channel uses, bits) every command counts with.

Running the digital link needs the ``digital`` extra (Sionna); coding and accounting do not.
"""

from gesco.baselines.accounting import (
    GESCO_ANALOG,
    GESCO_DIGITAL,
    JPEG,
    ChannelUses,
    PayloadSizes,
    channel_use_budget,
    channel_use_report,
    gesco_analog_uses,
    gesco_digital_uses,
    jpeg_uses,
    mean_payload_sizes,
    payload_sizes,
)
from gesco.baselines.jpeg_ldpc import MID_GREY, JpegChoice, JpegOutput, JpegOverDigital, choose_jpeg_quality

__all__ = [
    "GESCO_ANALOG",
    "GESCO_DIGITAL",
    "JPEG",
    "MID_GREY",
    "ChannelUses",
    "JpegChoice",
    "JpegOutput",
    "JpegOverDigital",
    "PayloadSizes",
    "channel_use_budget",
    "channel_use_report",
    "choose_jpeg_quality",
    "gesco_analog_uses",
    "gesco_digital_uses",
    "jpeg_uses",
    "mean_payload_sizes",
    "payload_sizes",
]
