"""Settings and block geometry of the digital link (5G LDPC + CRC + QAM).

The geometry (bits per block, symbols per block, channel uses for a message) is plain
arithmetic on the config, so channel-use accounting works without Sionna installed.

One block: ``payload_bits_per_block`` message bits + CRC = ``block_bits`` (the LDPC
information length k) -> LDPC, rate-matched to ``coded_bits_per_block`` = n, a multiple of
the bits per symbol -> ``symbols_per_block`` = n / m complex symbols (channel uses).
"""

from __future__ import annotations

import dataclasses
import math
from types import MappingProxyType
from typing import Literal

from gesco.config import Config
from gesco.constants import DEFAULT_COHERENCE_SYMBOLS

#: Bits per QAM symbol of each modulation (Gray-labelled square QAM, 3GPP 38.211).
BITS_PER_SYMBOL = MappingProxyType({"qpsk": 2, "16qam": 4, "64qam": 6})

#: Parity bits of the 5G CRC polynomials (3GPP 38.212 Sec. 5.1) that Sionna's CRC implements.
CRC_BITS = MappingProxyType({"CRC24A": 24, "CRC24B": 24, "CRC24C": 24, "CRC16": 16, "CRC11": 11, "CRC6": 6})

FADINGS = ("awgn", "rayleigh")

#: 5G LDPC limits: information length k (38.212 base graph 1 max) and code rate. Sionna warns
#: above 948/1024 and has no repetition code below 1/5.
MIN_BLOCK_BITS, MAX_BLOCK_BITS = 12, 8448
MIN_CODE_RATE, MAX_CODE_RATE = 0.2, 0.92


@dataclasses.dataclass(frozen=True)
class DigitalConfig(Config):
    """What the digital link does to a bit stream.

    Attributes:
        modulation: "qpsk", "16qam" or "64qam".
        code_rate: target LDPC rate k / n in [0.2, 0.92]; n is rounded up to whole symbols,
            so the actual rate (``actual_code_rate``) is at most this.
        block_bits: LDPC information bits per block k, CRC included (12..8448).
        crc: 5G CRC polynomial appended to every block ("CRC24A", "CRC16", ...).
        decoder_iterations: belief-propagation iterations of the LDPC decoder.
        fading: "awgn", or "rayleigh" block fading with perfect CSI at the receiver.
        coherence_symbols: symbols that share one fading coefficient (default
            ``DEFAULT_COHERENCE_SYMBOLS``); None = one coefficient per LDPC codeword.
    """

    modulation: Literal["qpsk", "16qam", "64qam"] = "qpsk"
    code_rate: float = 0.5
    block_bits: int = 1024
    crc: str = "CRC24A"
    decoder_iterations: int = 20
    fading: Literal["awgn", "rayleigh"] = "awgn"
    coherence_symbols: int | None = DEFAULT_COHERENCE_SYMBOLS

    def __post_init__(self) -> None:
        if self.modulation not in BITS_PER_SYMBOL:
            raise ValueError(f"modulation={self.modulation!r} is not supported; choose one of {list(BITS_PER_SYMBOL)}")
        if self.crc not in CRC_BITS:
            raise ValueError(f"crc={self.crc!r} is not a 5G CRC; choose one of {list(CRC_BITS)}")
        if not MIN_CODE_RATE <= self.code_rate <= MAX_CODE_RATE:
            raise ValueError(
                f"code_rate={self.code_rate} is outside the 5G LDPC range [{MIN_CODE_RATE}, {MAX_CODE_RATE}]; "
                "pick e.g. 1/3, 1/2, 2/3, 3/4 or 5/6"
            )
        if isinstance(self.block_bits, bool) or not isinstance(self.block_bits, int):
            raise TypeError(f"block_bits must be an int, got {self.block_bits!r}")
        if not MIN_BLOCK_BITS <= self.block_bits <= MAX_BLOCK_BITS or self.block_bits <= self.crc_bits:
            raise ValueError(
                f"block_bits={self.block_bits} must lie in [{MIN_BLOCK_BITS}, {MAX_BLOCK_BITS}] (5G LDPC) and exceed "
                f"the {self.crc_bits} CRC bits of {self.crc}"
            )
        if (
            isinstance(self.decoder_iterations, bool)
            or not isinstance(self.decoder_iterations, int)
            or self.decoder_iterations < 1
        ):
            raise ValueError(f"decoder_iterations={self.decoder_iterations!r} must be a positive int (e.g. 20)")
        if self.fading not in FADINGS:
            raise ValueError(f"fading={self.fading!r} is not supported; choose one of {list(FADINGS)}")
        if self.coherence_symbols is not None and self.coherence_symbols < 1:
            raise ValueError(
                f"coherence_symbols={self.coherence_symbols} must be a positive number of symbols, "
                "or None for one coefficient per codeword"
            )

    @property
    def bits_per_symbol(self) -> int:
        return BITS_PER_SYMBOL[self.modulation]

    @property
    def crc_bits(self) -> int:
        return CRC_BITS[self.crc]

    @property
    def payload_bits_per_block(self) -> int:
        """Message bits carried by one block (k minus the CRC)."""
        return self.block_bits - self.crc_bits

    @property
    def coded_bits_per_block(self) -> int:
        """LDPC codeword length n after rate matching: k / code_rate rounded up to whole symbols."""
        m = self.bits_per_symbol
        return m * math.ceil(self.block_bits / (self.code_rate * m))

    @property
    def symbols_per_block(self) -> int:
        """Complex channel uses of one block."""
        return self.coded_bits_per_block // self.bits_per_symbol

    @property
    def actual_code_rate(self) -> float:
        return self.block_bits / self.coded_bits_per_block

    @property
    def payload_bits_per_channel_use(self) -> float:
        """Message bits per complex channel use (CRC counted as overhead)."""
        return self.payload_bits_per_block / self.symbols_per_block

    def blocks_for(self, n_bits: int) -> int:
        """Blocks needed for a message of ``n_bits`` bits (the last block is zero-padded)."""
        if n_bits < 0:
            raise ValueError(f"n_bits={n_bits} must be >= 0")
        return math.ceil(n_bits / self.payload_bits_per_block)

    def channel_uses_for(self, n_bits: int) -> int:
        """Complex channel uses (QAM symbols) that a message of ``n_bits`` bits occupies."""
        return self.blocks_for(n_bits) * self.symbols_per_block

    def message_bits_within(self, channel_uses: int) -> int:
        """Most message bits that fit in ``channel_uses`` complex channel uses (whole blocks only)."""
        if channel_uses < 0:
            raise ValueError(f"channel_uses={channel_uses} must be >= 0")
        return (channel_uses // self.symbols_per_block) * self.payload_bits_per_block

    def esn0_db(self, ebn0_db: float) -> float:
        """Es/N0 of the link for an Eb/N0, Eb being the energy per message bit:
        Es/N0 = Eb/N0 * (message bits per channel use)."""
        return ebn0_db + 10 * math.log10(self.payload_bits_per_channel_use)
