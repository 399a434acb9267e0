"""The digital link on NVIDIA Sionna: 5G LDPC + CRC + QAM over AWGN or Rayleigh block fading, and
GESCO-digital (``DigitalGesco``), the semantic map coded losslessly over it.

Sionna is an optional extra (``pip install 'gesco[digital]'``) and is imported only when a
block that needs it is built (``DigitalLink``, ``QamModem``); the config, the geometry and
the theory work without it.
"""

from gesco.channel.digital.config import BITS_PER_SYMBOL, CRC_BITS, DigitalConfig
from gesco.channel.digital.map_bands import BandLayout, UnpackedMap, pack_map_bands, unpack_map_bands
from gesco.channel.digital.map_channel import DEFAULT_BAND_ROWS, DigitalGesco, DigitalReceived
from gesco.channel.digital.modem import QamModem
from gesco.channel.digital.phy import DigitalLink, DigitalOutput, bits_to_bytes, bytes_to_bits
from gesco.channel.digital.sionna_import import INSTALL_HINT, import_sionna
from gesco.channel.digital.symbol_channel import EqualizedSymbols, SymbolChannel
from gesco.channel.digital.theory import (
    ebn0_db_to_esn0_db,
    esn0_db_to_n0,
    gray_qam_ber_awgn,
    qpsk_ber_rayleigh,
)

__all__ = [
    "BITS_PER_SYMBOL",
    "CRC_BITS",
    "DEFAULT_BAND_ROWS",
    "BandLayout",
    "DigitalGesco",
    "DigitalReceived",
    "UnpackedMap",
    "pack_map_bands",
    "unpack_map_bands",
    "INSTALL_HINT",
    "DigitalConfig",
    "DigitalLink",
    "DigitalOutput",
    "EqualizedSymbols",
    "QamModem",
    "SymbolChannel",
    "bits_to_bytes",
    "bytes_to_bits",
    "ebn0_db_to_esn0_db",
    "esn0_db_to_n0",
    "gray_qam_ber_awgn",
    "import_sionna",
    "qpsk_ber_rayleigh",
]
