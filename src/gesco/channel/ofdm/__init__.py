"""OFDM links over 3GPP TR 38.901 multipath channels (TDL, CDL) with estimated or perfect CSI, on NVIDIA Sionna;
and the official GESCO OFDM bit channel (QPSK over a per-image frequency response), which needs no Sionna.

Sionna is imported only when an ``OfdmChannel`` is built; the config and its channel-use accounting work
without it.
"""

from gesco.channel.ofdm.config import OFDM_MODELS, OfdmConfig, OfdmOverhead

__all__ = ["OFDM_MODELS", "OfdmConfig", "OfdmOverhead"]
